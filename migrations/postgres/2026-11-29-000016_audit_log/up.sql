-- Who did what outside a request's own workflow, and who looked at personal data: staff
-- sign-ins, account and role changes, views of a request, exports, downloads, configuration
-- changes. One append-only hash chain over all entries, in `seq` order (the primary key makes
-- two writers racing for the same place fail; the loser takes the next one).
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    actor_role TEXT,
    action TEXT NOT NULL,
    request_id TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_request ON audit_log (request_id, seq);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
