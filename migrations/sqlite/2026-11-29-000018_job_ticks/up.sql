-- Scheduled jobs (expiry, retention, reminders) run once per tick across every instance that
-- shares the database: the instance that inserts (job, tick) first runs it, the others find
-- the row and skip that tick.
CREATE TABLE job_ticks (
    job TEXT NOT NULL,
    tick BIGINT NOT NULL,
    instance TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    PRIMARY KEY (job, tick)
);
