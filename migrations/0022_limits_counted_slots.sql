-- Limits (issue 28, docs/limits.md "Cost"): a bucket's slots are counted
-- without a scan while its limit is not reached, and an outcome takes no
-- bucket lock while its buckets hold no task.
--
-- `limit_buckets.taken` bounds the bucket's running tasks from above: every
-- slot handed out is added (a membership's `slot` hint set, in the
-- statement that sets it, under the bucket's lock: the trigger below, or
-- the admitting insert itself), and nothing
-- takes one off but a recount under that lock (`taken` := the memberships
-- holding a hint whose task is `queued` or `processing`), done when `taken`
-- says full. No process writes it, and a crash rolls a grant and its count
-- back together, so nothing can make it fall below the truth; a freed slot
-- only makes it high until the next recount.
--
-- Admission reads it under the bucket's lock: when `concurrency - taken`
-- has room for the new tasks, they fit, without the count over every
-- running task of the bucket (which made a never-reached limit with many
-- queued tasks cost O(queued) per submission); when it has not, the exact
-- count from the task rows decides and is stored. An outcome clears its
-- hints without the bucket's lock, which it takes only when one of its
-- buckets holds a task (yadtq_limits_freed below).

ALTER TABLE limit_buckets ADD COLUMN IF NOT EXISTS taken integer NOT NULL DEFAULT 0;

-- Adds `n[i]` to bucket `ids[i]`'s `taken`, locking the buckets in id order
-- (this transaction's locks already: every path that sets a hint holds its
-- buckets; taken here in the fixed order all the same).
CREATE OR REPLACE FUNCTION yadtq_limits_add_taken(ids bigint[], n bigint[]) RETURNS void
LANGUAGE sql AS $$
    WITH d AS MATERIALIZED (
        SELECT u.id, sum(u.n) AS n FROM unnest(ids, n) AS u(id, n) GROUP BY u.id HAVING sum(u.n) <> 0
    ), locked AS MATERIALIZED (
        SELECT b.id FROM limit_buckets b WHERE b.id IN (SELECT id FROM d) ORDER BY b.id FOR NO KEY UPDATE OF b
    )
    UPDATE limit_buckets b SET taken = b.taken + d.n FROM d JOIN locked ON locked.id = d.id WHERE b.id = d.id;
$$;

-- A statement-level trigger (one update per bucket and statement, however
-- many memberships it touched) for the updates that set hints (releases);
-- the insert that admits a task with its slot adds it to `taken` itself
-- (store::tasks::insert_rows_planned), the only insert that sets one. A
-- statement's net change per bucket is added when positive (hints set);
-- hints cleared are left to the recount.
CREATE OR REPLACE FUNCTION yadtq_limits_taken_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM yadtq_limits_add_taken(array_agg(d.bucket_id), array_agg(d.n)) FROM (
        SELECT x.bucket_id, sum(x.s)::bigint AS n FROM (
            SELECT bucket_id, 1 AS s FROM yadtq_new WHERE slot
            UNION ALL
            SELECT bucket_id, -1 FROM yadtq_old WHERE slot
        ) x GROUP BY x.bucket_id HAVING sum(x.s) > 0
    ) d HAVING count(*) > 0;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS task_limits_taken_update ON task_limits;
CREATE TRIGGER task_limits_taken_update AFTER UPDATE ON task_limits
    REFERENCING OLD TABLE AS yadtq_old NEW TABLE AS yadtq_new FOR EACH STATEMENT EXECUTE FUNCTION yadtq_limits_taken_update();

