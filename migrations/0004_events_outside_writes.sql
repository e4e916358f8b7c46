-- Task events are sent by the code that changed the rows, after its commit
-- (yadtq_core::store::notify_changed), no longer by a row trigger inside the
-- writing transaction: PostgreSQL holds a cluster-wide lock from a notifying
-- transaction's commit until it ends, so every claim and outcome batch waited
-- for the previous one's WAL flush ("Lock: object" waits in pg_stat_activity).
-- The payload is now a comma-separated list of task ids.
DROP TRIGGER tasks_notify_event ON tasks;
DROP FUNCTION yadtq_notify_task_event();
