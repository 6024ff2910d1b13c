-- Results are sealed at rest (AES-256-GCM) in chunks, written and read as a stream, so a
-- package of any size never sits whole in memory. A result's row keeps what the pages show and
-- the evidence (size, SHA-256, downloads) after its chunks are purged at expiry.
ALTER TABLE request_results ADD COLUMN blob_id TEXT;
ALTER TABLE request_results ADD COLUMN key_id TEXT;
ALTER TABLE request_results ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_results ADD COLUMN purged_at TIMESTAMP;
CREATE INDEX request_results_expiry ON request_results (expires_at);

CREATE TABLE result_chunks (
    blob_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    bytes BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (blob_id, seq)
);
CREATE INDEX result_chunks_created ON result_chunks (created_at);
