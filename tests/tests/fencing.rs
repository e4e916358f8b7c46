//! Fencing at the edges (design guarantee 3): a worker frozen past the
//! dead-after threshold must not let its stale handlers run on once it resumes,
//! and handlers get the attempt number as a fencing token. The downstream
//! system is a raw TCP HTTP endpoint inside the test, so it sees exactly when
//! each attempt's request arrives and when the worker drops it.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yadtq_tests::{wait_for, Stack};

const LONG: Duration = Duration::from_secs(120);

/// One request the downstream endpoint received.
#[derive(Debug, Clone)]
struct Seen {
    /// The `X-Yadtq-Attempt` header (the fencing token); `None` when absent.
    attempt: Option<i32>,
    /// When the worker closed the connection without waiting for the answer.
    dropped: Option<Instant>,
}

/// An HTTP endpoint that holds the first request open until the client goes
/// away and answers every later one at once with the attempt it carried.
#[derive(Clone, Default)]
struct Downstream {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Downstream {
    /// Starts serving on a free loopback port; returns its URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = self.seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                tokio::spawn(Self::serve(sock, seen.clone()));
            }
        });
        format!("http://{addr}/hold")
    }

    async fn serve(mut sock: tokio::net::TcpStream, seen: Arc<Mutex<Vec<Seen>>>) {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let attempt =
            text.lines().find_map(|l| l.strip_prefix("x-yadtq-attempt:")).and_then(|v| v.trim().parse::<i32>().ok());
        let index = {
            let mut seen = seen.lock();
            seen.push(Seen { attempt, dropped: None });
            seen.len() - 1
        };
        if index > 0 {
            let body = json!({"attempt": attempt}).to_string();
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
            return;
        }
        // Hold the request: the worker either waits (a stale handler running
        // on) or drops the connection (the attempt was aborted).
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        seen.lock()[index].dropped = Some(Instant::now());
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }
}

#[tokio::test]
async fn a_worker_resumed_after_a_freeze_aborts_its_stale_handlers_at_once() {
    let downstream = Downstream::default();
    let url = downstream.start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let handlers = dir.path().join("handlers.toml");
    std::fs::write(&handlers, format!("[handlers.hold]\nkind = \"http\"\nurl = \"{url}\"\ntimeout = 90\n"))
        .expect("handlers file");
    let handlers = handlers.to_str().unwrap();

    let stack = Stack::new("frozen").await;
    let gw = stack.gateway(&[]).await;
    let stale = stack.worker("stale", &["--handlers-file", handlers]).await;
    stack.wait_assigned(&stale).await;
    let a = gw.submit(&json!({"task": "hold", "timeout": 100})).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    wait_for(LONG, "attempt 1 at the downstream endpoint", || async { !downstream.seen().is_empty() }).await;
    let fresh = stack.worker("fresh", &["--handlers-file", handlers]).await;
    let fid = stack.worker_id(&fresh).await;

    // Freeze the owner past D: the rescuer hands the task to the fresh worker.
    stale.signal("STOP");
    wait_for(LONG, "attempt 2 at the downstream endpoint", || async { downstream.seen().len() >= 2 }).await;
    let t = gw.wait_task(&id, LONG).await;
    assert_eq!(t["status"], "success", "{t}");
    assert_eq!(t["worker_id"], fid.to_string());
    assert!(downstream.seen()[0].dropped.is_none(), "attempt 1 was dropped while its worker was frozen");

    // Thaw it: its stale attempt must be aborted at once, not run to its end.
    let resumed = Instant::now();
    stale.signal("CONT");
    wait_for(Duration::from_secs(10), "the resumed worker to drop its stale attempt", || async {
        downstream.seen()[0].dropped.is_some()
    })
    .await;
    let window = downstream.seen()[0].dropped.unwrap().duration_since(resumed);
    eprintln!("resume-to-abort: {} ms (the stale attempt's request dropped after SIGCONT)", window.as_millis());
    stale.wait_log("fencing this worker", Duration::from_secs(10)).await;

    let history: Vec<(i32, String)> =
        sqlx::query_as("SELECT attempt, outcome FROM task_attempts WHERE task_id = $1 ORDER BY attempt")
            .bind(&id)
            .fetch_all(&stack.db)
            .await
            .unwrap();
    assert_eq!(history, vec![(1, "worker_lost".to_string()), (2, "success".to_string())]);
    let t = gw.get(&format!("/tasks/{id}")).await.body;
    assert_eq!(t["result"], json!({"attempt": 2}), "the fencing token reaches HTTP handlers: {t}");
    let tokens: Vec<Option<i32>> = downstream.seen().iter().map(|s| s.attempt).collect();
    assert_eq!(tokens, vec![Some(1), Some(2)]);
}

/// How often `proc`'s log says `needle`.
fn times(proc: &yadtq_tests::Proc, needle: &str) -> usize {
    proc.log().matches(needle).count()
}

/// Waits until GET /workers shows worker `id` owning some partitions (with
/// another worker in the group: it kept its share).
async fn keeps_partitions(gw: &yadtq_tests::Gateway, id: &str) {
    wait_for(LONG, "the worker to keep some partitions", || async {
        let workers = gw.get("/workers").await.body["workers"].take();
        workers
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == id && w["partitions"].as_object().is_some_and(|p| !p.is_empty()))
    })
    .await;
}

const LEAVE: &str = "leaving the consumer group";
const REJOIN: &str = "rejoining the consumer group";

