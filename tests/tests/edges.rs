//! Guarantees that hold at the edges (design guarantee 9): a 202 means the
//! task can run. Queues are declared by the operator, never created by a
//! client's submission. End to end, real stack.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde_json::json;
use yadtq_tests::{wait_for, Stack};

const LONG: Duration = Duration::from_secs(120);

/// The broker's topic names (cluster metadata).
async fn topics(kafka: &str) -> Vec<String> {
    let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", kafka).create().expect("metadata client");
    tokio::task::spawn_blocking(move || {
        let md = client.fetch_metadata(None, Duration::from_secs(10)).expect("metadata");
        md.topics().iter().map(|t| t.name().to_string()).collect()
    })
    .await
    .expect("metadata task")
}

#[tokio::test]
async fn only_declared_queues_are_accepted_and_no_submission_creates_a_topic() {
    let stack = Stack::new("declared").await;
    let ns = stack.namespace.clone();
    // No worker runs: the answers come from the gateway's configuration alone.
    let gw = stack.gateway(&[]).await;
    let typo = gw.submit(&json!({"task": "echo", "args": [1], "queue": "emials"})).await;
    assert_eq!((typo.status, typo.body["field"].as_str()), (422, Some("queue")), "{}", typo.text);
    assert_eq!(typo.content_type, "application/problem+json");
    let detail = typo.body["detail"].as_str().unwrap();
    assert!(detail.contains("emials") && detail.contains("known queues: default"), "{detail}");
    let batch = json!({"tasks": [{"task": "echo"}, {"task": "echo", "queue": "emials"}]});
    let b = gw.post_raw("/tasks/batch", batch.to_string(), &[]).await;
    assert_eq!((b.status, b.body["field"].as_str()), (422, Some("tasks[1].queue")), "{}", b.text);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(stored, 0, "refused submissions store nothing");

    // The declared queue still reads its write at once (guarantee 1).
    let ok = gw.submit(&json!({"task": "echo", "args": [2]})).await;
    assert_eq!(ok.status, 202, "{}", ok.text);
    let id = ok.body["id"].as_str().unwrap();
    assert_eq!(gw.get(&format!("/tasks/{id}")).await.body["status"], "queued");

    // A gateway declaring `emails` creates its topic at start; a submission to it is accepted.
    let gw2 = stack.gateway(&["--queues", "default,emails"]).await;
    let emails = format!("{ns}.yadtq.tasks.emails");
    wait_for(LONG, "the declared queue's topic", || async { topics(&stack.kafka).await.contains(&emails) }).await;
    let e = gw2.submit(&json!({"task": "echo", "args": ["mail"], "queue": "emails"})).await;
    assert_eq!((e.status, e.body["queue"].as_str()), (202, Some("emails")), "{}", e.text);
    let eid = e.body["id"].as_str().unwrap().to_string();
    assert_eq!(gw2.get(&format!("/tasks/{eid}")).await.body["status"], "queued");

    // A worker serving a queue no gateway declared says so at start.
    let w = stack.worker("worker", &["--queues", "emails,reprots"]).await;
    w.wait_log("not declared", Duration::from_secs(30)).await;
    let line = w.log().lines().find(|l| l.contains("not declared")).unwrap_or_default().to_string();
    assert!(line.contains("reprots") && (line.contains("ERROR") || line.contains("WARN")), "{line}");
    assert_eq!(gw2.wait_task(&eid, LONG).await["status"], "success");

    let all = topics(&stack.kafka).await;
    assert!(!all.contains(&format!("{ns}.yadtq.tasks.emials")), "no topic for a refused queue: {all:?}");
}
