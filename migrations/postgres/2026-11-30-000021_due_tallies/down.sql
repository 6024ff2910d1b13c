DROP TRIGGER due_tallies_track ON requests;
DROP FUNCTION due_tallies_track();
DROP FUNCTION due_tallies_add(TEXT, TEXT, BIGINT);
DROP TABLE due_tallies;
ALTER TABLE request_tallies RESET (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold);
