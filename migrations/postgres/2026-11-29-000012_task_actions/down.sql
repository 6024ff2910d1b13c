DELETE FROM fulfilment_tasks WHERE action = 'lift_restriction';
ALTER TABLE fulfilment_tasks DROP CONSTRAINT fulfilment_tasks_request_system_action_key;
ALTER TABLE fulfilment_tasks ADD CONSTRAINT fulfilment_tasks_request_id_system_key UNIQUE (request_id, system);
