-- Limits (issue 28, docs/limits.md "Cost"): one round trip per path.
--
-- yadtq_limits_freed: the outcome of a limited task in one round trip. Called from the outcome statement itself
-- (`WITH done AS (UPDATE tasks ...) SELECT yadtq_limits_freed(ARRAY(SELECT id
-- FROM done WHERE limited))`), after its task rows are locked (lock order:
-- tasks, then buckets):
--   1. locks the buckets of the tasks whose slots the outcome frees, in id
--      order, waiting, FOR NO KEY UPDATE (as store::limits does);
--   2. clears those tasks' `slot` hints (they no longer run);
--   3. returns the locked buckets that hold a task: only they have anything to
--      release, which the caller then does (store::limits::release).
-- Each statement of a volatile PL/pgSQL function takes its own snapshot in
-- READ COMMITTED, so step 3 runs after the locks and sees every held task a
-- previous holder of these buckets committed; the outcome itself commits
-- with the statement, so a submitter waiting for a lock counts the slot free.
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
        ORDER BY b.id FOR NO KEY UPDATE OF b
    ) s;
    UPDATE task_limits m SET slot = false WHERE m.task_id = ANY (freed) AND m.slot;
    RETURN ARRAY(
        SELECT u.id FROM unnest(locked) AS u(id)
        WHERE EXISTS (SELECT 1 FROM task_limits h JOIN tasks t ON t.id = h.task_id
                      WHERE h.bucket_id = u.id AND h.held AND t.status = 'held')
        ORDER BY u.id
    );
END
$$;

-- A submission's memberships and, while no limit is reached, its release, in
-- one round trip (store::limits::settle). For tasks `tasks[i]` just inserted
-- (held, or scheduled / waiting) joining buckets `buckets[i]`:
--   1. locks the buckets in id order, waiting, FOR NO KEY UPDATE (a
--      submission locks its buckets before inserting the memberships that
--      reference them);
--   2. inserts the memberships (held for a held or queued task) and makes
--      the tasks limited (a queued one held);
--   3. under the locks (a statement of its own, so a snapshot that sees what
--      a previous holder committed) releases at once the held tasks all of
--      whose buckets have a concurrency, no rate, no older held task (those
--      go first), and room for every new task of this call;
--   4. returns every task of the call with its status after this (queued for
--      the released ones) and whether it is limited. A held task left held
--      is released by the caller's store::limits::release (the full rules:
--      rates, round-robin, older held tasks first) in the same transaction.
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
    FROM (SELECT DISTINCT task_id FROM m) u WHERE t.id = u.task_id;
    -- Buckets where every new held task fits at once.
    SELECT coalesce(array_agg(b.id), '{}') INTO fast
    FROM limit_buckets b JOIN limits l ON l.tenant = b.tenant AND l.name = b.limit_name
    WHERE b.id = ANY (locked) AND l.concurrency IS NOT NULL AND l.rate_count IS NULL
      AND NOT EXISTS (SELECT 1 FROM task_limits h JOIN tasks t ON t.id = h.task_id
                      WHERE h.bucket_id = b.id AND h.held AND t.status = 'held' AND h.task_id <> ALL (p_tasks))
      AND l.concurrency - (SELECT count(*) FROM task_limits s JOIN tasks t ON t.id = s.task_id
                           WHERE s.bucket_id = b.id AND s.slot AND t.status IN ('queued', 'processing'))
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
