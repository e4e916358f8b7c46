-- Unique tasks (docs/unique.md): at most one task per unique key whose
-- status holds the key. `unique_key` is the tenant, task name, the client's
-- key (or a hash of the task) and, with `for_seconds`, the time bucket
-- (yadtq_unique_key below); `unique_states` lists the terminal statuses the
-- submission's `while` added. Every status other than success, failed and
-- cancelled always holds the key, so a status a later release adds
-- (`waiting`, `held`) holds it without a migration.
--
-- Nullable and additive: a row without a key has NULL in both, fails the
-- index predicate at its first test and never enters the index, so plain
-- submissions pay no index maintenance. The index is the arbiter of the
-- insert's ON CONFLICT: two gateways inserting the same key at once make
-- one row (the second waits for the first's commit and inserts nothing).
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS unique_key text,
                  ADD COLUMN IF NOT EXISTS unique_states text[];

-- (Building it reads the table once at start; every existing row is left
-- out. docs/deployment.md ("Upgrades") shows how to build such an index
-- beforehand with CREATE INDEX CONCURRENTLY, which this then skips.)
CREATE UNIQUE INDEX IF NOT EXISTS tasks_unique_key ON tasks (unique_key)
    WHERE unique_key IS NOT NULL
      AND (status <> ALL (ARRAY['success', 'failed', 'cancelled']) OR status = ANY (unique_states));

-- The stored key of a submission: `base` (the JSON array [tenant, task
-- name, key] the gateway composes) alone, or with `for_seconds` followed by
-- its bucket of the database clock, floor(epoch / for_seconds): every
-- gateway buckets by the same clock. STABLE (now() is the transaction's
-- start), a plain SQL expression that PostgreSQL inlines.
CREATE OR REPLACE FUNCTION yadtq_unique_key(base text, for_seconds bigint) RETURNS text
    LANGUAGE sql STABLE
    RETURN CASE WHEN for_seconds IS NULL THEN base
                ELSE base || '/' || for_seconds || '/' || floor(extract(epoch FROM now()) / for_seconds)::bigint
           END;
