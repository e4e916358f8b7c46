-- Limits (issue 28, docs/limits.md "Cost"): the planned insert (a task
-- whose limits the submitter planned, admitted `queued` in the statement
-- that inserts it; store::tasks::insert_rows_planned) runs as a function
-- whose statement PostgreSQL plans once per session.
--
-- As a statement of its own it was planned again on every call: with its
-- arrays' values known, the custom plan always looked cheaper than the
-- generic one, and planning the CTEs cost more than running them (0.6 ms
-- planning and 0.25 ms execution for one task, 0.8 ms and 4.2 ms for 100,
-- where the generic plan runs in 0.17 ms and 2.5 ms: `EXPLAIN ANALYZE
-- EXECUTE` of the prepared statement under each `plan_cache_mode`). The
-- body is that statement unchanged; `$1` to `$21` are the function's
-- arguments, the arrays of store::tasks::InsertColumns in order. Returns
-- the rows inserted (a row that collided inserts nothing).
CREATE OR REPLACE FUNCTION yadtq_tasks_insert_planned(
    p_ids text[], p_names text[], p_args text[], p_kwargs text[], p_queues text[], p_max_retries integer[],
    p_timeouts float8[], p_run_at timestamptz[], p_backoff_base float8[], p_backoff_cap float8[], p_hashes text[],
    p_tenants text[], p_traceparents text[], p_tracestates text[], p_unique_bases text[], p_unique_for bigint[],
    p_unique_states text[], p_waiting boolean[], p_plan_buckets text[], p_plan_limits text[], p_plan_listed text[])
RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $fn$
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
    ), locked AS MATERIALIZED (
      SELECT b.id, b.tenant, b.limit_name, b.taken, b.counted FROM limit_buckets b
      WHERE b.id IN (SELECT unnest(plan) FROM input) ORDER BY b.id FOR NO KEY UPDATE OF b
    ), room AS MATERIALIZED (
      SELECT k.id, k.tenant, k.limit_name,
             l.concurrency IS NOT NULL AND l.rate_count IS NULL
             AND k.taken - k.counted < yadtq_limits_stale_slots()
             AND l.concurrency - k.taken >= (SELECT count(*) FROM input i
                                            WHERE k.id = ANY (i.plan) AND i.run_at IS NULL AND NOT i.w)
             AND NOT EXISTS (SELECT 1 FROM task_limits h JOIN tasks ht ON ht.id = h.task_id
                             WHERE h.bucket_id = k.id AND h.held AND ht.status = 'held') AS fits
      FROM locked k JOIN limits l ON l.tenant = k.tenant AND l.name = k.limit_name
    ), checked AS MATERIALIZED (
      SELECT i.*, i.listed IS NOT NULL OR i.plan IS NOT NULL AS lim, coalesce(p.ok, false) AS planned,
             coalesce(p.ok AND p.fits AND i.run_at IS NULL AND NOT i.w, false) AS admitted,
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
    ), taken AS (
      UPDATE limit_buckets b SET taken = b.taken + g.n
      FROM (SELECT x.id, count(*) AS n FROM ins JOIN checked c ON c.id = ins.id AND c.planned
            CROSS JOIN LATERAL unnest(c.plan) AS x(id) WHERE ins.status = 'queued' GROUP BY x.id) g
      WHERE b.id = g.id
    )
    SELECT ins.* FROM ins;
END
$fn$;
