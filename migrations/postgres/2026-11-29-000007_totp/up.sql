-- The staff second factor (TOTP). totp_secret is set when enrolment starts and counts once
-- totp_enabled_at is set (the first code typed proved the app has it); totp_last_step is the
-- step of the last code accepted, so a code works once; totp_required is the admin's demand.
ALTER TABLE staff_users ADD COLUMN totp_secret TEXT;
ALTER TABLE staff_users ADD COLUMN totp_enabled_at TIMESTAMP;
ALTER TABLE staff_users ADD COLUMN totp_last_step BIGINT;
ALTER TABLE staff_users ADD COLUMN totp_required BOOLEAN NOT NULL DEFAULT FALSE;
