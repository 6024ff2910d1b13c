CREATE OR REPLACE FUNCTION request_tallies_add(p_status TEXT, p_kind TEXT, p_due TIMESTAMP, p_id TEXT, p_n BIGINT)
RETURNS void AS $$
    INSERT INTO request_tallies (status, kind, dated, shard, n)
    VALUES (p_status, p_kind, CASE WHEN p_due IS NULL THEN 0 ELSE 1 END, right(p_id, 1), p_n)
    ON CONFLICT (status, kind, dated, shard) DO UPDATE SET n = request_tallies.n + EXCLUDED.n;
$$ LANGUAGE sql;
