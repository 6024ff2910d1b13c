-- OpenDSR 2.0 (formerly OpenGDPR; docs/INTEROP.md). Controllers that send us requests are
-- registered by an admin (CLI) and given a bearer token, stored here only as its SHA-256
-- digest. Status callbacks go only to the origin (scheme, host, port) the admin registered for
-- the controller, if any (as DRP's agents, migration 000022).
CREATE TABLE opendsr_controllers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    callback_origin TEXT,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- One row per OpenDSR request: the controller's `subject_request_id` (unique per controller)
-- and our request. The callback URLs (a JSON array) are the controller's, not the subject's;
-- the subject's identities are sealed on the request itself like every request's contact data.
CREATE TABLE opendsr_requests (
    controller_id TEXT NOT NULL REFERENCES opendsr_controllers (id),
    subject_request_id TEXT NOT NULL,
    request_id TEXT NOT NULL UNIQUE REFERENCES requests (id),
    subject_request_type TEXT NOT NULL,
    regulation TEXT NOT NULL,
    api_version TEXT,
    status_callback_urls TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (controller_id, subject_request_id)
);
