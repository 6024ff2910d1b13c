CREATE TABLE fulfilment_tasks_old (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    system TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    outbox_id TEXT NOT NULL,
    result TEXT,
    created_at TIMESTAMP NOT NULL,
    done_at TIMESTAMP,
    UNIQUE (request_id, system)
);
INSERT INTO fulfilment_tasks_old SELECT id, request_id, system, action, status, outbox_id, result, created_at, done_at FROM fulfilment_tasks WHERE action <> 'lift_restriction';
DROP TABLE fulfilment_tasks;
ALTER TABLE fulfilment_tasks_old RENAME TO fulfilment_tasks;
