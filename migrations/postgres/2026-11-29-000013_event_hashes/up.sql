-- The event log is hash-chained per request: each event carries the hash of the one before it
-- (a fixed genesis value for the first) and the hash of its own content with that. Events
-- written before this migration are sealed in order when the application starts.
ALTER TABLE request_events ADD COLUMN prev_hash TEXT;
ALTER TABLE request_events ADD COLUMN hash TEXT;