-- `taken` := the bucket's running slot holders, for buckets `ids` this
-- transaction has locked (call it in a statement after the locks, so its
-- snapshot sees what earlier holders committed).
CREATE OR REPLACE FUNCTION yadtq_limits_recount(ids bigint[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE limit_buckets b SET taken = (
        SELECT count(*) FROM task_limits s JOIN tasks t ON t.id = s.task_id
        WHERE s.bucket_id = b.id AND s.slot AND t.status IN ('queued', 'processing'))
    WHERE b.id = ANY (ids);
$$;

-- Under the trigger's lock on task_limits (no hint changes meanwhile), the
-- count kept from here on.
UPDATE limit_buckets b SET taken = (SELECT count(*) FROM task_limits m WHERE m.bucket_id = b.id AND m.slot);

-- yadtq_limits_admit as in migration 0021, but step 3 reads the room from
-- `taken` (recounted first where it says full), and a task the insert made
-- limited and held already is not written again.
CREATE OR REPLACE FUNCTION yadtq_limits_admit(p_tasks text[], p_buckets bigint[])
RETURNS TABLE (task_id text, task_status text, is_limited boolean, is_released boolean, task_name text,
               task_args json, task_kwargs json, task_queue text, task_attempts integer, task_created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    locked bigint[];
    fast bigint[];
BEGIN
    SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}') INTO locked FROM (
        SELECT b.id FROM limit_buckets b WHERE b.id = ANY (p_buckets) ORDER BY b.id FOR NO KEY UPDATE OF b
    ) s;
    WITH m AS (
        INSERT INTO task_limits (task_id, bucket_id, seq, held)
        SELECT u.task_id, u.bucket_id, t.seq, t.status IN ('queued', 'held')
        FROM unnest(p_tasks, p_buckets) AS u(task_id, bucket_id) JOIN tasks t ON t.id = u.task_id
        WHERE u.bucket_id = ANY (locked)
        ORDER BY u.task_id, u.bucket_id
        ON CONFLICT DO NOTHING
        RETURNING task_id
    )
    UPDATE tasks t SET limited = true, status = CASE WHEN t.status = 'queued' THEN 'held' ELSE t.status END
    FROM (SELECT DISTINCT task_id FROM m) u WHERE t.id = u.task_id AND (NOT t.limited OR t.status = 'queued');
    -- Buckets whose `taken` says full are recounted first (an own statement:
    -- a snapshot after the locks).
    PERFORM yadtq_limits_recount(array_agg(b.id))
    FROM limit_buckets b JOIN limits l ON l.tenant = b.tenant AND l.name = b.limit_name
    WHERE b.id = ANY (locked) AND l.concurrency IS NOT NULL
      AND l.concurrency - b.taken
          < (SELECT count(*) FROM task_limits n WHERE n.bucket_id = b.id AND n.held AND n.task_id = ANY (p_tasks));
    -- Buckets where every new held task fits at once.
    SELECT coalesce(array_agg(b.id), '{}') INTO fast
    FROM limit_buckets b JOIN limits l ON l.tenant = b.tenant AND l.name = b.limit_name
    WHERE b.id = ANY (locked) AND l.concurrency IS NOT NULL AND l.rate_count IS NULL
      AND NOT EXISTS (SELECT 1 FROM task_limits h JOIN tasks t ON t.id = h.task_id
                      WHERE h.bucket_id = b.id AND h.held AND t.status = 'held' AND h.task_id <> ALL (p_tasks))
      AND l.concurrency - b.taken
          >= (SELECT count(*) FROM task_limits n WHERE n.bucket_id = b.id AND n.held AND n.task_id = ANY (p_tasks));
    RETURN QUERY
    WITH go AS (
        SELECT t.id FROM tasks t
        WHERE t.id = ANY (p_tasks) AND t.status = 'held' AND t.cancel_requested_at IS NULL
          AND EXISTS (SELECT 1 FROM task_limits m WHERE m.task_id = t.id)
          AND NOT EXISTS (SELECT 1 FROM task_limits m WHERE m.task_id = t.id AND m.bucket_id <> ALL (fast))
        ORDER BY t.id FOR UPDATE OF t
    ), moved AS (
        UPDATE tasks t SET status = 'queued', published_at = NULL FROM go WHERE t.id = go.id RETURNING t.id
    ), members AS (
        UPDATE task_limits m SET held = false, slot = true FROM moved WHERE m.task_id = moved.id
    ), turns AS (
        UPDATE limit_buckets b SET last_turn = nextval('limit_turns'),
               last_release_at = greatest(clock_timestamp(), b.last_release_at)
        WHERE b.id IN (SELECT m.bucket_id FROM task_limits m JOIN moved ON moved.id = m.task_id)
    )
    -- This statement's snapshot does not see `moved`'s update: the status is
    -- said from `moved`; the memberships (an earlier statement's) are seen.
    SELECT t.id, CASE WHEN mv.id IS NOT NULL THEN 'queued' ELSE t.status END,
           EXISTS (SELECT 1 FROM task_limits m WHERE m.task_id = t.id), mv.id IS NOT NULL,
           t.name, t.args, t.kwargs, t.queue, t.attempts, t.created_at
    FROM tasks t LEFT JOIN moved mv ON mv.id = t.id
    WHERE t.id IN (SELECT DISTINCT unnest(p_tasks));
END
$$;

-- yadtq_limits_freed as in migration 0021, but the buckets are locked only
-- when one of them holds a task (read in the statement's snapshot): an
-- outcome of a limit that is not reached takes no bucket lock, so outcomes
-- and submissions of one bucket do not queue behind each other's commits.
-- The hints are cleared after the locks (lock order: buckets, then
-- memberships). A held task committed after the snapshot, by a submission
-- that counted this outcome's slot as running, is released by the next
-- release of its bucket or the leader's pass (within a quarter of its
-- period); counts stay exact, as every grant is made under the lock.
CREATE OR REPLACE FUNCTION yadtq_limits_freed(freed text[]) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    locked bigint[];
BEGIN
    IF freed IS NULL OR cardinality(freed) = 0 THEN
        RETURN '{}';
    END IF;
    SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}') INTO locked FROM (
        SELECT b.id FROM limit_buckets b
        WHERE b.id IN (SELECT m.bucket_id FROM task_limits m WHERE m.task_id = ANY (freed))
          AND EXISTS (SELECT 1 FROM task_limits h JOIN tasks t ON t.id = h.task_id
                      WHERE h.bucket_id = b.id AND h.held AND t.status = 'held')
        ORDER BY b.id FOR NO KEY UPDATE OF b
    ) s;
    UPDATE task_limits m SET slot = false WHERE m.task_id = ANY (freed) AND m.slot;
    IF cardinality(locked) = 0 THEN
        RETURN '{}';
    END IF;
    RETURN ARRAY(
        SELECT u.id FROM unnest(locked) AS u(id)
        WHERE EXISTS (SELECT 1 FROM task_limits h JOIN tasks t ON t.id = h.task_id
                      WHERE h.bucket_id = u.id AND h.held AND t.status = 'held')
        ORDER BY u.id
    );
END
$$;
