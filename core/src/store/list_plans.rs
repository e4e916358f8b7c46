//! Listing at scale: on 1,000,000 tasks, no documented filter of
//! `GET /tasks` (status, task, queue, worker, the cursor, each alone and in
//! every combination, for a large and a small tenant, with and without a
//! key's visible queues) reads the table or sorts a large part of it.
//!
//! The statement checked is the store's own: [`tasks::list`]'s SQL text,
//! read from the committed offline data in `.sqlx/` by its marker comment
//! (`/* store::tasks::list */`), so the test cannot drift from the code (a
//! changed query that was not re-prepared fails the build; one whose marker
//! is gone fails here). It is `PREPARE`d on one connection and executed with
//! every combination first,
//! as a pooled connection would run it, so the plan examined with
//! `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE` is whichever PostgreSQL's plan
//! cache then uses (a custom plan, or a generic one if it settled on it).
//! The plan's nodes are checked: no `Seq Scan` on `tasks`, no `Sort` fed
//! more than [`MAX_SORTED`] rows, and no more than [`MAX_READ`] rows read
//! from `tasks` (an index scanned in `seq` order past most of the table,
//! filtering, is as slow as a sequential scan). The timings are printed, not asserted
//! (`cargo test -p yadtq-core list_plans -- --nocapture`).

use std::time::Instant;

use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::tasks::{self, TaskFilter};
use crate::model::TaskStatus;

/// Rows loaded.
const ROWS: i64 = 1_000_000;
/// Page size (the API's default).
const LIMIT: i64 = 50;
/// A `Sort` fed more rows than this sorts a large part of the table (0.2 %).
const MAX_SORTED: f64 = 2_000.0;
/// Rows read from `tasks` (returned or filtered out) by one page at most: 1 %
/// of the table. Filters on their own read about a page; a combination reads
/// the rows of its rarest filter's index range (under 1,000 in this mix).
const MAX_READ: f64 = 10_000.0;

async fn load(pool: &PgPool) {
    let started = Instant::now();
    super::synthetic::load_tasks(pool, ROWS).await.unwrap();
    let loaded = started.elapsed();
    sqlx::query("ANALYZE tasks").execute(pool).await.unwrap();
    println!("list_plans: loaded {ROWS} rows in {loaded:.1?}, ANALYZE {:.1?}", started.elapsed() - loaded);
}

/// The SQL text of the store statement marked `/* marker */` in `.sqlx/`.
fn store_sql(marker: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../.sqlx");
    let tag = format!("/* {marker} */");
    let found: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .map(|text| serde_json::from_str::<Value>(&text).unwrap()["query"].as_str().unwrap().to_string())
        .filter(|q| q.contains(&tag))
        .collect();
    assert_eq!(found.len(), 1, "exactly one statement in .sqlx/ carries {tag}");
    found.into_iter().next().unwrap()
}

/// A SQL literal of a test value (test constants only).
fn lit(v: Option<&str>, cast: &str) -> String {
    v.map_or(format!("NULL::{cast}"), |v| format!("'{}'::{cast}", v.replace('\'', "''")))
}

/// One filter combination, as [`tasks::list`] receives it.
#[derive(Debug, Clone)]
struct Case {
    tenant: &'static str,
    visible: Option<Vec<String>>,
    status: Option<&'static str>,
    task: Option<&'static str>,
    queue: Option<&'static str>,
    worker: Option<Uuid>,
    before: Option<i64>,
}

impl Case {
    /// True when [`tasks::list`] answers without a query: the queue filter
    /// names a queue outside the visible ones.
    fn lists_nothing(&self) -> bool {
        matches!((self.queue, &self.visible), (Some(q), Some(v)) if !v.iter().any(|x| x == q))
    }

    /// The statement's arguments as SQL literals, in parameter order (a
    /// queue filter makes the visible queues moot, as in [`tasks::list`]).
    fn args(&self) -> String {
        let visible = self.visible.as_ref().filter(|_| self.queue.is_none()).map_or("NULL::text[]".to_string(), |v| {
            format!("ARRAY[{}]::text[]", v.iter().map(|q| lit(Some(q), "text")).collect::<Vec<_>>().join(", "))
        });
        let worker = self.worker.map(|w| w.to_string());
        let before = self.before.map(|b| b.to_string());
        [
            lit(Some(self.tenant), "text"),
            visible,
            lit(self.status, "text"),
            lit(self.task, "text"),
            lit(self.queue, "text"),
            lit(worker.as_deref(), "uuid"),
            lit(before.as_deref(), "bigint"),
            format!("{LIMIT}::bigint"),
        ]
        .join(", ")
    }

    fn filter(&self) -> TaskFilter {
        TaskFilter {
            status: self.status.map(status),
            task: self.task.map(str::to_string),
            queue: self.queue.map(str::to_string),
            worker: self.worker,
        }
    }
}

