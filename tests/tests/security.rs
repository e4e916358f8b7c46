//! Who may do what, against the real gateway and worker: API keys and their
//! scopes, tenants that isolate ids and listings, keys limited to queues,
//! revocation on every gateway, the audit log, what callers without the
//! `operate` scope see of handler output and workers, key management from
//! the command line, bootstrapping, and the explicit opt-out.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yadtq_core::auth::Scope;
use yadtq_tests::{mint_key, Stack};

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn every_api_route_needs_a_key_and_public_ones_do_not() {
    let stack = Stack::new("sec_key").await;
    let gw = stack.gateway(&[]).await;
    let anonymous = gw.as_key(None);
    let bogus = gw.as_key(Some("yadtq_not-a-key-anyone-was-given-0000000000000"));
    for (who, client) in [("no key", &anonymous), ("unknown key", &bogus)] {
        for path in [
            "/tasks",
            "/tasks/x",
            "/tasks/x/attempts",
            "/tasks/x/events",
            "/workers",
            "/admin/keys",
            "/admin/audit",
            "/me",
        ] {
            let a = client.get(path).await;
            assert_eq!(a.status, 401, "{who} GET {path}: {}", a.text);
            assert_eq!(a.content_type, "application/problem+json");
            assert_eq!(a.body["field"], "Authorization", "{}", a.text);
        }
        let a = client.submit(&json!({"task": "echo"})).await;
        assert_eq!(a.status, 401, "{who} POST /tasks: {}", a.text);
    }
    let r = anonymous.get_response("/tasks").await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"yadtq\"");
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(anonymous.get(path).await.status, 200, "{path} is public");
    }
    // Metrics are not anonymous by default (`--metrics-public` opens them).
    assert_eq!(anonymous.get("/metrics").await.status, 401);
    // Unknown routes stay 404 without a key: authentication runs on matched routes only.
    assert_eq!(anonymous.get("/nope").await.status, 404);
    // Nothing was stored by the refused submissions.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn each_scope_allows_its_operations_only_and_403_names_the_missing_one() {
    let stack = Stack::new("sec_scopes").await;
    let gw = stack.gateway(&[]).await;
    let submit = gw.as_key(Some(&mint_key(&stack.db, "default", &[Scope::Submit], None).await));
    let read = gw.as_key(Some(&mint_key(&stack.db, "default", &[Scope::Read], None).await));
    let operate = gw.as_key(Some(&mint_key(&stack.db, "default", &[Scope::Operate], None).await));

    let a = submit.submit(&json!({"task": "sleep", "args": [30], "id": "scoped-1"})).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let a = submit.get("/tasks/scoped-1").await;
    assert_eq!((a.status, a.body["field"].as_str()), (403, Some("Authorization")), "{}", a.text);
    assert!(a.body["detail"].as_str().unwrap().contains("lacks the 'read' scope"), "{}", a.text);

    assert_eq!(read.get("/tasks/scoped-1").await.status, 200);
    assert_eq!(read.get("/tasks").await.body["tasks"].as_array().unwrap().len(), 1);
    let a = read.submit(&json!({"task": "echo"})).await;
    assert_eq!(a.status, 403);
    assert!(a.body["detail"].as_str().unwrap().contains("'submit'"), "{}", a.text);
    let a = read.post_raw("/tasks/scoped-1/cancel", "", &[]).await;
    assert_eq!(a.status, 403);
    assert!(a.body["detail"].as_str().unwrap().contains("'operate'"), "{}", a.text);
    let a = read.get("/admin/keys").await;
    assert!(a.status == 403 && a.body["detail"].as_str().unwrap().contains("'admin'"), "{}", a.text);

    let a = operate.post_raw("/tasks/scoped-1/cancel", "", &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "cancelled");
    assert_eq!(operate.post_raw("/tasks/scoped-1/retry", "", &[]).await.status, 202);

    // Any key reads its own scopes (what the dashboard offers), no scope needed.
    for (client, scope) in [(&submit, "submit"), (&read, "read"), (&operate, "operate")] {
        let me = client.get("/me").await;
        assert_eq!((me.status, &me.body["scopes"]), (200, &json!([scope])), "{}", me.text);
        assert_eq!((me.body["tenant"].as_str(), &me.body["queues"]), (Some("default"), &Value::Null), "{}", me.text);
        assert!(me.body["key_id"].is_string(), "{}", me.text);
    }
}

