//! What a real task queue does: retries with backoff, timeouts, schedules,
//! named queues, batches, listing, long-poll, server-sent events, cancel,
//! retry, progress, retention and the task catalogue. End to end, real stack.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yadtq_tests::{wait_for, Stack};

const LONG: Duration = Duration::from_secs(120);

async fn attempts(gw: &yadtq_tests::Gateway, id: &str) -> Vec<Value> {
    gw.get(&format!("/tasks/{id}/attempts")).await.body.as_array().cloned().unwrap_or_default()
}

fn ts(v: &Value) -> f64 {
    let s = v.as_str().unwrap();
    chrono_parse(s)
}

/// Seconds since the epoch of an RFC 3339 timestamp.
fn chrono_parse(s: &str) -> f64 {
    let t: chrono::DateTime<chrono::Utc> = s.parse().expect("RFC 3339");
    t.timestamp_micros() as f64 / 1e6
}

#[tokio::test]
async fn a_flaky_task_is_retried_with_backoff_and_succeeds_on_attempt_3() {
    let stack = Stack::new("flaky").await;
    let gw = stack.gateway(&[]).await;
    let _w = stack.worker("worker", &["--retry-backoff-base", "0.5", "--retry-backoff-cap", "10"]).await;
    let a = gw.submit(&json!({"task": "flaky", "args": [3], "max_retries": 5})).await;
    let id = a.body["id"].as_str().unwrap();
    let t = gw.wait_task(id, LONG).await;
    assert_eq!(
        (t["status"].as_str(), t["result"].as_i64(), t["attempts"].as_i64()),
        (Some("success"), Some(3), Some(3))
    );
    let h = attempts(&gw, id).await;
    let outcomes: Vec<&str> = h.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["failed", "failed", "success"]);
    assert_eq!(h[0]["error"]["kind"], "handler_error");
    // Full jitter: gap n is drawn from [0, base * 2^(n-1)] (0.5 s, then 1 s),
    // plus dispatch (the scheduler runs every P/4); the windows double.
    let gap1 = ts(&h[1]["started_at"]) - ts(&h[0]["finished_at"]);
    let gap2 = ts(&h[2]["started_at"]) - ts(&h[1]["finished_at"]);
    eprintln!("retry gaps: {gap1:.3} s, {gap2:.3} s");
    assert!((0.0..0.5 + 1.5).contains(&gap1), "gap1 {gap1}");
    assert!((0.0..1.0 + 1.5).contains(&gap2), "gap2 {gap2}");
}

