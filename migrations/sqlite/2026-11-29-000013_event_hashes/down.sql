ALTER TABLE request_events DROP COLUMN hash;
ALTER TABLE request_events DROP COLUMN prev_hash;
