DROP TRIGGER due_tallies_delete;
DROP TRIGGER due_tallies_update_join;
DROP TRIGGER due_tallies_update_leave;
DROP TRIGGER due_tallies_insert;
DROP TABLE due_tallies;