#[tokio::test]
async fn a_worker_cut_off_from_postgres_gives_its_partitions_to_the_others_and_rejoins() {
    let stack = Stack::new("pgcut").await;
    let gw = stack.gateway(&[]).await;
    let cut = yadtq_tests::PgCut::start(&stack.database_url).await;
    // No prefetch: two records in hand pause its partitions, so the leave
    // and the rejoin must also undo a pause.
    let a = stack.worker_via(&cut, "cut", &["--concurrency", "2", "--prefetch", "0"]).await;
    stack.wait_assigned(&a).await;
    let b = stack.worker("healthy", &[]).await;
    stack.wait_assigned(&b).await;
    let aid = stack.worker_id(&a).await.to_string();
    // Both own half the partitions before the cut.
    keeps_partitions(&gw, &aid).await;

    cut.set_cut(true);
    let t0 = Instant::now();
    // Submitted during the cut: about half are keyed to the cut worker's partitions.
    let ids = stack.submit_many(&gw, 40, |i| json!({"task": "echo", "args": [i]})).await;
    stack.wait_terminal(&ids, Duration::from_secs(60)).await;
    eprintln!("partition hand-over: all 40 tasks done {:.1} s after the cut", t0.elapsed().as_secs_f64());
    assert_eq!(stack.count_status(&ids, "success").await, 40);
    stack.assert_ran_once(&ids, "fenced tasks").await;
    assert_eq!(times(&a, LEAVE), 1, "the cut worker left its group once");

    cut.set_cut(false);
    a.wait_log(REJOIN, LONG).await;
    wait_for(LONG, "the rejoined worker to own partitions and be ready", || async {
        let workers = gw.get("/workers").await.body["workers"].take();
        workers.as_array().unwrap().iter().any(|w| {
            w["id"] == aid && w["state"] == "ready" && w["partitions"].as_object().is_some_and(|p| !p.is_empty())
        })
    })
    .await;
    let more = stack.submit_many(&gw, 20, |i| json!({"task": "echo", "args": [i]})).await;
    stack.wait_terminal(&more, LONG).await;
    assert_eq!((times(&a, LEAVE), times(&a, REJOIN)), (1, 1), "one leave and one rejoin, no churn");
    assert_eq!((times(&b, LEAVE), times(&b, REJOIN)), (0, 0), "the healthy worker stayed");
}

#[tokio::test]
async fn a_postgres_outage_for_every_worker_costs_one_leave_and_one_rejoin_each() {
    let stack = Stack::new("pgoutage").await;
    let gw = stack.gateway(&[]).await;
    let a = stack.worker("a", &[]).await;
    stack.wait_assigned(&a).await;
    let b = stack.worker("b", &[]).await;
    stack.wait_assigned(&b).await;

    yadtq_tests::Servers::stop_postgres();
    // Past the fence and the dead-after threshold: both workers leave.
    let left = async {
        a.wait_log(LEAVE, Duration::from_secs(40)).await;
        b.wait_log(LEAVE, Duration::from_secs(40)).await;
    };
    let result = tokio::time::timeout(Duration::from_secs(60), left).await;
    yadtq_tests::Servers::start_postgres();
    result.expect("both workers left their group");

    a.wait_log(REJOIN, LONG).await;
    b.wait_log(REJOIN, LONG).await;
    let ids = stack.submit_many(&gw, 40, |i| json!({"task": "echo", "args": [i]})).await;
    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(stack.count_status(&ids, "success").await, 40);
    for w in [&a, &b] {
        assert_eq!((times(w, LEAVE), times(w, REJOIN)), (1, 1), "bounded churn");
    }
}

#[tokio::test]
async fn records_in_hand_of_a_worker_that_left_its_group_are_never_claimed_by_it() {
    let stack = Stack::new("stalerecords").await;
    let gw = stack.gateway(&[]).await;
    let cut = yadtq_tests::PgCut::start(&stack.database_url).await;
    let a = stack.worker_via(&cut, "cut", &[]).await;
    stack.wait_assigned(&a).await;
    // A slow healthy worker: the tasks it takes over are still waiting when
    // the cut worker gets PostgreSQL back.
    let b = stack.worker("slow", &["--concurrency", "1"]).await;
    stack.wait_assigned(&b).await;
    let aid = stack.worker_id(&a).await;
    keeps_partitions(&gw, &aid.to_string()).await;

    // Submitted during the cut: the cut worker holds its share in hand, unclaimed.
    cut.set_cut(true);
    let ids = stack.submit_many(&gw, 24, |_| json!({"task": "sleep", "args": [1]})).await;
    a.wait_log(LEAVE, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cut.set_cut(false);
    a.wait_log(REJOIN, LONG).await;
    stack.wait_terminal(&ids, LONG).await;
    assert_eq!(stack.count_status(&ids, "success").await, 24);

    // Until it rejoined, the worker owned no partition: any claim of its before
    // then came from a record of a revoked partition.
    let rejoined =
        a.log().lines().find(|l| l.contains(REJOIN)).and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    let rejoined: chrono::DateTime<chrono::Utc> = rejoined.parse().expect("log timestamp");
    let stale: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT task_id, started_at FROM task_attempts WHERE task_id = ANY($1) AND worker_id = $2 AND started_at < $3",
    )
    .bind(&ids)
    .bind(aid)
    .bind(rejoined)
    .fetch_all(&stack.db)
    .await
    .unwrap();
    assert!(stale.is_empty(), "claimed from revoked partitions before rejoining at {rejoined}: {stale:?}");
    stack.assert_ran_once(&ids, "fenced tasks").await;
}
