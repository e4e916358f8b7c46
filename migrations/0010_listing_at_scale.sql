-- Listing at scale: every documented filter of GET /tasks reads an index in
-- `seq` order and stops after one page, whatever the table's size (the
-- store's list statements, checked against these indexes by
-- core/src/store/list_plans.rs on 1,000,000 rows). Every listing filters by
-- tenant first, so each index leads with it. A combination of filters uses
-- the index of one of them and filters the others.
--
-- On a large table each CREATE INDEX blocks writes while it builds (about a
-- second per 100,000 rows here); docs/deployment.md ("Upgrades") shows how to
-- build them beforehand with CREATE INDEX CONCURRENTLY, which this migration
-- then skips (IF NOT EXISTS).

-- No filter (and the cursor alone).
CREATE INDEX IF NOT EXISTS tasks_list ON tasks (tenant, seq);
-- `status`.
CREATE INDEX IF NOT EXISTS tasks_list_status ON tasks (tenant, status, seq);
-- `task` (the handler name).
CREATE INDEX IF NOT EXISTS tasks_list_name ON tasks (tenant, name, seq);
-- `queue`, and the queues a key may see (one index range per queue).
CREATE INDEX IF NOT EXISTS tasks_list_queue ON tasks (tenant, queue, seq);
-- `queue` with `status` (a dashboard's per-queue views).
CREATE INDEX IF NOT EXISTS tasks_list_queue_status ON tasks (tenant, queue, status, seq);
-- `worker`: only claimed tasks have one.
CREATE INDEX IF NOT EXISTS tasks_list_worker ON tasks (tenant, worker_id, seq) WHERE worker_id IS NOT NULL;

-- GET /workers pages newest first by `seq` (the workers table stays small:
-- the maintenance leader prunes rows past the retention).
ALTER TABLE workers ADD COLUMN IF NOT EXISTS seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX IF NOT EXISTS workers_seq ON workers (seq);
