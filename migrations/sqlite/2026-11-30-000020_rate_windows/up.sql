-- The rate limits that guard against guessing (one-time codes per request and per address,
-- staff sign-in and code resends per address) count in the database, so several instances
-- behind a balancer share one budget. One row per limiter, key and one-minute window; the key
-- is an HMAC under the index key (addresses and references are not stored). Old windows are
-- deleted by the expiry job.
CREATE TABLE rate_windows (
    limiter TEXT NOT NULL,
    key_digest TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    PRIMARY KEY (limiter, key_digest, window_start)
);
