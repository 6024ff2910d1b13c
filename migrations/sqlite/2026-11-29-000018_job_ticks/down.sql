DROP TABLE job_ticks;
