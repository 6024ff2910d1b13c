-- Retention: requests anonymised after their evidence period, one row each (the primary key
-- lets one instance claim each request).
CREATE TABLE anonymised_requests (
    request_id TEXT PRIMARY KEY REFERENCES requests (id),
    at TIMESTAMP NOT NULL
);
-- Event hashes now cover a digest of the details rather than the details themselves, so
-- details can be replaced when a request is anonymised and the chain still verifies. Every
-- chain is sealed again under that rule at the next start (see storage/audit.rs).
UPDATE request_events SET prev_hash = NULL, hash = NULL;
