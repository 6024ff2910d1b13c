-- Notifications: the outbox becomes a claimable work queue (leases), deliveries point to the
-- notification they came from, subjects get in-site messages, staff reminders are sent once.

ALTER TABLE outbox ADD COLUMN parent_id TEXT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TIMESTAMP;
ALTER TABLE outbox ADD COLUMN done_at TIMESTAMP;
CREATE INDEX outbox_claim ON outbox (kind, status, run_after);

ALTER TABLE staff_users ADD COLUMN locale TEXT NOT NULL DEFAULT 'zh-CN';

-- 站内信: every message to a subject, readable later in the portal. The id is derived from the
-- notification it renders, so rendering twice cannot store two copies.
CREATE TABLE inbox_messages (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    message TEXT NOT NULL,
    locale TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    read_at TIMESTAMP
);
CREATE INDEX inbox_messages_request ON inbox_messages (request_id, created_at);

-- One row per reminder sent, keyed by the due date it was about: an extension (a new due date)
-- allows a new reminder; several instances cannot send the same one twice.
CREATE TABLE reminders_sent (
    request_id TEXT NOT NULL REFERENCES requests (id),
    kind TEXT NOT NULL,
    due_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    PRIMARY KEY (request_id, kind, due_at)
);
