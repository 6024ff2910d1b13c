DROP TABLE result_chunks;
DROP INDEX request_results_expiry;
ALTER TABLE request_results DROP COLUMN purged_at;
ALTER TABLE request_results DROP COLUMN chunks;
ALTER TABLE request_results DROP COLUMN key_id;
ALTER TABLE request_results DROP COLUMN blob_id;
