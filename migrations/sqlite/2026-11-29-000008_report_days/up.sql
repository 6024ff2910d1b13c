-- The dashboard's figures for past days that can no longer change (storage::report_days):
-- counted once, the first time a dashboard needs them, then read as one row a day.
-- A day is `YYYY-MM-DD` (UTC).

-- The day's answered requests: one line per kind and whole hours from receipt to answer,
-- `kind hours n with_due on_time`.
CREATE TABLE report_answered_days (
    day TEXT PRIMARY KEY NOT NULL,
    buckets TEXT NOT NULL
);

-- The day's received requests: 24 comma-separated counts, one per UTC hour.
CREATE TABLE report_received_days (
    day TEXT PRIMARY KEY NOT NULL,
    hours TEXT NOT NULL
);
