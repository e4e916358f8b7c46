-- Limits (issue 28, docs/limits.md "Cost"): the planned insert (a task
-- whose limits the submitter planned, admitted `queued` in the statement
-- that inserts it; store::tasks::insert_rows_planned) runs as a function
-- PostgreSQL plans once per session, and takes its buckets' row locks at
-- its end, not at its start.
--
-- Planned once: as a statement of its own it was planned again on every
-- call (with its arrays' values known, the custom plan always looked
-- cheaper than the generic one), and planning its CTEs cost more than
-- running them: 0.6 ms planning and 0.25 ms execution for one task, 0.8 ms
-- and 4.2 ms for 100, where the generic plan runs in 0.17 ms and 2.5 ms
-- (`EXPLAIN ANALYZE EXECUTE` of the prepared statement under each
-- `plan_cache_mode`).
--
-- Locked late: a bucket's row lock is held from the statement that adds
-- slots to its `taken` through that statement's commit, so with one global
-- bucket admissions queue on it, and on a busy machine a holder preempted
-- mid-statement stretched every wait. The room is now read without any
-- lock, the tasks and memberships are inserted, and only then are the buckets
-- locked in id order and their `taken` raised, under a guard re-checked on
-- the locked row: the concurrency still has room for the slots and the
-- stale bound is not reached. When the guard fails for a bucket (another
-- admission took the room meanwhile), `yadtq_limits_confirm` raises
-- SQLSTATE YQL01 before any row is returned, the function's subtransaction
-- undoes the statement, and the function runs it again admitting nothing
-- (the rows `held`, for the caller's settle: the slow path, exact as
-- always), holding the buckets `FOR KEY SHARE` so that they outlive the
-- statement; so does a foreign-key violation (a bucket deleted with its
-- limit since the read), or a deadlock. A count (`yadtq_limits_recount`,
-- a release's) under the lock either waits for an admission that raised
-- `taken` (and sees its rows) or runs before it (and the admission adds
-- its slots to the count), so `taken` stays an upper bound of the running
-- tasks.
--
-- `$1` to `$21` are the arrays of store::tasks::InsertColumns in order.
-- Returns the rows inserted (a row that collided inserts nothing).

CREATE OR REPLACE FUNCTION yadtq_limits_confirm(raised bigint, wanted bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF raised <> wanted THEN
        RAISE EXCEPTION 'a planned admission found no room under the bucket lock (% of % buckets)', raised, wanted
            USING ERRCODE = 'YQL01';
    END IF;
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION yadtq_tasks_insert_planned(
    p_ids text[], p_names text[], p_args text[], p_kwargs text[], p_queues text[], p_max_retries integer[],
    p_timeouts float8[], p_run_at timestamptz[], p_backoff_base float8[], p_backoff_cap float8[], p_hashes text[],
    p_tenants text[], p_traceparents text[], p_tracestates text[], p_unique_bases text[], p_unique_for bigint[],
    p_unique_states text[], p_waiting boolean[], p_plan_buckets text[], p_plan_limits text[], p_plan_listed text[])
RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
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
      -- their limit waits), so the memberships' foreign keys hold.
      SELECT b.id, b.tenant, b.limit_name, b.taken, b.counted FROM limit_buckets b
      WHERE NOT v_fast AND b.id IN (SELECT unnest(plan) FROM input) ORDER BY b.id FOR KEY SHARE OF b
    ), kept AS MATERIALIZED (
      -- The first: no lock (concurrent submissions sharing a bucket would
      -- each add a member to its lockers); a bucket deleted meanwhile fails
      -- the guard or a foreign key, and the second try runs.
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
    ), locked AS MATERIALIZED (
      -- After the inserts (this reads what they returned), in id order.
      SELECT b.id FROM limit_buckets b WHERE b.id IN (SELECT id FROM slots) ORDER BY b.id FOR NO KEY UPDATE OF b
    ), raised AS (
      -- The guard, re-checked on the locked row's latest version.
      UPDATE limit_buckets b SET taken = b.taken + s.n
      FROM slots s JOIN locked k ON k.id = s.id, limits l
      WHERE b.id = s.id AND l.tenant = b.tenant AND l.name = b.limit_name AND l.concurrency IS NOT NULL
        AND l.concurrency - b.taken >= s.n AND b.taken - b.counted < yadtq_limits_stale_slots()
      RETURNING b.id
    )
    SELECT ins.* FROM ins
    WHERE yadtq_limits_confirm((SELECT count(*) FROM raised), (SELECT count(*) FROM slots));
    RETURN;
    EXCEPTION WHEN sqlstate 'YQL01' OR foreign_key_violation OR deadlock_detected THEN
        IF NOT v_fast THEN
            RAISE;
        END IF;
        v_fast := false;
    END;
  END LOOP;
END
$fn$;
