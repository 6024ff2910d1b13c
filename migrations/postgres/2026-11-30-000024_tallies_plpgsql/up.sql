-- The tallies' upsert as PL/pgSQL instead of SQL (migration 000019). PostgreSQL 15 parses,
-- analyses and plans a SQL-language function's body again on every call that does not inline
-- it, and a trigger's call never does: under `rightsflow bench intake` that was ~17% of
-- PostgreSQL's time (`perf`: fmgr_sql under AfterTriggerFireDeferred, one call per request at
-- every commit). PL/pgSQL prepares its statement once per session and reuses the plan.
CREATE OR REPLACE FUNCTION request_tallies_add(p_status TEXT, p_kind TEXT, p_due TIMESTAMP, p_id TEXT, p_n BIGINT)
RETURNS void AS $$
BEGIN
    INSERT INTO request_tallies (status, kind, dated, shard, n)
    VALUES (p_status, p_kind, CASE WHEN p_due IS NULL THEN 0 ELSE 1 END, right(p_id, 1), p_n)
    ON CONFLICT (status, kind, dated, shard) DO UPDATE SET n = request_tallies.n + EXCLUDED.n;
END
$$ LANGUAGE plpgsql;
