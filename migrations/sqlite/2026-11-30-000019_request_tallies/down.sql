CREATE INDEX requests_status_kind ON requests (status, kind);
DROP TRIGGER request_tallies_delete;
DROP TRIGGER request_tallies_update;
DROP TRIGGER request_tallies_insert;
DROP TABLE request_tallies;
