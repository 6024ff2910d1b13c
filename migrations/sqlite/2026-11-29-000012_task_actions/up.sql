-- A request may now have more than one task per system: lifting a restriction is a second task
-- (`lift_restriction`) in the systems that restricted. One task per request, system and action.
-- SQLite cannot drop a table constraint: the table is rebuilt.
CREATE TABLE fulfilment_tasks_new (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    system TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    outbox_id TEXT NOT NULL,
    result TEXT,
    created_at TIMESTAMP NOT NULL,
    done_at TIMESTAMP,
    UNIQUE (request_id, system, action)
);
INSERT INTO fulfilment_tasks_new SELECT id, request_id, system, action, status, outbox_id, result, created_at, done_at FROM fulfilment_tasks;
DROP TABLE fulfilment_tasks;
ALTER TABLE fulfilment_tasks_new RENAME TO fulfilment_tasks;
