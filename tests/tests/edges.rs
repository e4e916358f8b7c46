//! Guarantees that hold at the edges (design guarantee 9): a 202 means the
//! task can run. Queues are declared by the operator, never created by a
//! client's submission. End to end, real stack.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use yadtq_tests::{kafka_config, wait_for, Stack};

const LONG: Duration = Duration::from_secs(120);

/// The broker's topic names (cluster metadata).
async fn topics(kafka: &str) -> Vec<String> {
    let client: BaseConsumer = kafka_config(kafka).create().expect("metadata client");
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
    assert!(!all.contains(&format!("{ns}.yadtq.tasks.reprots")), "nor for a worker's undeclared queue: {all:?}");
}

/// The first number after `after` in `text`.
fn number_after(text: &str, after: &str) -> usize {
    let rest = &text[text.find(after).unwrap_or_else(|| panic!("no '{after}' in: {text}")) + after.len()..];
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().expect("a number")
}

/// An `echo` task whose only argument is `n` bytes of text.
fn echo_of(n: usize) -> serde_json::Value {
    json!({"task": "echo", "args": ["x".repeat(n)]})
}

#[tokio::test]
async fn a_task_larger_than_the_broker_takes_is_413_and_one_at_the_limit_runs() {
    let stack = Stack::new("toolarge").await;
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("worker", &[]).await;
    stack.wait_assigned(&w).await;

    // Under the 1 MiB body limit, over what Kafka takes (librdkafka's default
    // message.max.bytes is 1,000,000): accepted before, and then never sent.
    let pad = 999_900;
    let big = gw.submit(&echo_of(pad)).await;
    assert_eq!(
        (big.status, big.body["field"].as_str()),
        (413, Some("body")),
        "{}",
        &big.text[..big.text.len().min(300)]
    );
    assert_eq!(big.content_type, "application/problem+json");
    let detail = big.body["detail"].as_str().unwrap();
    assert!(detail.contains("message.max.bytes 1000000"), "names the producer's limit: {detail}");
    assert!(detail.contains("max.message.bytes"), "names the topic's limit: {detail}");
    let (record, limit) = (number_after(detail, "would be "), number_after(detail, "at most "));
    assert!(record > limit && limit < 1_000_000, "{detail}");
    let b = gw.post_raw("/tasks/batch", json!({"tasks": [echo_of(1), echo_of(pad)]}).to_string(), &[]).await;
    assert_eq!((b.status, b.body["field"].as_str()), (413, Some("tasks[1]")), "{}", &b.text[..b.text.len().min(300)]);

    // The record grows byte for byte with the argument: one byte over the
    // limit is refused, exactly at the limit is accepted and runs.
    let over = gw.submit(&echo_of(pad - (record - limit) + 1)).await;
    assert_eq!(over.status, 413, "{}", &over.text[..over.text.len().min(300)]);
    assert_eq!(number_after(over.body["detail"].as_str().unwrap(), "would be "), limit + 1);
    let at = gw.submit(&echo_of(pad - (record - limit))).await;
    assert_eq!(at.status, 202, "{}", &at.text[..at.text.len().min(300)]);
    let t = gw.wait_task(at.body["id"].as_str().unwrap(), LONG).await;
    assert_eq!(t["status"], "success", "{}", &t.to_string()[..300]);
    assert_eq!(t["result"][0].as_str().map(str::len), Some(pad - (record - limit)));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(stored, 1, "refused tasks store nothing");
}

/// Sets the topic's `max.message.bytes` and waits until the broker reports it.
async fn set_topic_max_message_bytes(kafka: &str, topic: &str, bytes: usize) {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = kafka_config(kafka).create().expect("admin client");
    let value = bytes.to_string();
    let alter = AlterConfig::new(ResourceSpecifier::Topic(topic)).set("max.message.bytes", &value);
    let results = admin.alter_configs(&[alter], &AdminOptions::new()).await.expect("alter configs");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    wait_for(LONG, "the topic's new max.message.bytes", || async {
        let described = admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new()).await;
        described
            .ok()
            .and_then(|r| r.into_iter().next())
            .and_then(Result::ok)
            .is_some_and(|c| c.get("max.message.bytes").and_then(|e| e.value.as_deref()) == Some(value.as_str()))
    })
    .await;
}

#[tokio::test]
async fn a_record_the_broker_refuses_fails_with_a_clear_error_and_is_not_retried() {
    let mut stack = Stack::new("refused").await;
    // One gateway keeps the limit it read at start, one re-reads it every second.
    stack.set_env("YADTQ_KAFKA_LIMITS_REFRESH", "3600");
    let stale = stack.gateway(&[]).await;
    stack.set_env("YADTQ_KAFKA_LIMITS_REFRESH", "1");
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("worker", &[]).await;
    stack.wait_assigned(&w).await;
    let pad = 300_000;
    // Waits `scheduled` while the operator lowers the limit; the scheduler sends it after.
    let mut later = echo_of(pad);
    // Long enough that the limit is lowered (and seen) before it is sent.
    later["countdown"] = json!(15);
    let scheduled = gw.submit(&later).await;
    assert_eq!((scheduled.status, scheduled.body["status"].as_str()), (202, Some("scheduled")));
    let scheduled = scheduled.body["id"].as_str().unwrap().to_string();

    let topic = format!("{}.yadtq.tasks", stack.namespace);
    set_topic_max_message_bytes(&stack.kafka, &topic, 100_000).await;
    // Accepted on the limit read at start, refused by the broker when sent.
    let a = stale.submit(&echo_of(pad)).await;
    assert_eq!(a.status, 202, "{}", &a.text[..a.text.len().min(300)]);
    let id = a.body["id"].as_str().unwrap().to_string();
    for id in [&id, &scheduled] {
        let t = stale.wait_task(id, Duration::from_secs(60)).await;
        assert_eq!((t["status"].as_str(), t["error"]["kind"].as_str()), (Some("failed"), Some("record_too_large")));
        assert!(t["error"]["message"].as_str().unwrap().contains("too large"), "{}", t["error"]);
        assert_eq!(t["attempts"], 0, "never claimed");
    }
    let r = gw.post_raw(&format!("/tasks/{id}/retry"), "", &[]).await;
    assert_eq!((r.status, r.body["field"].as_str()), (409, Some("id")), "{}", r.text);
    assert_eq!(r.content_type, "application/problem+json");
    assert!(r.body["detail"].as_str().unwrap().contains("record_too_large"), "{}", r.text);
    assert_eq!(gw.get(&format!("/tasks/{id}")).await.body["status"], "failed", "a refused retry changes nothing");

    // The gateway that re-reads the limit refuses the same task at submit, naming the topic's limit.
    wait_for(Duration::from_secs(30), "the re-read limit", || async {
        let a = gw.submit(&echo_of(pad)).await;
        assert_ne!(a.status, 202, "accepted after the limit was lowered: {}", &a.text[..a.text.len().min(300)]);
        a.status == 413 && a.body["detail"].as_str().unwrap().contains("max.message.bytes 100000)")
    })
    .await;
    // The producers stay healthy after the refusals: small tasks still run.
    let small = stale.submit(&echo_of(10)).await.body["id"].as_str().unwrap().to_string();
    assert_eq!(stale.wait_task(&small, LONG).await["status"], "success");
    let small = gw.submit(&echo_of(10)).await.body["id"].as_str().unwrap().to_string();
    assert_eq!(gw.wait_task(&small, LONG).await["status"], "success");
}
