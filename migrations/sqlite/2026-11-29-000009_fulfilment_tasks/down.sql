DROP TABLE fulfilment_tasks;
