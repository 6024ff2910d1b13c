DROP TABLE subject_sessions;
DROP TABLE verification_challenges;
ALTER TABLE requests DROP COLUMN duplicate_of;
ALTER TABLE requests DROP COLUMN platform_user_id;
ALTER TABLE requests DROP COLUMN representative;
ALTER TABLE requests DROP COLUMN verified_methods;
ALTER TABLE requests ADD COLUMN subject_token_hash TEXT NOT NULL DEFAULT '';
