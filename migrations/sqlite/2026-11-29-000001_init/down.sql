DROP TABLE outbox;
DROP TABLE request_events;
DROP TABLE requests;
DROP TABLE staff_users;
