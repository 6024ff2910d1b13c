DROP TABLE reminders_sent;
DROP TABLE inbox_messages;
ALTER TABLE staff_users DROP COLUMN locale;
DROP INDEX outbox_claim;
ALTER TABLE outbox DROP COLUMN done_at;
ALTER TABLE outbox DROP COLUMN claimed_until;
ALTER TABLE outbox DROP COLUMN claimed_by;
ALTER TABLE outbox DROP COLUMN parent_id;