#[tokio::test]
async fn a_task_that_times_out_is_aborted_and_retried() {
    let stack = Stack::new("timeout").await;
    let gw = stack.gateway(&[]).await;
    let _w = stack.worker("worker", &["--retry-backoff-base", "0.2"]).await;
    let a = gw.submit(&json!({"task": "sleep", "args": [30], "timeout": 1, "max_retries": 1})).await;
    let id = a.body["id"].as_str().unwrap();
    let started = Instant::now();
    let t = gw.wait_task(id, LONG).await;
    assert!(started.elapsed() < Duration::from_secs(20), "the 30 s sleeps were aborted");
    assert_eq!((t["status"].as_str(), t["error"]["kind"].as_str()), (Some("failed"), Some("timeout")), "{t}");
    let kinds: Vec<String> =
        attempts(&gw, id).await.iter().map(|a| a["error"]["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["timeout", "timeout"]);
}

#[tokio::test]
async fn countdown_and_eta_tasks_wait_scheduled_then_run_on_time() {
    let stack = Stack::new("schedule").await;
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("worker", &[]).await;
    stack.wait_assigned(&w).await;
    let a = gw.submit(&json!({"task": "add", "args": [1, 2], "countdown": 2})).await;
    assert_eq!((a.status, a.body["status"].as_str()), (202, Some("scheduled")));
    let eta = (chrono::Utc::now() + chrono::TimeDelta::seconds(3)).to_rfc3339();
    let b = gw.submit(&json!({"task": "add", "args": [3, 4], "eta": eta})).await;
    assert_eq!(b.body["status"], "scheduled");
    // Both read back as scheduled before either is due.
    for ans in [&a, &b] {
        let id = ans.body["id"].as_str().unwrap();
        assert_eq!(gw.get(&format!("/tasks/{id}")).await.body["status"], "scheduled");
    }
    for ans in [a, b] {
        let id = ans.body["id"].as_str().unwrap();
        let run_at = ts(&ans.body["run_at"]);
        let t = gw.wait_task(id, LONG).await;
        assert_eq!(t["status"], "success");
        let late = ts(&t["started_at"]) - run_at;
        eprintln!("started {late:.3} s after its time");
        // Never early; the upper bound only stops a scheduler that never
        // fires (how soon it fires is the benchmark's to measure).
        assert!((0.0..10.0).contains(&late), "started {late} s after run_at");
    }
}

#[tokio::test]
async fn named_queues_go_to_the_workers_that_serve_them() {
    let stack = Stack::new("queues").await;
    let gw = stack.gateway(&["--queues", "default,emails,reports"]).await;
    let mailer = stack.worker("mailer", &["--queues", "emails=3,reports"]).await;
    let general = stack.worker("general", &[]).await;
    let (mid, gid) = (stack.worker_id(&mailer).await, stack.worker_id(&general).await);
    let e = gw.submit(&json!({"task": "echo", "args": ["mail"], "queue": "emails"})).await;
    let d = gw.submit(&json!({"task": "echo", "args": ["plain"]})).await;
    let r = gw.submit(&json!({"task": "echo", "args": ["report"], "queue": "reports"})).await;
    assert_eq!(e.body["queue"], "emails");
    let e = gw.wait_task(e.body["id"].as_str().unwrap(), LONG).await;
    let d = gw.wait_task(d.body["id"].as_str().unwrap(), LONG).await;
    let r = gw.wait_task(r.body["id"].as_str().unwrap(), LONG).await;
    assert_eq!(e["worker_id"], mid.to_string());
    assert_eq!(r["worker_id"], mid.to_string());
    assert_eq!(d["worker_id"], gid.to_string());
    let workers = gw.get("/workers").await.body["workers"].take();
    let m = workers.as_array().unwrap().iter().find(|w| w["id"] == mid.to_string()).unwrap();
    assert_eq!(m["queues"], json!(["emails", "reports"]));

    // Each worker reports the partitions it owns, by topic: all of its queues'
    // topics (it is their only consumer) and none of the other's. Topics are
    // `<namespace>.yadtq.tasks[.<queue>]`; the default queue has no suffix.
    let owned = |id: uuid::Uuid| {
        let gw = &gw;
        async move {
            let workers = gw.get("/workers").await.body["workers"].take();
            let w = workers.as_array().unwrap().iter().find(|w| w["id"] == id.to_string()).cloned().unwrap();
            let mut topics: Vec<(String, usize)> = w["partitions"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(t, ps)| (t.split_once("yadtq.tasks").unwrap().1.to_string(), ps.as_array().unwrap().len()))
                .collect();
            topics.sort();
            topics
        }
    };
    let partitions = 12; // --partitions' default: every topic the workers create
    let want_m = vec![(".emails".to_string(), partitions), (".reports".to_string(), partitions)];
    yadtq_tests::wait_for(LONG, "mailer reports its partitions", || async { owned(mid).await == want_m }).await;
    yadtq_tests::wait_for(LONG, "general reports its partitions", || async {
        owned(gid).await == vec![(String::new(), partitions)]
    })
    .await;
    let mut general = general;
    assert!(general.terminate(LONG), "clean stop");
    assert_eq!(owned(gid).await, vec![], "a stopped worker owns nothing");
    let bad = gw.submit(&json!({"task": "echo", "queue": "no.dots"})).await;
    assert_eq!((bad.status, bad.body["field"].as_str()), (400, Some("queue")));
    let prio = gw.submit(&json!({"task": "echo", "priority": 10})).await;
    assert_eq!((prio.status, prio.body["field"].as_str()), (400, Some("priority")));
    assert!(prio.body["detail"].as_str().unwrap().contains("not supported"));
}

#[tokio::test]
async fn a_batch_is_all_or_nothing_and_runs_every_task() {
    let stack = Stack::new("batch").await;
    let gw = stack.gateway(&["--max-batch", "1000"]).await;
    let _w = stack.worker("worker", &["--concurrency", "16"]).await;
    let tasks: Vec<Value> = (0..1000).map(|i| json!({"task": "add", "args": [i, 1]})).collect();
    let a = gw.post_raw("/tasks/batch", json!({"tasks": tasks}).to_string(), &[]).await;
    assert_eq!(a.status, 202, "{}", &a.text[..a.text.len().min(300)]);
    let ids: Vec<String> =
        a.body["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 1000);
    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(stack.count_status(&ids, "success").await, 1000);
    let t = gw.get(&format!("/tasks/{}", ids[999])).await.body;
    assert_eq!(t["result"], json!(1000));

    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    let bad = json!({"tasks": [{"task": "add", "args": [1]}, {"task": "add", "args": {"x": 1}}]});
    let a = gw.post_raw("/tasks/batch", bad.to_string(), &[]).await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("tasks[1].args")), "{}", a.text);
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"task": "echo"})).collect();
    let a = gw.post_raw("/tasks/batch", json!({"tasks": too_many}).to_string(), &[]).await;
    assert_eq!((a.status, a.body["field"].as_str()), (413, Some("tasks")));
    let clash = json!({"tasks": [{"id": "dup-1", "task": "echo"}, {"id": "dup-1", "task": "add"}]});
    assert_eq!(gw.post_raw("/tasks/batch", clash.to_string(), &[]).await.status, 409);
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(before, after, "refused batches store nothing");
}

