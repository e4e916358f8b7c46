//! An `admin` key administers its own tenant only (keys, audit entries,
//! dead letters); the `cluster` scope administers every tenant and is
//! granted only by the bootstrap key and `yadtq-gateway keys create`; a key
//! revoking itself, or the last admin of a tenant, needs `?confirm=`.
//! docs/security.md has the model.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use yadtq_core::auth::Scope;
use yadtq_tests::{mint_key, wait_for, Answer, Client, Stack};

const LONG: Duration = Duration::from_secs(60);

/// A key with the `cluster` scope, made by the command (the only way besides the bootstrap key).
fn cluster_key(stack: &Stack) -> String {
    let (ok, token, err) =
        stack.keys_command(&["create", "--tenant", "ops", "--scopes", "cluster", "--name", "operator"]);
    assert!(ok, "keys create --scopes cluster: {err}");
    token.trim().to_string()
}

/// The ids of a `GET /admin/keys` answer.
fn key_ids(a: &Answer) -> Vec<String> {
    a.body.as_array().unwrap_or_else(|| panic!("{}", a.text)).iter().map(|k| k["id"].as_str().unwrap().into()).collect()
}

fn assert_problem(a: &Answer, status: u16, field: &str, detail_has: &str) {
    assert_eq!((a.status, a.body["field"].as_str()), (status, Some(field)), "{}", a.text);
    assert!(a.body["detail"].as_str().unwrap_or_default().contains(detail_has), "wanted '{detail_has}': {}", a.text);
}

/// Creates a key through `POST /admin/keys`.
async fn create(client: &Client, body: Value) -> Answer {
    client.post_raw("/admin/keys", body.to_string(), &[]).await
}

