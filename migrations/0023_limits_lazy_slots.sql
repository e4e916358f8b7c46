-- Limits (issue 28, docs/limits.md "Cost"): the outcome of a limited task
-- writes nothing of its limits while none of its buckets holds a task.
--
-- Until now an outcome cleared its memberships' `slot` hints (an update of
-- a row per membership, not HOT: the hint is a partial index's predicate,
-- plus the statement trigger of migration 0022). The hint only narrows
-- the count's scan; a hint left set on a finished task costs a probe,
-- never a slot (the count joins the task's status). So hints are now
-- cleared by the count itself (`yadtq_limits_recount`, and a release's
-- count), and a count is forced once a bucket's `taken` has grown by
-- `yadtq_limits_stale_slots()` since the last one, whatever the
-- concurrency: the hints a count scans stay bounded by the running tasks
-- plus that bound, and each finished task's hint is cleared once, by one
-- statement for thousands of them, off the outcome's path.

-- `taken` as the last count left it: `taken - counted` is the slots
-- handed out since (an upper bound of the stale hints).
ALTER TABLE limit_buckets ADD COLUMN IF NOT EXISTS counted integer NOT NULL DEFAULT 0;

-- Slots a bucket may hand out between two counts.
CREATE OR REPLACE FUNCTION yadtq_limits_stale_slots() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 4096 $$;

-- `taken` and `counted` := the bucket's running slot holders, for buckets
-- `ids` this transaction has locked (call it in a statement after the
-- locks, so its snapshot sees what earlier holders committed); the hints
-- of memberships whose task no longer runs are cleared.
CREATE OR REPLACE FUNCTION yadtq_limits_recount(ids bigint[]) RETURNS void
LANGUAGE sql AS $$
    WITH s AS MATERIALIZED (
        SELECT m.bucket_id, m.task_id, t.status IN ('queued', 'processing') AS running
        FROM task_limits m JOIN tasks t ON t.id = m.task_id
        WHERE m.bucket_id = ANY (ids) AND m.slot
    ), cleared AS (
        UPDATE task_limits m SET slot = false FROM s
        WHERE NOT s.running AND m.task_id = s.task_id AND m.bucket_id = s.bucket_id
    )
    UPDATE limit_buckets b SET taken = c.n, counted = c.n
    FROM (SELECT u.id, (SELECT count(*) FROM s WHERE s.bucket_id = u.id AND s.running)::integer AS n
          FROM unnest(ids) AS u(id)) c
    WHERE b.id = c.id;
$$;

-- yadtq_limits_admit as in migration 0022, but a bucket is also recounted
-- when `taken` has grown by the stale bound since the last count.
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
    -- Buckets whose `taken` says full, or has grown by the stale bound since
    -- the last count, are recounted first (an own statement: a snapshot
    -- after the locks).
    PERFORM yadtq_limits_recount(array_agg(b.id))
    FROM limit_buckets b JOIN limits l ON l.tenant = b.tenant AND l.name = b.limit_name
    WHERE b.id = ANY (locked)
      AND ((l.concurrency IS NOT NULL
            AND l.concurrency - b.taken
                < (SELECT count(*) FROM task_limits n WHERE n.bucket_id = b.id AND n.held AND n.task_id = ANY (p_tasks)))
           OR b.taken - b.counted >= yadtq_limits_stale_slots());
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

-- yadtq_limits_freed as in migration 0022, without clearing the freed
-- tasks' hints (the next count does): it locks, in id order, the freed
-- tasks' buckets that hold a task (read in the statement's snapshot) and
-- returns those that still do under the locks. A limit that is not
-- reached costs an outcome this probe and nothing else.
CREATE OR REPLACE FUNCTION yadtq_limits_freed(freed text[]) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE
-- Planned once per session (each call planned its statements again, which
-- cost several times their execution: see migration 0024).
SET plan_cache_mode = force_generic_plan AS $$
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
