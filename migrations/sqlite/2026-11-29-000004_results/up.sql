-- Results handed to the subject (an access report, a portability export), prepared by staff
-- until the fulfilment connectors (#7) produce them. Downloadable by the verified subject only,
-- until expires_at; every download is counted.
CREATE TABLE request_results (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    downloads INTEGER NOT NULL DEFAULT 0,
    last_downloaded_at TIMESTAMP
);
CREATE INDEX request_results_request ON request_results (request_id, created_at);
