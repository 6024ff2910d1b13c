-- How many open requests fall due on each UTC day, kept by a trigger in the same transaction
-- as every change to a request (as request_tallies, migration 000019, and deferred to commit
-- for the same reason). The dashboard's "overdue" figure sums the days before today and counts
-- only today's requests live, instead of counting every overdue request. 16 shards by the id's
-- last hex digit. "Open" is the statuses of storage::requests::open_condition.
CREATE TABLE due_tallies (
    due_day TEXT NOT NULL,
    shard TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (due_day, shard)
);

INSERT INTO due_tallies (due_day, shard, n)
SELECT to_char(due_at, 'YYYY-MM-DD'), right(id, 1), count(*)
FROM requests
WHERE status IN ('awaiting_verification', 'in_review', 'awaiting_subject', 'in_progress')
    AND due_at IS NOT NULL
GROUP BY to_char(due_at, 'YYYY-MM-DD'), right(id, 1);

CREATE FUNCTION due_tallies_track() RETURNS trigger AS $$
DECLARE
    open_statuses TEXT[] := ARRAY['awaiting_verification', 'in_review', 'awaiting_subject', 'in_progress'];
    old_day TEXT;
    new_day TEXT;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = ANY (open_statuses) AND OLD.due_at IS NOT NULL THEN
        old_day := to_char(OLD.due_at, 'YYYY-MM-DD');
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = ANY (open_statuses) AND NEW.due_at IS NOT NULL THEN
        new_day := to_char(NEW.due_at, 'YYYY-MM-DD');
    END IF;
    IF old_day IS NOT DISTINCT FROM new_day THEN
        RETURN NULL;
    END IF;
    -- Two rows change: lock them in key order, so two such changes cannot deadlock.
    IF new_day IS NULL OR (old_day IS NOT NULL AND old_day < new_day) THEN
        PERFORM due_tallies_add(old_day, COALESCE(OLD.id, NEW.id), -1);
        PERFORM due_tallies_add(new_day, COALESCE(NEW.id, OLD.id), 1);
    ELSE
        PERFORM due_tallies_add(new_day, COALESCE(NEW.id, OLD.id), 1);
        PERFORM due_tallies_add(old_day, COALESCE(OLD.id, NEW.id), -1);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

-- A NULL day is "not counted": nothing to do.
CREATE FUNCTION due_tallies_add(p_day TEXT, p_id TEXT, p_n BIGINT) RETURNS void AS $$
BEGIN
    IF p_day IS NOT NULL THEN
        INSERT INTO due_tallies (due_day, shard, n) VALUES (p_day, right(p_id, 1), p_n)
        ON CONFLICT (due_day, shard) DO UPDATE SET n = due_tallies.n + EXCLUDED.n;
    END IF;
END
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER due_tallies_track
AFTER INSERT OR UPDATE OR DELETE ON requests
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION due_tallies_track();

-- Both tally tables are a few hundred rows updated on every submission and status change:
-- room on each page for the new versions (HOT updates, pruned on the page) and a vacuum after
-- every 2,000 dead rows keep them a few pages long instead of growing with every update.
ALTER TABLE request_tallies SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000);
ALTER TABLE due_tallies SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000);
