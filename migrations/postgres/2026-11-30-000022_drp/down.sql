DROP TABLE drp_requests;
DROP TABLE drp_tokens;
DROP TABLE drp_agents;
