-- Fulfilment tasks: one per approved request and data system (docs/FULFILMENT.md). Each is run
-- by its outbox row (`outbox_id`, kind `fulfil`), which carries the attempts, retries and the
-- failure staff see; the task keeps what was found or done.
CREATE TABLE fulfilment_tasks (
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
