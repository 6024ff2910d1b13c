-- The consent ledger (docs/FULFILMENT.md#the-consent-ledger): every grant and withdrawal, with
-- its time and source, never updated. A subject is their platform account, or, when a request
-- came without platform sign-in, their email address.
CREATE TABLE consent_events (
    id TEXT PRIMARY KEY NOT NULL,
    platform_user_id TEXT,
    email TEXT,
    purpose TEXT NOT NULL,
    granted BOOLEAN NOT NULL,
    source TEXT NOT NULL,
    request_id TEXT,
    at TIMESTAMP NOT NULL
);
CREATE INDEX consent_events_user ON consent_events (platform_user_id, purpose, at);
CREATE INDEX consent_events_email ON consent_events (email, purpose, at);
