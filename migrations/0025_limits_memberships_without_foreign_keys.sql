-- Limits (issue 28, docs/limits.md "Cost"): a membership costs its insert
-- one heap row and two index entries, and no foreign-key check.
--
-- The memberships' two foreign keys (to the task, to the bucket) ran two
-- checks per inserted membership, each a query, at the end of the planned
-- insert: while it held its buckets' locks, which every concurrent
-- admission of those buckets waits for. What they gave is kept otherwise:
--   * the cascades are triggers: a deleted task (retention, a workflow's
--     deletion) deletes its memberships, a row trigger that fires only for
--     a `limited` task; a deleted bucket (its limit deleted) deletes its
--     memberships. They fire for every release's statements alike, so a
--     process of the previous release deleting tasks or a limit leaves no
--     membership behind.
--   * a membership names a bucket that exists: every path that inserts one
--     locks its buckets first (yadtq_limits_admit, the planned insert's
--     second try), except the planned insert's first try, which now locks
--     every bucket its memberships name at its end (`locked`, `FOR NO KEY
--     UPDATE`, as it locked those it adds slots to) and confirms that each
--     still exists: a bucket deleted since its lock-free read sends it to
--     its second try, as the foreign-key violation did.
-- The bucket's two indexes (all memberships, for that cascade; those with
-- a `slot` hint, for the count) become one on (bucket_id, slot), which
-- serves both; and yadtq_limits_confirm runs once per insert, not once per
-- row returned.

ALTER TABLE task_limits DROP CONSTRAINT IF EXISTS task_limits_task_id_fkey;
ALTER TABLE task_limits DROP CONSTRAINT IF EXISTS task_limits_bucket_id_fkey;

CREATE INDEX IF NOT EXISTS task_limits_bucket_slot ON task_limits (bucket_id, slot);
DROP INDEX IF EXISTS task_limits_slot;
DROP INDEX IF EXISTS task_limits_bucket;

