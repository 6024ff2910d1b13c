CREATE INDEX requests_status_kind ON requests (status, kind);
DROP TRIGGER request_tallies_track ON requests;
DROP FUNCTION request_tallies_track();
DROP FUNCTION request_tallies_add(TEXT, TEXT, TIMESTAMP, TEXT, BIGINT);
DROP TABLE request_tallies;