#[tokio::test]
async fn a_batch_with_an_idempotency_key_is_submitted_once() {
    let stack = Stack::new("batch_key").await;
    let gw = stack.gateway(&[]).await;
    let batch = json!({"tasks": [{"task": "echo", "args": [1]}, {"task": "echo", "args": [2], "id": "own"}]});
    let key = [("Idempotency-Key", "order-7")];
    let ids = |a: &Value| -> Vec<String> {
        a["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect()
    };
    let first = gw.post_raw("/tasks/batch", batch.to_string(), &key).await;
    assert_eq!(first.status, 202, "{}", first.text);
    // Task i without an id of its own gets `<key>.<i>`.
    assert_eq!(ids(&first.body), ["order-7.0", "own"]);
    let again = gw.post_raw("/tasks/batch", batch.to_string(), &key).await;
    assert_eq!((again.status, ids(&again.body)), (200, ids(&first.body)), "{}", again.text);
    let changed = json!({"tasks": [{"task": "echo", "args": [9]}]});
    let a = gw.post_raw("/tasks/batch", changed.to_string(), &key).await;
    assert_eq!((a.status, a.body["field"].as_str()), (409, Some("id")), "{}", a.text);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(stored, 2);
}

#[tokio::test]
async fn tasks_are_listed_newest_first_with_filters_and_cursors() {
    let stack = Stack::new("list").await;
    let gw = stack.gateway(&[]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(gw.submit(&json!({"task": "echo", "args": [i]})).await.body["id"].as_str().unwrap().to_string());
    }
    gw.submit(&json!({"task": "add", "args": [1, 1]})).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/tasks?task=echo&status=queued&limit=2&cursor={c}"),
            None => "/tasks?task=echo&status=queued&limit=2".to_string(),
        };
        let page = gw.get(&q).await.body;
        seen.extend(page["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "every echo task once, newest first");
    assert_eq!(gw.get("/tasks?status=running").await.status, 400);
    assert_eq!(gw.get("/tasks?limit=0").await.body["field"], "limit");
}

#[tokio::test]
async fn long_poll_answers_when_the_task_finishes_or_at_the_deadline() {
    let stack = Stack::new("longpoll").await;
    let gw = stack.gateway(&[]).await;
    let id = gw.submit(&json!({"task": "sleep", "args": [1]})).await.body["id"].as_str().unwrap().to_string();
    let t0 = Instant::now();
    let a = gw.get(&format!("/tasks/{id}?wait=1.5")).await;
    assert_eq!(a.body["status"], "queued", "no worker: the deadline answers with the current state");
    assert!(t0.elapsed() >= Duration::from_millis(1400));

    let _w = stack.worker("worker", &[]).await;
    let a = gw.get(&format!("/tasks/{id}?wait=30")).await;
    let answered = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    assert_eq!(a.body["status"], "success");
    let lag = answered - ts(&a.body["finished_at"]);
    eprintln!("long-poll answered {:.0} ms after the task finished", lag * 1000.0);
    assert!(lag < 1.0, "long-poll answered {lag} s after completion (LISTEN/NOTIFY, not polling)");
    assert_eq!(gw.get(&format!("/tasks/{id}?wait=61")).await.body["field"], "wait");
}

/// Reads a server-sent event stream until it ends; returns (event, status, percent) triples.
async fn read_sse(gw: yadtq_tests::Client, path: String) -> Vec<(String, String, Option<f64>)> {
    let mut resp = gw.get_response(&path).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (mut buf, mut out) = (String::new(), Vec::new());
    while let Some(chunk) = resp.chunk().await.unwrap() {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let event = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or_default().to_string();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                let t: Value = serde_json::from_str(data).unwrap();
                out.push((event, t["status"].as_str().unwrap().to_string(), t["progress"]["percent"].as_f64()));
            }
        }
    }
    out
}

