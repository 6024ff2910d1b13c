-- Instants are stored as UTC (TIMESTAMP without zone); enums as their stable text names.

CREATE TABLE staff_users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP
);

CREATE TABLE requests (
    id TEXT PRIMARY KEY NOT NULL,
    reference TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    jurisdiction TEXT NOT NULL,
    status TEXT NOT NULL,
    locale TEXT NOT NULL,
    channel TEXT NOT NULL,
    subject_name TEXT,
    subject_email TEXT,
    subject_phone TEXT,
    details TEXT NOT NULL,
    subject_token_hash TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    verified_at TIMESTAMP,
    due_date DATE,
    due_at TIMESTAMP,
    due_warnings TEXT NOT NULL DEFAULT '[]',
    acknowledge_date DATE,
    acknowledge_at TIMESTAMP,
    extended_at TIMESTAMP,
    assignee_id TEXT REFERENCES staff_users (id),
    first_approval_by TEXT,
    approved_at TIMESTAMP,
    fulfilment_started_at TIMESTAMP,
    closed_at TIMESTAMP,
    rejection_reason TEXT,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX requests_status_due ON requests (status, due_at);
CREATE INDEX requests_due ON requests (due_at);
CREATE INDEX requests_assignee ON requests (assignee_id);

-- Append-only: one row per accepted command. (request_id, seq) is the request's version at
-- that command, so two writers racing on one request cannot both append the same step.
CREATE TABLE request_events (
    request_id TEXT NOT NULL REFERENCES requests (id),
    seq BIGINT NOT NULL,
    at TIMESTAMP NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    actor_role TEXT,
    command TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    details TEXT NOT NULL,
    PRIMARY KEY (request_id, seq)
);

-- Work to carry out after a state change, written in the same transaction (transactional
-- outbox). Notifications and fulfilment start-up are delivered from here by a worker.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT REFERENCES requests (id),
    event_seq BIGINT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_after TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (status, run_after);
