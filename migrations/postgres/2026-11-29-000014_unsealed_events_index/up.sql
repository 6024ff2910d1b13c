-- Start-up looks for events not yet in the audit chain; without this (empty, partial) index that
-- look is a full scan of the event log at every start.
CREATE INDEX request_events_unsealed ON request_events (request_id) WHERE hash IS NULL;