#[tokio::test]
async fn an_event_stream_on_another_gateway_sees_queued_processing_progress_success() {
    let stack = Stack::new("sse").await;
    let a = stack.gateway(&[]).await;
    let b = stack.gateway(&[]).await;
    let id = a.submit(&json!({"task": "sleep", "args": [2.5]})).await.body["id"].as_str().unwrap().to_string();
    let reader = tokio::spawn(read_sse(b.as_key(Some(&stack.api_key)), format!("/tasks/{id}/events")));
    // The worker starts once the stream is open, so its first event is `queued`.
    wait_for(LONG, "the event stream on b", || async { b.waiters().await >= 1.0 }).await;
    let _w = stack.worker("worker", &[]).await;
    let events = tokio::time::timeout(LONG, reader).await.unwrap().unwrap();
    eprintln!("{events:?}");
    let statuses: Vec<&str> = events.iter().filter(|e| e.0 == "status").map(|e| e.1.as_str()).collect();
    assert_eq!(statuses, ["queued", "processing", "success"]);
    let progress: Vec<f64> = events.iter().filter(|e| e.0 == "progress").filter_map(|e| e.2).collect();
    assert!(!progress.is_empty() && progress.windows(2).all(|w| w[0] < w[1]), "progress events in order: {progress:?}");
}

#[tokio::test]
async fn cancel_stops_waiting_and_running_tasks_and_retry_runs_them_again() {
    let stack = Stack::new("cancel").await;
    let gw = stack.gateway(&[]).await;
    let waiting = gw.submit(&json!({"task": "echo", "countdown": 60})).await.body["id"].as_str().unwrap().to_string();
    let c = gw.post_raw(&format!("/tasks/{waiting}/cancel"), "", &[]).await;
    assert_eq!((c.status, c.body["status"].as_str()), (200, Some("cancelled")));
    // A repeated cancel (a retry after a lost answer) answers the cancelled task.
    let again = gw.post_raw(&format!("/tasks/{waiting}/cancel"), "", &[]).await;
    assert_eq!((again.status, again.body["status"].as_str()), (200, Some("cancelled")), "{}", again.text);

    let w = stack.worker("worker", &[]).await;
    let wid = stack.worker_id(&w).await;
    let running = gw.submit(&json!({"task": "sleep", "args": [60]})).await.body["id"].as_str().unwrap().to_string();
    stack.wait_processing_on(wid, 1, LONG).await;
    let t0 = Instant::now();
    let c = gw.post_raw(&format!("/tasks/{running}/cancel"), "", &[]).await;
    assert_eq!((c.status, c.body["status"].as_str()), (202, Some("processing")));
    let t = gw.wait_task(&running, LONG).await;
    eprintln!("running task cancelled {:.2} s after the request", t0.elapsed().as_secs_f64());
    assert_eq!(t["status"], "cancelled");
    assert!(t0.elapsed() < Duration::from_secs(4), "aborted within about one heartbeat (1 s in tests)");
    assert_eq!(attempts(&gw, &running).await[0]["outcome"], "cancelled");

    // Retry: a cancelled or failed task runs again as a new attempt.
    let r = gw.post_raw(&format!("/tasks/{waiting}/retry"), "", &[]).await;
    assert_eq!((r.status, r.body["status"].as_str()), (202, Some("queued")));
    assert_eq!(gw.wait_task(&waiting, LONG).await["status"], "success");
    let failed = gw.submit(&json!({"task": "fail", "args": ["boom"], "max_retries": 0})).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(gw.wait_task(&failed, LONG).await["status"], "failed");
    assert_eq!(gw.post_raw(&format!("/tasks/{failed}/retry"), "", &[]).await.status, 202);
    let again = gw.wait_task(&failed, LONG).await;
    assert_eq!((again["status"].as_str(), again["attempts"].as_i64()), (Some("failed"), Some(2)));
    assert_eq!(attempts(&gw, &failed).await.len(), 2);
    assert_eq!(gw.post_raw(&format!("/tasks/{waiting}/retry"), "", &[]).await.status, 409, "success is final");
    assert_eq!(gw.post_raw("/tasks/nope/cancel", "", &[]).await.status, 404);
}

