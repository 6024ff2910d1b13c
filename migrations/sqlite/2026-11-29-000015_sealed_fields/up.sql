-- Personal data is sealed (AES-256-GCM) in its columns from now on; exact lookups by email or
-- phone go through blind indexes (keyed HMAC of the normalised value), one row per request and
-- kind. Values written before stay readable in clear until `rightsflow keys rotate` seals them
-- and writes their lookups.
CREATE TABLE subject_lookups (
    request_id TEXT NOT NULL REFERENCES requests (id),
    kind TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (request_id, kind)
);
CREATE INDEX subject_lookups_digest ON subject_lookups (digest);
-- Sealed values differ each time they are written: an index on them finds nothing.
DROP INDEX requests_subject_email;
DROP INDEX requests_subject_phone;
