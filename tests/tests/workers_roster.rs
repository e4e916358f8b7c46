//! The worker roster stays bounded: GET /workers pages like GET /tasks, and
//! the maintenance leader deletes the rows of workers that stopped or died
//! longer than the retention ago, never a live worker's.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;
use yadtq_tests::{wait_for, Gateway, Stack};

const LONG: Duration = Duration::from_secs(90);

/// Every worker GET /workers lists, following `next_cursor` with pages of
/// `limit`; also the number of pages.
async fn roster(gw: &Gateway, limit: usize) -> (Vec<Value>, usize) {
    let (mut all, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/workers?limit={limit}&cursor={c}"),
            None => format!("/workers?limit={limit}"),
        };
        let a = gw.get(&path).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let page = a.body["workers"].as_array().unwrap().clone();
        assert!(page.len() <= limit, "{}", a.text);
        pages += 1;
        all.extend(page);
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (all, pages),
        }
    }
}

/// Inserts a worker row as a process of another host would have, its last
/// heartbeat `age_s` seconds ago, stopped or not.
async fn insert_worker(stack: &Stack, age_s: f64, stopped: bool) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO workers (id, hostname, pid, version, queues, task_names, concurrency, started_at,
                              last_heartbeat_at, stopped_at)
         VALUES ($1, 'elsewhere', 1, 'test', '{default}', '{echo}', 1, now() - make_interval(secs => $2 + 1),
                 now() - make_interval(secs => $2), CASE WHEN $3 THEN now() - make_interval(secs => $2) END)",
    )
    .bind(id)
    .bind(age_s)
    .bind(stopped)
    .execute(&stack.db)
    .await
    .unwrap();
    id
}

async fn has_row(stack: &Stack, id: Uuid) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM workers WHERE id = $1)")
        .bind(id)
        .fetch_one(&stack.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn get_workers_pages_newest_first_and_refuses_bad_paging() {
    let stack = Stack::new("workerpages").await;
    let gw = stack.gateway(&[]).await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(insert_worker(&stack, 3600.0, true).await.to_string());
    }
    ids.reverse(); // newest first

    let (all, pages) = roster(&gw, 3).await;
    let listed: Vec<&str> = all.iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids, "every worker once, newest first");
    assert_eq!(pages, 3, "7 workers in pages of 3");
    assert!(all.iter().all(|w| w["state"] == "stopped" && w["alive"] == false));

    let default = gw.get("/workers").await;
    assert_eq!((default.body["workers"].as_array().unwrap().len(), &default.body["next_cursor"]), (7, &Value::Null));
    let dead = gw.get("/workers?alive=false&limit=2").await.body;
    assert_eq!(dead["workers"].as_array().unwrap().len(), 2);
    assert!(dead["next_cursor"].is_string(), "{dead}");
    assert_eq!(gw.get("/workers?alive=true").await.body["workers"], serde_json::json!([]));

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=", "cursor"),
        ("alive=maybe", "alive"),
    ] {
        let a = gw.get(&format!("/workers?{query}")).await;
        assert_eq!((a.status, a.body["field"].as_str()), (400, Some(field)), "{query}: {}", a.text);
        assert_eq!(a.content_type, "application/problem+json");
    }
    assert_eq!(gw.get("/workers?limit=500").await.status, 200);
}

#[tokio::test]
async fn stopped_and_dead_workers_are_pruned_after_the_retention_live_ones_never() {
    let mut stack = Stack::new("workerprune").await;
    // A retention below the heartbeat interval (1 s here): a live worker's
    // last heartbeat is often older than it, so only the dead-after rule
    // (7 s) keeps the live worker's row.
    stack.set_env("YADTQ_RETENTION", "0.5");
    let gw = stack.gateway(&[]).await;
    let live = stack.worker("live", &[]).await;
    let mut leaver = stack.worker("leaver", &[]).await;
    let (live_id, leaver_id) = (stack.worker_id(&live).await, stack.worker_id(&leaver).await);
    let dead_id = insert_worker(&stack, 3600.0, false).await;
    assert!(leaver.terminate(Duration::from_secs(30)), "the leaver stops gracefully");

    wait_for(LONG, "the stopped and the long-dead worker to leave GET /workers", || async {
        let (all, _) = roster(&gw, 500).await;
        !all.iter().any(|w| w["id"] == leaver_id.to_string() || w["id"] == dead_id.to_string())
    })
    .await;
    assert!(!has_row(&stack, leaver_id).await && !has_row(&stack, dead_id).await, "their rows are gone");

    // One more cleaner pass, seen by a row it deletes, then the live worker
    // is still there, alive.
    let marker = insert_worker(&stack, 3600.0, true).await;
    wait_for(LONG, "another cleaner pass", || async { !has_row(&stack, marker).await }).await;
    let (all, _) = roster(&gw, 500).await;
    let me = all.iter().find(|w| w["id"] == live_id.to_string()).expect("the live worker is listed");
    assert_eq!(me["alive"], true, "{me}");
    assert!(has_row(&stack, live_id).await, "the live worker's row stays");
}
