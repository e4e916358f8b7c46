//! Unique tasks (docs/unique.md), end to end on the real stack: concurrent
//! submitters over two gateways make one task per key and bucket; the key
//! frees when its task finishes; a batch maps a repeated key to its first
//! item; a retry into a held key is refused; bad options name their field.

use std::collections::{HashMap, HashSet};

use futures::future::join_all;
use serde_json::json;
use yadtq_tests::{Answer, Stack};

/// Submitters at once, spread over the two gateways.
const SUBMITTERS: usize = 16;

fn is_existing(a: &Answer) -> bool {
    a.headers.get("yadtq-unique").is_some_and(|v| v == "existing")
}

/// The stored key of each task (key and bucket), by id.
async fn stored_keys(stack: &Stack) -> HashMap<String, String> {
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id, unique_key FROM tasks").fetch_all(&stack.db).await.expect("tasks");
    rows.into_iter().map(|(id, key)| (id, key.expect("every task of this test has a unique key"))).collect()
}

#[tokio::test]
async fn concurrent_submitters_over_two_gateways_make_one_task_per_key_and_bucket() {
    let stack = Stack::new("unique").await;
    // No worker: every task stays queued, so it holds its key throughout.
    let gateways = [stack.gateway(&[]).await, stack.gateway(&[]).await];
    let bodies = [
        json!({"task": "echo", "args": ["customer-42"], "unique": {"key": "sync-42"}}),
        json!({"task": "echo", "args": ["customer-43"], "unique": {"key": "sync-43"}}),
        json!({"task": "echo", "args": ["hourly"], "unique": {"key": "report", "for_seconds": 3600}}),
        // The default key: the task itself.
        json!({"task": "echo", "args": [7], "kwargs": {"b": 1, "a": 2}, "unique": {}}),
    ];
    let requests = (0..SUBMITTERS).flat_map(|s| bodies.iter().enumerate().map(move |(k, b)| (s, k, b.clone())));
    let answers: Vec<(usize, Answer)> = join_all(requests.map(|(s, k, body)| {
        let gw = &gateways[s % 2];
        async move { (k, gw.submit(&body).await) }
    }))
    .await;

    let keys = stored_keys(&stack).await;
    // Per stored key (the key and, for the report, its hour): the ids answered and how many were created.
    let mut by_key: HashMap<&str, (HashSet<String>, usize)> = HashMap::new();
    for (k, a) in &answers {
        assert!(a.status == 202 || (a.status == 200 && is_existing(a)), "body {k}: {} {}", a.status, a.text);
        let id = a.body["id"].as_str().expect("an id").to_string();
        let entry = by_key.entry(keys[&id].as_str()).or_default();
        entry.0.insert(id);
        entry.1 += usize::from(a.status == 202);
    }
    for (key, (ids, created)) in &by_key {
        assert_eq!((ids.len(), *created), (1, 1), "key {key}: one task, created once: {ids:?}");
    }
    // Four bodies, four keys (a fifth only if the report's hour turned during the test).
    assert!((4..=5).contains(&by_key.len()), "{by_key:?}");
    assert_eq!(keys.len(), by_key.len(), "no task without an answer: {keys:?}");
    let default_key = json!({"task": "echo", "args": [7], "kwargs": {"a": 2, "b": 1}, "unique": {}});
    let again = gateways[1].submit(&default_key).await;
    assert!(is_existing(&again), "the default key ignores kwargs' order: {}", again.text);
}

#[tokio::test]
async fn the_key_frees_when_its_task_finishes_and_a_retry_into_it_is_refused() {
    let stack = Stack::new("unique_life").await;
    let gw = stack.gateway(&[]).await;
    let sync = json!({"task": "echo", "args": [1], "unique": {"key": "sync"}});
    let first = gw.submit(&sync).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let first_id = first.body["id"].as_str().unwrap().to_string();
    // A client id that names another task: the unique match wins.
    let other = gw.submit(&json!({"task": "echo", "id": "mine", "args": [2]})).await;
    assert_eq!(other.status, 202);
    let with_id = gw.submit(&json!({"task": "echo", "id": "mine", "args": [2], "unique": {"key": "sync"}})).await;
    assert_eq!((with_id.status, with_id.body["id"].as_str()), (200, Some(first_id.as_str())));
    assert!(is_existing(&with_id));

    let cancel = gw.post_raw(&format!("/tasks/{first_id}/cancel"), "", &[]).await;
    assert_eq!(cancel.body["status"], "cancelled", "{}", cancel.text);
    let second = gw.submit(&sync).await;
    assert_eq!(second.status, 202, "a cancelled task holds no key: {}", second.text);
    assert!(!is_existing(&second));
    assert_ne!(second.body["id"], first.body["id"]);

    let retry = gw.post_raw(&format!("/tasks/{first_id}/retry"), "", &[]).await;
    assert_eq!((retry.status, retry.body["field"].as_str()), (409, Some("unique")), "{}", retry.text);
    assert_eq!(gw.get(&format!("/tasks/{first_id}")).await.body["status"], "cancelled");
}

#[tokio::test]
async fn a_batch_maps_a_repeated_key_to_its_first_item_and_bad_options_name_their_field() {
    let stack = Stack::new("unique_batch").await;
    let gw = stack.gateway(&[]).await;
    let item = |arg: i64, key: &str| json!({"task": "echo", "args": [arg], "unique": {"key": key}});
    let batch = json!({"tasks": [item(1, "a"), item(2, "b"), item(3, "a")]});
    let a = gw.post_raw("/tasks/batch", batch.to_string(), &[]).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let ids: Vec<&str> = a.body["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids[2], ids[0], "the third item answers the first's task");
    assert_ne!(ids[1], ids[0]);
    assert_eq!(a.body["tasks"][2]["args"], json!([1]));
    assert_eq!(a.body["unique_existing"], json!([2]));
    // The whole batch again: every item finds its holder.
    let again = gw.post_raw("/tasks/batch", batch.to_string(), &[]).await;
    assert_eq!((again.status, &again.body["unique_existing"]), (200, &json!([0, 1, 2])), "{}", again.text);

    for (unique, field) in [
        (json!({"for_seconds": 0}), "unique.for_seconds"),
        (json!({"while": ["done"]}), "unique.while"),
        (json!({"key": "k".repeat(257)}), "unique.key"),
    ] {
        let a = gw.submit(&json!({"task": "echo", "unique": unique})).await;
        assert_eq!((a.status, a.body["field"].as_str()), (400, Some(field)), "{}", a.text);
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(count, 2);
}