-- A deleted task's or bucket's memberships (the trigger's table says which).
CREATE OR REPLACE FUNCTION yadtq_limits_members_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'tasks' THEN
        DELETE FROM task_limits WHERE task_id = OLD.id;
    ELSE
        DELETE FROM task_limits WHERE bucket_id = OLD.id;
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS tasks_limits_deleted ON tasks;
CREATE TRIGGER tasks_limits_deleted AFTER DELETE ON tasks
    FOR EACH ROW WHEN (OLD.limited) EXECUTE FUNCTION yadtq_limits_members_deleted();
DROP TRIGGER IF EXISTS limit_buckets_deleted ON limit_buckets;
CREATE TRIGGER limit_buckets_deleted AFTER DELETE ON limit_buckets
    FOR EACH ROW EXECUTE FUNCTION yadtq_limits_members_deleted();

-- yadtq_tasks_insert_planned as in migration 0024 but for `named`, `locked`
-- and the confirmation (one call, counting the named buckets locked), and
-- without sequential scans: planned once per session, it kept a plan made
-- while `limit_buckets` looked small (its statistics lag the buckets a
-- keyed limit creates), which scanned all of them three times per call
-- (0.47 ms per one-task call with 1,000 buckets, 0.375 ms without; every
-- lookup it makes has its index). yadtq_limits_freed likewise.
ALTER FUNCTION yadtq_limits_freed(text[]) SET enable_seqscan = off;
CREATE OR REPLACE FUNCTION yadtq_tasks_insert_planned(
    p_ids text[], p_names text[], p_args text[], p_kwargs text[], p_queues text[], p_max_retries integer[],
    p_timeouts float8[], p_run_at timestamptz[], p_backoff_base float8[], p_backoff_cap float8[], p_hashes text[],
    p_tenants text[], p_traceparents text[], p_tracestates text[], p_unique_bases text[], p_unique_for bigint[],
    p_unique_states text[], p_waiting boolean[], p_plan_buckets text[], p_plan_limits text[], p_plan_listed text[])
RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $fn$
DECLARE
    v_fast boolean := true;
BEGIN
  LOOP
    BEGIN
    RETURN QUERY
    WITH input AS MATERIALIZED (
      SELECT t.*, (SELECT string_agg(lt.limit_name, ',' ORDER BY lt.limit_name) FROM limit_tasks lt
                   WHERE lt.tenant = t.tenant AND lt.task_name = t.name) AS listed,
             string_to_array(t.pbuckets, ',')::bigint[] AS plan
      FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::float8[],
                  $8::timestamptz[], $9::float8[], $10::float8[], $11::text[], $12::text[], $13::text[],
                  $14::text[], $15::text[], $16::bigint[], $17::text[], $18::bool[], $19::text[], $20::text[],
                  $21::text[])
           AS t(id, name, args, kwargs, queue, max_retries, timeout_seconds, run_at, base, cap, hash, tenant,
                tp, ts, ubase, ufor, ustates, w, pbuckets, plimits, plisted)
    ), kept_locked AS MATERIALIZED (
      -- The second try: the buckets exist until the commit (a DELETE of
      -- their limit waits), so every membership names a bucket.
      SELECT b.id, b.tenant, b.limit_name, b.taken, b.counted FROM limit_buckets b
      WHERE NOT v_fast AND b.id IN (SELECT unnest(plan) FROM input) ORDER BY b.id FOR KEY SHARE OF b
    ), kept AS MATERIALIZED (
      -- The first: no lock (concurrent submissions sharing a bucket would
      -- each add a member to its lockers); a bucket deleted meanwhile is
      -- missing from `locked` below, and the second try runs.
      SELECT b.id, b.tenant, b.limit_name, b.taken, b.counted FROM limit_buckets b
      WHERE v_fast AND b.id IN (SELECT unnest(plan) FROM input)
      UNION ALL
      SELECT * FROM kept_locked
    ), room AS MATERIALIZED (
      -- Read without the bucket's lock: a guess the guard below confirms.
      SELECT k.id, k.tenant, k.limit_name,
             l.concurrency IS NOT NULL AND l.rate_count IS NULL
             AND k.taken - k.counted < yadtq_limits_stale_slots()
             AND l.concurrency - k.taken >= (SELECT count(*) FROM input i
                                            WHERE k.id = ANY (i.plan) AND i.run_at IS NULL AND NOT i.w)
             AND NOT EXISTS (SELECT 1 FROM task_limits h JOIN tasks ht ON ht.id = h.task_id
                             WHERE h.bucket_id = k.id AND h.held AND ht.status = 'held') AS fits
      FROM kept k JOIN limits l ON l.tenant = k.tenant AND l.name = k.limit_name
    ), checked AS MATERIALIZED (
      SELECT i.*, i.listed IS NOT NULL OR i.plan IS NOT NULL AS lim, coalesce(p.ok, false) AS planned,
             coalesce(v_fast AND p.ok AND p.fits AND i.run_at IS NULL AND NOT i.w, false) AS admitted,
             CASE WHEN i.ubase IS NOT NULL THEN yadtq_unique_key(i.ubase, i.ufor) END AS ukey
      FROM input i LEFT JOIN LATERAL (
        SELECT count(*) = cardinality(i.plan) AND bool_and(r.tenant = i.tenant)
               AND string_agg(r.limit_name, ',' ORDER BY r.limit_name) = i.plimits
               AND coalesce(i.listed, '') = i.plisted AS ok,
               bool_and(r.fits) AS fits
        FROM room r WHERE r.id = ANY (i.plan)
      ) p ON i.plan IS NOT NULL
    ), ins AS (
      INSERT INTO tasks (id, name, args, kwargs, queue, status, max_retries, timeout_seconds, run_at,
                         retry_backoff_base, retry_backoff_cap, request_hash, tenant, traceparent, tracestate,
                         unique_key, unique_states, limited)
      SELECT id, name, args::json, kwargs::json, queue,
             CASE WHEN w THEN 'waiting' WHEN run_at IS NOT NULL THEN 'scheduled' WHEN admitted THEN 'queued'
                  WHEN lim THEN 'held' ELSE 'queued' END,
             max_retries, timeout_seconds, run_at, base, cap, hash, tenant, tp, ts,
             ukey, string_to_array(ustates, ','), lim
      FROM checked
      ORDER BY ukey, id
      ON CONFLICT DO NOTHING RETURNING *
    ), members AS (
      INSERT INTO task_limits (task_id, bucket_id, seq, held, slot)
      SELECT ins.id, b.id, ins.seq, ins.status = 'held', ins.status = 'queued'
      FROM ins JOIN checked c ON c.id = ins.id AND c.planned CROSS JOIN LATERAL unnest(c.plan) AS b(id)
      ORDER BY 1, 2
      RETURNING bucket_id, slot
    ), slots AS MATERIALIZED (
      SELECT m.bucket_id AS id, count(*) AS n FROM members m WHERE m.slot GROUP BY m.bucket_id
    ), named AS MATERIALIZED (
      SELECT DISTINCT m.bucket_id AS id FROM members m WHERE v_fast
    ), locked AS MATERIALIZED (
      -- After the inserts (this reads what they returned), in id order:
      -- every bucket a membership names (its existence until the commit,
      -- which the foreign key used to check), in the fast try.
      SELECT b.id FROM limit_buckets b WHERE b.id IN (SELECT id FROM named) ORDER BY b.id FOR NO KEY UPDATE OF b
    ), raised AS (
      -- The guard, re-checked on the locked row's latest version.
      UPDATE limit_buckets b SET taken = b.taken + s.n
      FROM slots s JOIN locked k ON k.id = s.id, limits l
      WHERE b.id = s.id AND l.tenant = b.tenant AND l.name = b.limit_name AND l.concurrency IS NOT NULL
        AND l.concurrency - b.taken >= s.n AND b.taken - b.counted < yadtq_limits_stale_slots()
      RETURNING b.id
    )
    SELECT ins.* FROM ins
    -- One call (an InitPlan), before the first row: each named bucket still
    -- exists, and each with slots had room under its lock.
    WHERE (SELECT yadtq_limits_confirm((SELECT count(*) FROM raised) + (SELECT count(*) FROM locked),
                                       (SELECT count(*) FROM slots) + (SELECT count(*) FROM named)));
    RETURN;
    EXCEPTION WHEN sqlstate 'YQL01' OR deadlock_detected THEN
        IF NOT v_fast THEN
            RAISE;
        END IF;
        v_fast := false;
    END;
  END LOOP;
END
$fn$;

-- A success deletes its task's memberships (store::tasks::record_outcomes_freeing):
-- the hints a count scans are then those of running tasks and of failed,
-- cancelled or retrying ones, so the count no longer needs forcing every
-- 4,096 slots to keep its scan short. Forced, it stalled every admission
-- of a busy global bucket: the admissions seeing the bound inserted their
-- tasks `held`, every later one queued behind them (a held task is never
-- overtaken) and every outcome then took the bucket's lock, a convoy of
-- slow paths on one lock (24% of 10,000 end-to-end tasks). The bound is
-- now the concurrency itself (`taken` says full), as before migration 0023.
CREATE OR REPLACE FUNCTION yadtq_limits_stale_slots() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 2147483647 $$;
