-- Indexes for the console at scale (1,000,000 requests; see docs/PERFORMANCE.md).
-- The open statuses are written out because a partial index is only used by a query that
-- names the same condition: keep them in step with storage::requests::OPEN_STATUSES.
DROP INDEX requests_kind_status_due;

-- The default queue: open requests by due date (those without one come after, by receipt).
CREATE INDEX requests_open_due ON requests (due_at, received_at, id)
    WHERE status IN ('awaiting_verification', 'in_review', 'awaiting_subject', 'in_progress');

-- Counts by status and kind read the index alone.
CREATE INDEX requests_status_kind ON requests (status, kind);

-- The dashboard's "answered in the period": everything it reads is in the index.
CREATE INDEX requests_answered ON requests (closed_at, kind, received_at, due_at)
    WHERE status IN ('completed', 'rejected');
