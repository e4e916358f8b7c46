-- Retries with backoff, schedules, cancel, progress, listing and live status.

-- Per-task backoff (seconds); NULL takes the worker's default.
ALTER TABLE tasks ADD COLUMN retry_backoff_base double precision;
ALTER TABLE tasks ADD COLUMN retry_backoff_cap double precision;

-- Newest-first keyset pagination of GET /tasks.
CREATE INDEX tasks_seq ON tasks (seq);
-- The retention cleaner: finished tasks by age.
CREATE INDEX tasks_finished_at ON tasks (finished_at) WHERE finished_at IS NOT NULL;
-- Cancel requests the owner must act on (checked with each heartbeat).
CREATE INDEX tasks_cancel_requested ON tasks (worker_id)
    WHERE status = 'processing' AND cancel_requested_at IS NOT NULL;

ALTER TABLE task_attempts DROP CONSTRAINT task_attempts_outcome_check;
ALTER TABLE task_attempts ADD CONSTRAINT task_attempts_outcome_check
    CHECK (outcome IN ('success', 'failed', 'retry', 'timeout', 'worker_lost', 'cancelled'));

-- Status and progress changes feed long-poll and server-sent events on every
-- gateway: NOTIFY yadtq_task_events with the task id.
CREATE FUNCTION yadtq_notify_task_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('yadtq_task_events', NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_notify_event
    AFTER UPDATE OF status, progress ON tasks
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.progress IS DISTINCT FROM NEW.progress)
    EXECUTE FUNCTION yadtq_notify_task_event();
