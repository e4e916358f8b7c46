-- Statuses a newer release adds (`waiting` for workflows, `held` for limits)
-- are counted by GET /queues and the metrics sampler of this release too,
-- as "other" active statuses. This partial index holds only rows in a status
-- outside the six this release knows, so it stays empty until a newer
-- release writes one, and counting them reads it instead of the table.
-- (Before this, the CHECK on `status` admits none: building it costs one
-- scan of the table at start; docs/deployment.md ("Upgrades") shows how to
-- build it beforehand with CREATE INDEX CONCURRENTLY, which this migration
-- then skips.)
CREATE INDEX IF NOT EXISTS tasks_other_status ON tasks (queue, status)
    WHERE status NOT IN ('queued', 'scheduled', 'processing', 'success', 'failed', 'cancelled');
