-- Identity verification: the methods a request was verified by, who acts for whom, one-time
-- codes and magic links (stored only as keyed hashes), and revocable subject sessions.

-- The receipt token that guarded requests before verification existed is retired: subjects
-- now prove who they are and get a session.
ALTER TABLE requests DROP COLUMN subject_token_hash;
ALTER TABLE requests ADD COLUMN verified_methods TEXT NOT NULL DEFAULT '';
-- guardian | relative | agent when someone acts for the subject; NULL when they act themselves.
ALTER TABLE requests ADD COLUMN representative TEXT;
-- Set when the request came with a token the platform signed (bound to that account).
ALTER TABLE requests ADD COLUMN platform_user_id TEXT;
-- Set when, at verification, the same subject already had an open request of the same kind:
-- the reference of that one, for staff to decide (never merged silently).
ALTER TABLE requests ADD COLUMN duplicate_of TEXT;

CREATE TABLE verification_challenges (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    channel TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    locked_at TIMESTAMP,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX verification_challenges_request ON verification_challenges (request_id, created_at);

CREATE TABLE subject_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    method TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX subject_sessions_request ON subject_sessions (request_id);
