DROP TABLE request_results;
