-- The maintenance leader samples queued tasks per queue (count, oldest) for
-- the metrics every couple of seconds: a small partial index (queued rows
-- leave it at their claim) keeps that from scanning the table.
CREATE INDEX IF NOT EXISTS tasks_queued_queue ON tasks (queue) WHERE status = 'queued';