#[tokio::test]
async fn tenants_each_own_their_ids_listings_and_results() {
    let stack = Stack::new("sec_tenants").await;
    let gw = stack.gateway(&[]).await;
    let _w = stack.worker("worker", &[]).await;
    let scopes = [Scope::Submit, Scope::Read, Scope::Operate];
    let acme = gw.as_key(Some(&mint_key(&stack.db, "acme", &scopes, None).await));
    let beta = gw.as_key(Some(&mint_key(&stack.db, "beta", &scopes, None).await));

    // The same client id in two tenants: two tasks, each its own.
    for (client, x) in [(&acme, 2), (&beta, 5)] {
        let a = client.submit(&json!({"task": "multiply", "args": [x, 10], "id": "12345abc"})).await;
        assert_eq!(a.status, 202, "{}", a.text);
        assert_eq!(a.body["id"], "12345abc");
        assert_eq!(a.location.as_deref(), Some("/tasks/12345abc"));
    }
    assert_eq!(acme.wait_task("12345abc", LONG).await["result"], 20);
    assert_eq!(beta.wait_task("12345abc", LONG).await["result"], 50);
    // The same body again is an idempotent repeat within the tenant, not a conflict across them.
    let again = beta.submit(&json!({"task": "multiply", "args": [5, 10], "id": "12345abc"})).await;
    assert_eq!((again.status, &again.body["result"]), (200, &json!(50)));

    // Listings, attempts and events show only the caller's tenant.
    let only_b = acme.submit(&json!({"task": "multiply", "args": [1, 1], "id": "acme-only"})).await;
    assert_eq!(only_b.status, 202);
    let listed: Vec<String> = beta.get("/tasks").await.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ["12345abc"]);
    assert_eq!(beta.get("/tasks/acme-only").await.status, 404);
    assert_eq!(beta.get("/tasks/acme-only/attempts").await.status, 404);
    assert_eq!(beta.get("/tasks/acme-only/events").await.status, 404);
    assert_eq!(beta.post_raw("/tasks/acme-only/cancel", "", &[]).await.status, 404);
    // The default tenant (the stack's admin key) does not see them under their client ids either.
    assert_eq!(gw.get("/tasks/12345abc").await.status, 404);

    // Inside, each task has a key of its own: rows, attempts, one execution each.
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, tenant FROM tasks WHERE id LIKE '%12345abc' ORDER BY id")
            .fetch_all(&stack.db)
            .await
            .unwrap();
    assert_eq!(rows, [("acme/12345abc".into(), "acme".into()), ("beta/12345abc".into(), "beta".into())]);
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM task_attempts WHERE task_id LIKE '%12345abc'")
        .fetch_one(&stack.db)
        .await
        .unwrap();
    assert_eq!(attempts, 2);
}

/// Two tenants run a task under the same client id at once; one cancels its
/// own. The cancel reaches the worker by the stored key (NOTIFY payload, the
/// worker's cancel registry), so the other tenant's task, same client id,
/// same worker, keeps running and succeeds.
#[tokio::test]
async fn cancelling_a_task_leaves_another_tenants_task_of_the_same_id_running() {
    let stack = Stack::new("sec_tenant_cancel").await;
    let gw = stack.gateway(&[]).await;
    let w = stack.worker("worker", &[]).await;
    let wid = stack.worker_id(&w).await;
    let scopes = [Scope::Submit, Scope::Read, Scope::Operate];
    let acme = gw.as_key(Some(&mint_key(&stack.db, "acme", &scopes, None).await));
    let beta = gw.as_key(Some(&mint_key(&stack.db, "beta", &scopes, None).await));
    // Beta's task outlasts acme's cancel by a wide margin, however slow the machine.
    for (client, secs) in [(&acme, 6), (&beta, 12)] {
        let a = client.submit(&json!({"task": "sleep", "args": [secs], "id": "12345abc"})).await;
        assert_eq!(a.status, 202, "{}", a.text);
    }
    stack.wait_processing_on(wid, 2, LONG).await;

    let c = acme.post_raw("/tasks/12345abc/cancel", "", &[]).await;
    assert_eq!((c.status, c.body["status"].as_str()), (202, Some("processing")), "{}", c.text);
    let cancelled = acme.wait_task("12345abc", LONG).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    // Aborted within about a heartbeat, well inside beta's 12 s sleep.
    let other = beta.get("/tasks/12345abc").await.body;
    assert_eq!(
        (other["status"].as_str(), &other["cancel_requested_at"]),
        (Some("processing"), &Value::Null),
        "{other}"
    );

    let done = beta.wait_task("12345abc", LONG).await;
    assert_eq!((done["status"].as_str(), &done["cancel_requested_at"]), (Some("success"), &Value::Null), "{done}");
    let outcomes: Vec<(String, String)> =
        sqlx::query_as("SELECT task_id, outcome FROM task_attempts WHERE task_id LIKE '%12345abc' ORDER BY task_id")
            .fetch_all(&stack.db)
            .await
            .unwrap();
    assert_eq!(outcomes, [("acme/12345abc".into(), "cancelled".into()), ("beta/12345abc".into(), "success".into())]);
}