#[tokio::test]
async fn finished_tasks_are_deleted_after_the_retention() {
    let mut stack = Stack::new("retention").await;
    stack.set_env("YADTQ_RETENTION", "1");
    let gw = stack.gateway(&[]).await;
    let _w = stack.worker("worker", &[]).await;
    let id = gw.submit(&json!({"task": "add", "args": [1, 1]})).await.body["id"].as_str().unwrap().to_string();
    assert_eq!(gw.wait_task(&id, LONG).await["status"], "success");
    let deadline = Instant::now() + Duration::from_secs(30);
    while gw.get(&format!("/tasks/{id}")).await.status != 404 {
        assert!(Instant::now() < deadline, "task not deleted after its retention");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM task_attempts").fetch_one(&stack.db).await.unwrap();
    assert_eq!(left, 0, "attempts go with their task");
}

#[tokio::test]
async fn a_gateway_given_the_catalogue_refuses_unknown_task_names() {
    let stack = Stack::new("catalogue").await;
    let gw = stack.gateway(&["--task-catalogue", "add,echo"]).await;
    let a = gw.submit(&json!({"task": "multiply", "args": [2, 3]})).await;
    assert_eq!((a.status, a.body["field"].as_str()), (422, Some("task")), "{}", a.text);
    assert_eq!(gw.submit(&json!({"task": "add", "args": [2, 3]})).await.status, 202);
}

#[tokio::test]
async fn a_status_this_release_does_not_know_reads_verbatim_everywhere() {
    let stack = Stack::new("unknown_status").await;
    let gw = stack.gateway(&[]).await; // no worker: the tasks stay where they are put
    let body = |id: &str| json!({"id": id, "task": "add", "args": [1, 2]});
    for id in ["new-1", "new-2"] {
        assert_eq!(gw.submit(&body(id)).await.status, 202);
    }
    stack.put_in_new_status("suspended", &["new-1", "new-2"]).await;

    let one = gw.get("/tasks/new-1").await;
    assert_eq!((one.status, one.body["status"].as_str()), (200, Some("suspended")), "{}", one.text);
    // Long-polling it ends at the deadline: not terminal.
    let started = Instant::now();
    let polled = gw.get("/tasks/new-1?wait=1").await;
    assert_eq!((polled.status, polled.body["status"].as_str()), (200, Some("suspended")), "{}", polled.text);
    assert!(started.elapsed() >= Duration::from_millis(900), "a waiting task is not terminal");
    let page = gw.get("/tasks").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let statuses: Vec<&str> =
        page.body["tasks"].as_array().unwrap().iter().filter_map(|t| t["status"].as_str()).collect();
    assert_eq!(statuses, ["suspended", "suspended"]);
    // The filter takes only the statuses this release knows.
    let filtered = gw.get("/tasks?status=suspended").await;
    assert_eq!((filtered.status, filtered.body["field"].as_str()), (400, Some("status")), "{}", filtered.text);

    // A batch repeating an existing task reads it back as it is.
    let batch = gw.post_raw("/tasks/batch", json!({"tasks": [body("new-2")]}).to_string(), &[]).await;
    assert_eq!(batch.status, 200, "{}", batch.text);
    assert_eq!(batch.body["tasks"][0]["status"], "suspended", "{}", batch.text);
    // A repeated single submission too.
    let again = gw.submit(&body("new-2")).await;
    assert_eq!((again.status, again.body["status"].as_str()), (200, Some("suspended")), "{}", again.text);

    // Cancel is requested (as for a running task), the status left to the release that knows it.
    let cancel = gw.post_raw("/tasks/new-1/cancel", "", &[]).await;
    assert_eq!((cancel.status, cancel.body["status"].as_str()), (202, Some("suspended")), "{}", cancel.text);
    assert!(cancel.body["cancel_requested_at"].is_string(), "{}", cancel.text);

    // The queue statistics (the dashboard's overview) count them apart.
    let queues = gw.get("/queues?minutes=5").await;
    assert_eq!(queues.status, 200, "{}", queues.text);
    let default = queues.body["queues"].as_array().unwrap().iter().find(|q| q["queue"] == "default").unwrap();
    assert_eq!(default["other"], json!({"suspended": 2}), "{}", queues.text);
    assert_eq!((default["queued"].as_i64(), default["finished"]["cancelled"].as_i64()), (Some(0), Some(0)));
}
