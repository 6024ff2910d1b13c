DROP TABLE consent_events;