#[tokio::test]
async fn a_key_limited_to_queues_reaches_only_those() {
    let stack = Stack::new("sec_queues").await;
    let gw = stack.gateway(&["--queues", "default,emails"]).await;
    let emails =
        gw.as_key(Some(&mint_key(&stack.db, "default", &[Scope::Submit, Scope::Read], Some(&["emails"])).await));

    let a = emails.submit(&json!({"task": "echo", "queue": "default"})).await;
    assert_eq!((a.status, a.body["field"].as_str()), (403, Some("queue")), "{}", a.text);
    let a = emails
        .post_raw(
            "/tasks/batch",
            json!({"tasks": [{"task": "echo", "queue": "emails"}, {"task": "echo"}]}).to_string(),
            &[],
        )
        .await;
    assert_eq!((a.status, a.body["field"].as_str()), (403, Some("tasks[1].queue")), "{}", a.text);
    assert_eq!(emails.submit(&json!({"task": "echo", "queue": "emails", "id": "mail-1"})).await.status, 202);
    assert_eq!(gw.submit(&json!({"task": "echo", "id": "other-1"})).await.status, 202);

    assert_eq!(emails.get("/tasks/mail-1").await.status, 200);
    assert_eq!(emails.get("/tasks/other-1").await.status, 404);
    let listed = emails.get("/tasks").await.body["tasks"].as_array().unwrap().len();
    assert_eq!(listed, 1);
    assert_eq!(gw.get("/tasks").await.body["tasks"].as_array().unwrap().len(), 2);
}

/// Polls until `client` gets `status` on GET /tasks; returns how long it took.
async fn until_status(client: &yadtq_tests::Client, status: u16) -> Duration {
    let started = Instant::now();
    loop {
        if client.get("/tasks").await.status == status {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "still not {status} after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn keys_made_and_revoked_through_the_admin_api_take_effect_on_every_gateway_and_are_audited() {
    let stack = Stack::new("sec_revoke").await;
    let a = stack.gateway(&["--auth-cache-ttl", "1"]).await;
    let b = stack.gateway(&["--auth-cache-ttl", "1"]).await;

    let bad = a.post_raw("/admin/keys", json!({"tenant": "a/b", "scopes": ["read"]}).to_string(), &[]).await;
    assert_eq!((bad.status, bad.body["field"].as_str()), (400, Some("tenant")), "{}", bad.text);
    let bad = a.post_raw("/admin/keys", json!({"scopes": ["root"]}).to_string(), &[]).await;
    assert_eq!(bad.status, 400, "{}", bad.text);

    let made = a
        .post_raw("/admin/keys", json!({"tenant": "acme", "scopes": ["read"], "name": "dashboard"}).to_string(), &[])
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let token = made.body["token"].as_str().unwrap().to_string();
    let id = made.body["key"]["id"].as_str().unwrap().to_string();
    let on_a = a.as_key(Some(&token));
    let on_b = b.as_key(Some(&token));
    assert_eq!(on_a.get("/tasks").await.status, 200);
    assert_eq!(on_b.get("/tasks").await.status, 200);
    // Only a hash is stored; listings never show the token.
    let listed = a.get("/admin/keys").await;
    assert!(!listed.text.contains(&token), "{}", listed.text);
    assert!(listed.body.as_array().unwrap().iter().any(|k| k["id"] == id.as_str() && k["name"] == "dashboard"));
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE strpos(row_to_json(api_keys)::text, $1) > 0")
            .bind(&token)
            .fetch_one(&stack.db)
            .await
            .unwrap();
    assert_eq!(stored, 0);

    let revoked = a.post_raw(&format!("/admin/keys/{id}/revoke"), "", &[]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(revoked.body["revoked_at"].is_string());
    let (ta, tb) = (until_status(&on_a, 401).await, until_status(&on_b, 401).await);
    eprintln!("revocation took effect after {ta:?} on gateway a and {tb:?} on gateway b (--auth-cache-ttl 1)");

    let audit = a.get("/admin/audit").await;
    let actions: Vec<(String, String)> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == id.as_str())
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["actor"].as_str().unwrap().to_string()))
        .collect();
    let admin_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM api_keys WHERE created_by = 'test-harness' LIMIT 1")
        .fetch_one(&stack.db)
        .await
        .unwrap();
    let actor = format!("key:{admin_id}");
    assert_eq!(actions, [("key.revoke".to_string(), actor.clone()), ("key.create".to_string(), actor)]);
    assert_eq!(a.as_key(Some(&token)).get("/admin/audit").await.status, 401);
}

