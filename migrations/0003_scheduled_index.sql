-- The scheduler is the only reader of (status, run_at), and only for
-- `scheduled` rows. A full index took an entry for every row version (insert,
-- publish mark, claim, outcome: four per task); the partial one only for
-- scheduled rows.
DROP INDEX tasks_status_run_at;
CREATE INDEX tasks_scheduled_run_at ON tasks (run_at) WHERE status = 'scheduled';
