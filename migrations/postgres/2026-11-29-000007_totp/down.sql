ALTER TABLE staff_users DROP COLUMN totp_required;
ALTER TABLE staff_users DROP COLUMN totp_last_step;
ALTER TABLE staff_users DROP COLUMN totp_enabled_at;
ALTER TABLE staff_users DROP COLUMN totp_secret;
