DROP TABLE report_received_days;
DROP TABLE report_answered_days;