#[tokio::test]
async fn handler_output_and_worker_hosts_are_shown_only_to_keys_that_may_operate() {
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers.toml");
    std::fs::write(
        &handlers,
        "[handlers.leaky]\nkind = \"command\"\nargv = [\"/bin/sh\", \"-c\", \"echo 'DB_PASSWORD=hunter2' >&2; exit 2\"]\n",
    )
    .unwrap();
    let stack = Stack::new("sec_redact").await;
    let gw = stack.gateway(&[]).await;
    let _w = stack.worker("worker", &["--handlers-file", handlers.to_str().unwrap()]).await;
    let read = gw.as_key(Some(&mint_key(&stack.db, "default", &[Scope::Read], None).await));
    let operate = gw.as_key(Some(&mint_key(&stack.db, "default", &[Scope::Read, Scope::Operate], None).await));

    assert_eq!(gw.submit(&json!({"task": "leaky", "id": "leak-1", "max_retries": 0})).await.status, 202);
    let seen_by_operator = operate.wait_task("leak-1", LONG).await;
    assert!(seen_by_operator["error"]["message"].as_str().unwrap().contains("hunter2"), "{seen_by_operator}");

    let task = read.get("/tasks/leak-1").await.body;
    assert_eq!(task["error"]["kind"], "command_failed");
    let message = task["error"]["message"].as_str().unwrap();
    assert!(!message.contains("hunter2") && message.starts_with("exit code 2"), "{message}");
    let attempts = read.get("/tasks/leak-1/attempts").await;
    assert!(!attempts.text.contains("hunter2"), "{}", attempts.text);
    let listed = read.get("/tasks").await;
    assert!(!listed.text.contains("hunter2"), "{}", listed.text);
    let mut events = read.get_response("/tasks/leak-1/events").await;
    let mut stream = String::new();
    while let Some(chunk) = events.chunk().await.unwrap() {
        stream.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(stream.contains("command_failed") && !stream.contains("hunter2"), "{stream}");

    let workers = read.get("/workers").await.body["workers"].clone();
    assert_eq!(workers.as_array().map(Vec::len), Some(1), "{workers}");
    assert!(
        workers[0]["hostname"].is_null() && workers[0]["pid"].is_null() && workers[0]["version"].is_null(),
        "{workers}"
    );
    assert!(workers[0]["alive"].as_bool().unwrap());
    let workers = operate.get("/workers").await.body["workers"].clone();
    assert!(workers[0]["hostname"].is_string() && workers[0]["pid"].is_number(), "{workers}");
}

#[tokio::test]
async fn keys_are_managed_from_the_command_line() {
    let stack = Stack::new("sec_cli").await;
    let gw = stack.gateway(&["--auth-cache-ttl", "0.5"]).await;
    let (ok, token, err) =
        stack.keys_command(&["create", "--tenant", "acme", "--scopes", "submit,read", "--name", "billing"]);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("yadtq_") && err.contains("shown only now"), "{token} / {err}");
    let client = gw.as_key(Some(&token));
    assert_eq!(client.submit(&json!({"task": "echo", "id": "from-cli"})).await.status, 202);

    let (ok, listing, _) = stack.keys_command(&["list", "--tenant", "acme"]);
    assert!(
        ok && listing.contains("billing") && listing.contains("submit,read") && !listing.contains(&token),
        "{listing}"
    );
    let id = listing.lines().nth(1).and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    let (ok, _, err) = stack.keys_command(&["revoke", &id]);
    assert!(ok, "{err}");
    until_status(&client, 401).await;
    let (ok, listing, _) = stack.keys_command(&["list"]);
    assert!(ok && listing.contains("revoked"), "{listing}");

    let (ok, _, err) = stack.keys_command(&["create", "--tenant", "a/b", "--scopes", "read"]);
    assert!(!ok && err.contains("--tenant"), "{err}");
    let (ok, _, err) = stack.keys_command(&["create", "--scopes", "root"]);
    assert!(!ok && err.contains("unknown scope 'root'"), "{err}");
    let logged: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE actor = 'cli' ORDER BY id")
        .fetch_all(&stack.db)
        .await
        .unwrap();
    assert_eq!(logged, ["key.create", "key.revoke"]);
}

