DROP TABLE opendsr_requests;
DROP TABLE opendsr_controllers;
