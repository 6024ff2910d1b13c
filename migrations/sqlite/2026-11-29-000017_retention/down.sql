DROP TABLE anonymised_requests;