#[tokio::test]
async fn the_first_admin_key_comes_from_the_environment() {
    let mut stack = Stack::new("sec_bootstrap").await;
    let token = stack.bootstrap_admin_key();
    let gw = stack.gateway(&[]).await;
    let admin = gw.as_key(Some(&token));
    assert_eq!(admin.get("/admin/keys").await.status, 200);
    let audit = admin.get("/admin/audit").await.body;
    assert!(audit["entries"].as_array().unwrap().iter().any(|e| e["actor"] == "bootstrap"), "{audit}");

    // Restarting with the same variable adds nothing; a short token is refused at start.
    let again = stack.gateway(&[]).await;
    assert_eq!(again.as_key(Some(&token)).get("/admin/keys").await.status, 200);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE created_by = 'bootstrap'")
        .fetch_one(&stack.db)
        .await
        .unwrap();
    assert_eq!(n, 1);
    stack.set_env("YADTQ_BOOTSTRAP_ADMIN_KEY", "short");
    let mut refused = stack.spawn("yadtq-gateway", &["serve", "--listen", "127.0.0.1:0"], "gateway-short-key");
    let status = refused.wait_exit(Duration::from_secs(20)).expect("a gateway with a short bootstrap key exits");
    assert!(!status.success());
    assert!(
        refused.log().contains("YADTQ_BOOTSTRAP_ADMIN_KEY") || refused.log().contains("bootstrap-admin-key"),
        "{}",
        refused.log()
    );
}

#[tokio::test]
async fn authentication_off_is_explicit_and_loud() {
    let stack = Stack::new("sec_off").await;
    let gw = stack.gateway(&["--auth", "off"]).await;
    let anonymous = gw.as_key(None);
    let a = anonymous.submit(&json!({"task": "echo", "id": "open-1"})).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(anonymous.get("/tasks/open-1").await.status, 200);
    gw.proc.wait_log("AUTHENTICATION IS OFF", Duration::from_secs(10)).await;
}

/// `/metrics` needs a key with the `metrics` scope by default (`admin`
/// implies it: the harness's key scrapes); `--metrics-public` opens it for a
/// private scrape network.
#[tokio::test]
async fn metrics_need_the_metrics_scope_unless_made_public() {
    let stack = Stack::new("sec_metrics").await;
    let gw = stack.gateway(&[]).await;
    let a = gw.as_key(None).get("/metrics").await;
    assert_eq!(a.status, 401, "{}", a.text);
    assert_eq!(a.body["field"], "Authorization", "{}", a.text);
    let reader = mint_key(&stack.db, "default", &[Scope::Read], None).await;
    let a = gw.as_key(Some(&reader)).get("/metrics").await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert!(a.text.contains("'metrics' scope"), "{}", a.text);
    let scraper = mint_key(&stack.db, "default", &[Scope::Metrics], None).await;
    let a = gw.as_key(Some(&scraper)).get("/metrics").await;
    assert_eq!(a.status, 200);
    assert!(a.text.contains("yadtq_"), "{}", a.text);
    let admin = mint_key(&stack.db, "default", &[Scope::Admin], None).await;
    assert_eq!(gw.as_key(Some(&admin)).get("/metrics").await.status, 200, "an admin key scrapes too");
    let v: Value = gw.as_key(None).get("/healthz").await.body;
    assert_eq!(v["status"], "ok");

    let public = stack.gateway(&["--metrics-public"]).await;
    let a = public.as_key(None).get("/metrics").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("yadtq_"), "{}", a.text);
    let public = stack.with_env(&[("YADTQ_METRICS_PUBLIC", "true")]).gateway(&[]).await;
    assert_eq!(public.as_key(None).get("/metrics").await.status, 200);
}
