//! Synthetic task rows for tests and benchmarks of the store at scale
//! (`store::list_plans`, the benchmark's listing scenario): one statement
//! that generates them inside PostgreSQL, so a million rows load in about a
//! minute on 2 cores rather than over a million round trips. Not used by the
//! services. Plain SQL (not a checked `query!`): it writes every column the
//! services read, and only tests run it.

use sqlx::PgPool;

use super::StoreError;

/// A worker id the synthetic rows use (one of 64: `…000000` to `…00003f`),
/// for a `worker` filter that matches about 1/64 of the claimed rows.
pub const WORKER: &str = "00000000-0000-0000-0000-000000000007";

/// Inserts `rows` finished, waiting and running tasks with ids `scale-<n>`,
/// in `seq` order of `n`, with a skewed, realistic mix: tenants (70 %
/// `default`, 20 % `acme`, 10 % spread over `tenant-0` … `tenant-19`),
/// statuses (85 % `success`, 5 % `failed`, 2 % `cancelled`, 5 % `queued`,
/// 2.5 % `scheduled`, 0.5 % `processing`), queues (`default` 60 %, `emails`
/// 25 %, `reports` 10 %, `batch` 4.9 %, `rare` 0.1 %), names (`echo` 50 %,
/// `send_email` 25 %, `resize` 15 %, `report` 9 %, `add` 0.9 %, `rare_task`
/// 0.1 %) and 64 workers. The values are hashes of the row number, so every
/// load is the same. Two statements load halves at once, one per core. Run
/// `ANALYZE tasks` afterwards.
///
/// Errors: [`StoreError`] when PostgreSQL fails (an id already taken, for one).
pub async fn load_tasks(pool: &PgPool, rows: i64) -> Result<(), StoreError> {
    let part = |from: i64, to: i64| {
        sqlx::query(
            "INSERT INTO tasks (id, tenant, name, args, kwargs, queue, status, attempts, worker_id, request_hash,
                            created_at, started_at, finished_at, run_at, published_at, result)
         SELECT 'scale-' || g, tenant, name, '[1, 2]', '{}', queue, status,
                CASE WHEN status IN ('queued', 'scheduled') THEN 0 ELSE 1 END,
                CASE WHEN status IN ('queued', 'scheduled') THEN NULL
                     ELSE ('00000000-0000-0000-0000-' || lpad(to_hex(r4 % 64), 12, '0'))::uuid END,
                'hash-' || g, at, at,
                CASE WHEN status IN ('success', 'failed', 'cancelled') THEN at END,
                CASE WHEN status = 'scheduled' THEN now() + interval '1 day' END,
                at, CASE WHEN status = 'success' THEN '3'::json END
         FROM (SELECT g, now() - make_interval(secs => $1 - g) AS at,
                      CASE WHEN r1 < 850 THEN 'success' WHEN r1 < 900 THEN 'failed' WHEN r1 < 920 THEN 'cancelled'
                           WHEN r1 < 970 THEN 'queued' WHEN r1 < 995 THEN 'scheduled' ELSE 'processing' END AS status,
                      CASE WHEN r2 < 600 THEN 'default' WHEN r2 < 850 THEN 'emails' WHEN r2 < 950 THEN 'reports'
                           WHEN r2 < 999 THEN 'batch' ELSE 'rare' END AS queue,
                      CASE WHEN r3 < 500 THEN 'echo' WHEN r3 < 750 THEN 'send_email' WHEN r3 < 900 THEN 'resize'
                           WHEN r3 < 990 THEN 'report' WHEN r3 < 999 THEN 'add' ELSE 'rare_task' END AS name,
                      CASE WHEN r5 < 700 THEN 'default' WHEN r5 < 900 THEN 'acme'
                           ELSE 'tenant-' || (r5 % 20) END AS tenant,
                      r4
               FROM (SELECT g, abs(hashint8extended(g, 1)) % 1000 AS r1, abs(hashint8extended(g, 2)) % 1000 AS r2,
                            abs(hashint8extended(g, 3)) % 1000 AS r3, abs(hashint8extended(g, 4)) AS r4,
                            abs(hashint8extended(g, 5)) % 1000 AS r5
                     FROM generate_series($2::bigint, $3) AS g) AS r) AS t",
        )
        .bind(rows)
        .bind(from)
        .bind(to)
        .execute(pool)
    };
    let (a, b) = tokio::join!(part(1, rows / 2), part(rows / 2 + 1, rows));
    a?;
    b?;
    Ok(())
}
