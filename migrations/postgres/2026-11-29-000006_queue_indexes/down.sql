DROP INDEX requests_answered;
DROP INDEX requests_status_kind;
DROP INDEX requests_open_due;
CREATE INDEX requests_kind_status_due ON requests (kind, status, due_at);
