DROP INDEX requests_subject_phone;
DROP INDEX requests_subject_email;
DROP INDEX requests_received;
DROP INDEX requests_kind_status_due;
DROP TABLE staff_sign_ins;
DROP TABLE staff_sessions;
