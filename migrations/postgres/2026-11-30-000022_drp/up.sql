-- The Data Rights Protocol 1.0 (docs/INTEROP.md). Authorised agents are registered by an admin
-- (console or CLI) with the Ed25519 key their requests are signed with; a pair-wise key set-up
-- hands the agent a bearer token, stored here only as its SHA-256 digest. Status callbacks go
-- only to the origin (scheme, host, port) the admin registered for the agent, if any: the
-- agent cannot point our server at an address of its choosing.
CREATE TABLE drp_agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    verify_key TEXT NOT NULL,
    callback_origin TEXT,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE drp_tokens (
    token_hash TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES drp_agents (id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX drp_tokens_agent ON drp_tokens (agent_id);
-- One row per DRP request: its protocol id, the agent that sent it, and our request. The
-- status callback URL is the agent's, not the subject's; the subject's claims are sealed on
-- the request itself like every other request's contact data. An opt-in to sale (a consent
-- grant) makes no request: it is recorded in the consent ledger at once, and `outcome` keeps
-- the DRP status it was answered with.
CREATE TABLE drp_requests (
    id TEXT PRIMARY KEY,
    request_id TEXT UNIQUE REFERENCES requests (id),
    agent_id TEXT NOT NULL REFERENCES drp_agents (id),
    agent_request_id TEXT,
    exercise TEXT NOT NULL,
    regime TEXT,
    status_callback TEXT,
    outcome TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX drp_requests_agent ON drp_requests (agent_id, created_at);
