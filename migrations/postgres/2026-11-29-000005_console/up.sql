-- The staff console: sign-in sessions (revocable; a disabled account's end at once), a record
-- of every sign-in attempt, and indexes for the queue's filters and searches.

CREATE TABLE staff_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    staff_id TEXT NOT NULL REFERENCES staff_users (id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);

-- One row per sign-in attempt. staff_id is NULL when the email matched no account; the email
-- typed is not kept (it may be anyone's).
CREATE TABLE staff_sign_ins (
    id TEXT PRIMARY KEY NOT NULL,
    staff_id TEXT,
    outcome TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX staff_sign_ins_at ON staff_sign_ins (at);

-- The queue: open requests by due date whatever the filter, searches by contact.
CREATE INDEX requests_kind_status_due ON requests (kind, status, due_at);
CREATE INDEX requests_received ON requests (received_at);
CREATE INDEX requests_subject_email ON requests (subject_email);
CREATE INDEX requests_subject_phone ON requests (subject_phone);