/// Every combination of the documented filters, with common and rare
/// values, for a large and a small tenant, with and without visible queues.
fn cases(before: i64) -> Vec<Case> {
    let worker = Uuid::parse_str(super::synthetic::WORKER).unwrap();
    let mut out = Vec::new();
    for tenant in ["default", "tenant-3"] {
        for visible in [None, Some(vec!["emails".to_string(), "rare".to_string()])] {
            for (status, task, queue) in [
                (Some("success"), Some("echo"), Some("default")),
                (Some("processing"), Some("rare_task"), Some("rare")),
            ] {
                for bits in 0..32u32 {
                    let on = |b: u32| bits & (1 << b) != 0;
                    out.push(Case {
                        tenant,
                        visible: visible.clone(),
                        status: status.filter(|_| on(0)),
                        task: task.filter(|_| on(1)),
                        queue: queue.filter(|_| on(2)),
                        worker: Some(worker).filter(|_| on(3)),
                        before: Some(before).filter(|_| on(4)),
                    });
                }
            }
        }
    }
    out
}

/// Problems in one plan node and its children: a sequential scan of
/// `tasks`, or a sort fed more than [`MAX_SORTED`] rows. Also sums into
/// `read` the rows the plan read from `tasks` (returned and filtered out).
fn check(node: &Value, problems: &mut Vec<String>, read: &mut f64) {
    let kind = node["Node Type"].as_str().unwrap_or("");
    let on_tasks = node["Relation Name"].as_str() == Some("tasks");
    let loops = node["Actual Loops"].as_f64().unwrap_or(1.0);
    if on_tasks {
        let rows = ["Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck"]
            .iter()
            .map(|k| node[k].as_f64().unwrap_or(0.0))
            .sum::<f64>();
        *read += rows * loops;
        if kind == "Seq Scan" {
            problems.push("Seq Scan on tasks".into());
        }
    }
    let children = node["Plans"].as_array().cloned().unwrap_or_default();
    if kind == "Sort" {
        let fed: f64 = children.iter().map(|c| c["Actual Rows"].as_f64().unwrap_or(0.0) * loops).sum();
        if fed > MAX_SORTED {
            problems.push(format!("Sort of {fed} rows ({})", node["Sort Key"]));
        }
    }
    for c in &children {
        check(c, problems, read);
    }
}

fn status(s: &str) -> TaskStatus {
    serde_json::from_value(Value::String(s.into())).unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn no_listing_filter_scans_a_million_tasks(pool: PgPool) {
    load(&pool).await;
    let before: i64 = sqlx::query_scalar("SELECT max(seq) / 2 FROM tasks").fetch_one(&pool).await.unwrap();
    let cases = cases(before);
    let mut conn: PgConnection = pool.acquire().await.unwrap().detach();
    let prepare = format!("PREPARE list AS {}", store_sql("store::tasks::list"));
    sqlx::raw_sql(&prepare).execute(&mut conn).await.unwrap();
    let execute = |c: &Case| format!("EXECUTE list({})", c.args());
    // Warm-up: past the plan cache's first five custom plans, so what is
    // examined below is the plan a long-lived pooled connection runs.
    let queried: Vec<&Case> = cases.iter().filter(|c| !c.lists_nothing()).collect();
    for c in &queried {
        sqlx::raw_sql(&execute(c)).execute(&mut conn).await.unwrap();
    }

    let mut failures = Vec::new();
    let mut times = Vec::new();
    let mut worst = (0.0, String::new());
    for c in &queried {
        let plan: Value = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", execute(c)))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let (mut problems, mut read) = (Vec::new(), 0.0);
        check(&plan[0]["Plan"], &mut problems, &mut read);
        if read > MAX_READ {
            problems.push(format!("{read} rows read from tasks"));
        }
        let ms = plan[0]["Execution Time"].as_f64().unwrap();
        times.push(ms);
        if ms > worst.0 {
            worst = (ms, format!("{c:?}: {read} rows read"));
        }
        if !problems.is_empty() {
            failures.push(format!("{c:?}: {}\n{}", problems.join("; "), serde_json::to_string(&plan).unwrap()));
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "list_plans: {} combinations queried, execution p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({})",
        queried.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        worst.0,
        worst.1
    );
    assert!(failures.is_empty(), "{} plans read too much:\n{}", failures.len(), failures.join("\n\n"));
    conn.close().await.unwrap();

    // The statements answer what the filters ask: the first page of each
    // case is the newest LIMIT matching rows, as a plain query finds them.
    for c in cases.iter().step_by(5).chain(cases.iter().filter(|c| c.lists_nothing()).take(3)) {
        let page = tasks::list(
            &pool,
            &crate::names::Tenant::parse(c.tenant).unwrap(),
            c.visible.as_deref(),
            &c.filter(),
            LIMIT,
            c.before,
        )
        .await
        .unwrap();
        let expected: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM tasks WHERE tenant = $1 AND ($2::text[] IS NULL OR queue = ANY($2))
               AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR name = $4)
               AND ($5::text IS NULL OR queue = $5) AND ($6::uuid IS NULL OR worker_id = $6)
               AND ($7::bigint IS NULL OR seq < $7)
             ORDER BY seq DESC LIMIT $8",
        )
        .bind(c.tenant)
        .bind(c.visible.as_deref())
        .bind(c.status)
        .bind(c.task)
        .bind(c.queue)
        .bind(c.worker)
        .bind(c.before)
        .bind(LIMIT)
        .fetch_all(&pool)
        .await
        .unwrap();
        let got: Vec<String> = page.tasks.iter().map(|t| t.key.to_string()).collect();
        assert_eq!(got, expected, "{c:?}");
        assert!(page.tasks.iter().all(|t| c.status.is_none_or(|s| t.status == status(s))));
    }
}
