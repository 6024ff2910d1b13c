CREATE INDEX requests_subject_email ON requests (subject_email);
CREATE INDEX requests_subject_phone ON requests (subject_phone);
DROP TABLE subject_lookups;