#[tokio::test]
async fn a_tenant_admin_manages_only_its_own_tenants_keys_and_audit_and_a_cluster_key_manages_all() {
    let stack = Stack::new("tadm_keys").await;
    let gw = stack.gateway(&[]).await;
    let default_admin = gw.as_key(Some(&mint_key(&stack.db, "default", &[Scope::Admin], None).await));
    let acme = gw.as_key(Some(&mint_key(&stack.db, "acme", &[Scope::Admin], None).await));

    let made = create(&default_admin, json!({"scopes": ["read"], "name": "default-reader"})).await;
    assert_eq!((made.status, made.body["key"]["tenant"].as_str()), (201, Some("default")), "{}", made.text);
    let default_key = made.body["key"]["id"].as_str().unwrap().to_string();
    let default_token = made.body["token"].as_str().unwrap().to_string();

    // acme's admin sees acme's keys only, and cannot ask for another tenant's.
    let listed = acme.get("/admin/keys").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(listed.body.as_array().unwrap().iter().all(|k| k["tenant"] == "acme"), "{}", listed.text);
    assert_problem(&acme.get("/admin/keys?tenant=default").await, 403, "tenant", "default");
    // Another tenant's key reads as absent, and stays working.
    let revoke = acme.post_raw(&format!("/admin/keys/{default_key}/revoke"), "", &[]).await;
    assert_eq!(revoke.status, 404, "{}", revoke.text);
    assert_eq!(gw.as_key(Some(&default_token)).get("/tasks").await.status, 200);

    // Its audit log holds only acme's entries.
    let audit = acme.get("/admin/audit").await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let entries = audit.body["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["tenant"] == "acme"), "{}", audit.text);
    assert!(!audit.text.contains(&default_key), "{}", audit.text);

    // It makes keys for acme only (the default tenant is its own), never `cluster` ones.
    assert_problem(&create(&acme, json!({"tenant": "default", "scopes": ["admin"]})).await, 403, "tenant", "default");
    let own = create(&acme, json!({"scopes": ["read"]})).await;
    assert_eq!((own.status, own.body["key"]["tenant"].as_str()), (201, Some("acme")), "{}", own.text);
    let acme_reader = own.body["key"]["id"].as_str().unwrap().to_string();
    assert_problem(&create(&acme, json!({"scopes": ["cluster"]})).await, 403, "scopes", "cluster");
    assert_eq!(acme.get("/admin/audit").await.body["entries"][0]["target"], acme_reader.as_str());

    // A cluster key, made by the command, manages every tenant.
    let cluster = gw.as_key(Some(&cluster_key(&stack)));
    let me = cluster.get("/me").await;
    assert!(me.body["scopes"].as_array().unwrap().contains(&json!("cluster")), "{}", me.text);
    let all = key_ids(&cluster.get("/admin/keys").await);
    assert!(all.contains(&default_key) && all.contains(&acme_reader), "{all:?}");
    assert_eq!(key_ids(&cluster.get("/admin/keys?tenant=default").await).len(), 3, "stack, default admin, reader");
    let audit = cluster.get("/admin/audit").await;
    assert!(audit.text.contains(&default_key) && audit.text.contains(&acme_reader), "{}", audit.text);
    let for_beta = create(&cluster, json!({"tenant": "beta", "scopes": ["admin"]})).await;
    assert_eq!((for_beta.status, for_beta.body["key"]["tenant"].as_str()), (201, Some("beta")), "{}", for_beta.text);
    assert_eq!(cluster.post_raw(&format!("/admin/keys/{default_key}/revoke"), "", &[]).await.status, 200);
    // Not even a cluster key mints cluster keys over HTTP.
    assert_problem(&create(&cluster, json!({"tenant": "ops", "scopes": ["cluster"]})).await, 403, "scopes", "cluster");
}

#[tokio::test]
async fn the_bootstrap_key_has_the_cluster_scope_also_when_it_was_stored_before() {
    let mut stack = Stack::new("tadm_boot").await;
    let token = stack.bootstrap_admin_key();
    let gw = stack.gateway(&[]).await;
    let boot = gw.as_key(Some(&token));
    assert!(boot.get("/me").await.body["scopes"].as_array().unwrap().contains(&json!("cluster")));
    assert_eq!(create(&boot, json!({"tenant": "acme", "scopes": ["admin"]})).await.status, 201);

    // A bootstrap key stored by an earlier release (scope `admin` only) gets `cluster` at start.
    let old = yadtq_core::auth::new_token();
    sqlx::query(
        "INSERT INTO api_keys (id, tenant, name, token_hash, token_prefix, scopes, created_by)
         VALUES (gen_random_uuid(), 'default', 'bootstrap', $1, 'yadtq_old', '{admin}', 'bootstrap')",
    )
    .bind(yadtq_core::auth::token_hash(&old))
    .execute(&stack.db)
    .await
    .unwrap();
    stack.set_env("YADTQ_BOOTSTRAP_ADMIN_KEY", &old);
    let upgraded = stack.gateway(&[]).await;
    let me = upgraded.as_key(Some(&old)).get("/me").await;
    assert!(me.body["scopes"].as_array().unwrap().contains(&json!("cluster")), "{}", me.text);
}

#[tokio::test]
async fn revoking_ones_own_key_or_a_tenants_last_admin_needs_confirmation() {
    let stack = Stack::new("tadm_confirm").await;
    let gw = stack.gateway(&["--auth-cache-ttl", "0.2"]).await;
    let first = mint_key(&stack.db, "acme", &[Scope::Admin], None).await;
    let second = mint_key(&stack.db, "acme", &[Scope::Admin], None).await;
    let (first, second) = (gw.as_key(Some(&first)), gw.as_key(Some(&second)));
    let id_of = |c: &Client| {
        let c = c.clone();
        async move { c.get("/me").await.body["key_id"].as_str().unwrap().to_string() }
    };
    let (first_id, second_id) = (id_of(&first).await, id_of(&second).await);

    let own = first.post_raw(&format!("/admin/keys/{first_id}/revoke"), "", &[]).await;
    assert_problem(&own, 409, "confirm", "confirm=self");
    assert_eq!(first.get("/me").await.status, 200, "a refused revocation changes nothing");
    let own = first.post_raw(&format!("/admin/keys/{first_id}/revoke?confirm=self"), "", &[]).await;
    assert_eq!(own.status, 200, "{}", own.text);
    wait_for(LONG, "the revoked key refused", || async { first.get("/me").await.status == 401 }).await;

    // `second` is acme's last admin now: revoking it names both confirmations it needs.
    let last = second.post_raw(&format!("/admin/keys/{second_id}/revoke?confirm=self"), "", &[]).await;
    assert_problem(&last, 409, "confirm", "confirm=self,last-admin");
    let cluster = gw.as_key(Some(&cluster_key(&stack)));
    let last = cluster.post_raw(&format!("/admin/keys/{second_id}/revoke"), "", &[]).await;
    assert_problem(&last, 409, "confirm", "confirm=last-admin");
    let last = cluster.post_raw(&format!("/admin/keys/{second_id}/revoke?confirm=last-admin"), "", &[]).await;
    assert_eq!(last.status, 200, "{}", last.text);
}

#[tokio::test]
async fn dead_letters_belong_to_the_tenant_their_record_names() {
    let stack = Stack::new("tadm_dlq").await;
    let gw = stack.gateway(&[]).await;
    let acme = gw.as_key(Some(&mint_key(&stack.db, "acme", &[Scope::Admin], None).await));
    let default_admin = gw.as_key(Some(&mint_key(&stack.db, "default", &[Scope::Admin], None).await));
    // No worker runs: both tasks stay queued, so a replay may send them.
    for (client, id) in [(&acme, "dl-a"), (&default_admin, "dl-d")] {
        let a = client.submit(&json!({"task": "echo", "id": id})).await;
        assert_eq!(a.status, 202, "{}", a.text);
    }
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let dlq = format!("{}.yadtq.dlq", stack.namespace);
    for (key, value) in [(Some("acme/dl-a"), "not an envelope"), (Some("dl-d"), "{\"v\": 9}"), (None, "junk")] {
        let mut record = FutureRecord::to(&dlq).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        producer.send(record, Duration::from_secs(10)).await.expect("produce a dead letter");
    }
    let keys_of = |a: &Answer| -> Vec<Value> {
        a.body["dead_letters"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", a.text))
            .iter()
            .map(|d| d["key"].clone())
            .collect()
    };
    let address = |a: &Answer, key: Value| {
        let d = a.body["dead_letters"].as_array().unwrap().iter().find(|d| d["key"] == key).unwrap().clone();
        format!("/dead-letters/{}/{}", d["partition"], d["offset"])
    };
    // The stack's own key is an operator's (cluster) key.
    wait_for(LONG, "three dead letters", || async { keys_of(&gw.get("/dead-letters").await).len() == 3 }).await;
    let everything = gw.get("/dead-letters").await;
    let (of_acme, of_default, of_none) = (
        address(&everything, json!("acme/dl-a")),
        address(&everything, json!("dl-d")),
        address(&everything, Value::Null),
    );

    // Each tenant's admin sees its own; a record naming no task is the cluster's only.
    assert_eq!(keys_of(&acme.get("/dead-letters").await), [json!("acme/dl-a")]);
    assert_eq!(keys_of(&default_admin.get("/dead-letters").await), [json!("dl-d")]);
    for path in [&of_default, &of_none] {
        assert_eq!(acme.get(path).await.status, 404, "{path}");
        assert_eq!(acme.post_raw(&format!("{path}/replay"), "", &[]).await.status, 404, "{path}");
    }
    assert_eq!(default_admin.get(&of_none).await.status, 404);
    let replayed = acme.post_raw(&format!("{of_acme}/replay"), "", &[]).await;
    assert_eq!((replayed.status, replayed.body["id"].as_str()), (202, Some("dl-a")), "{}", replayed.text);

    // A cluster key reads and replays any.
    let cluster = gw.as_key(Some(&cluster_key(&stack)));
    assert_eq!(cluster.get(&of_none).await.status, 200);
    assert_eq!(cluster.post_raw(&format!("{of_default}/replay"), "", &[]).await.status, 202);
}

#[tokio::test]
async fn a_tenant_admins_dead_letter_listing_is_bounded_and_pages_on_to_its_records() {
    let stack = Stack::new("tadm_dlq_scan").await;
    let gw = stack.gateway(&["--dead-letter-scan-records", "10"]).await;
    let acme = gw.as_key(Some(&mint_key(&stack.db, "acme", &[Scope::Admin], None).await));
    // The oldest record is acme's; 30 of tenant `default` follow it.
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let dlq = format!("{}.yadtq.dlq", stack.namespace);
    let keys = std::iter::once("acme/old".to_string()).chain((0..30).map(|i| format!("other-{i}")));
    for key in keys {
        let record = FutureRecord::to(&dlq).key(&key).payload("not an envelope");
        producer.send(record, Duration::from_secs(10)).await.expect("produce a dead letter");
    }
    let page = |a: &Answer| -> (Vec<String>, Value) {
        let letters = a.body["dead_letters"].as_array().unwrap_or_else(|| panic!("{}", a.text));
        (letters.iter().map(|d| d["key"].as_str().unwrap().to_string()).collect(), a.body["next_before"].clone())
    };
    // The stack's key is a cluster key: it reads all, 10 a page, with a cursor until the start.
    wait_for(LONG, "31 dead letters", || async { page(&gw.get("/dead-letters?limit=50").await).0.len() == 31 }).await;
    assert_eq!(page(&gw.get("/dead-letters?limit=50").await).1, Value::Null);
    let (first, next) = page(&gw.get("/dead-letters?limit=10").await);
    assert_eq!((first.len(), first[0].as_str()), (10, "other-29"));
    assert_eq!(next, json!(21), "the oldest offset of the page");

    // acme's admin: each read scans 10 records at most, so its record comes
    // after pages that are empty but say where to go on from.
    let (mut found, mut before, mut reads) = (Vec::new(), None::<i64>, 0);
    loop {
        let path = before.map_or("/dead-letters?limit=5".to_string(), |b| format!("/dead-letters?limit=5&before={b}"));
        let answer = acme.get(&path).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let (keys, next) = page(&answer);
        found.extend(keys);
        reads += 1;
        assert!(reads <= 10, "no end after {reads} reads: {}", answer.text);
        match next.as_i64() {
            Some(n) => {
                assert!(before.is_none_or(|b| n < b), "the cursor moves back: {n} after {before:?}");
                before = Some(n);
            }
            None => break,
        }
    }
    assert_eq!(found, ["acme/old"]);
    assert_eq!(reads, 4, "31 records, 10 a read");
}
