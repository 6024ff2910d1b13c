DROP INDEX request_events_unsealed;
