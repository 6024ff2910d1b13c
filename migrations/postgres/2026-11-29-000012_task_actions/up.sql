-- A request may now have more than one task per system: lifting a restriction is a second task
-- (`lift_restriction`) in the systems that restricted. One task per request, system and action.
ALTER TABLE fulfilment_tasks DROP CONSTRAINT fulfilment_tasks_request_id_system_key;
ALTER TABLE fulfilment_tasks ADD CONSTRAINT fulfilment_tasks_request_system_action_key UNIQUE (request_id, system, action);
