//! W3C trace context end to end: a `traceparent` sent with POST /tasks is
//! stored with the task (its `trace_id`), continued by the worker's spans and
//! handed to HTTP handlers (header) and command handlers (environment); with
//! the standard `OTEL_*` variables the gateway's and worker's spans reach an
//! OTLP/HTTP receiver (one inside the test) in the submitter's trace.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use yadtq_tests::{wait_for, Answer, Gateway, Stack};

const LONG: Duration = Duration::from_secs(120);
/// The submitter's trace and span.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE}-{SPAN}-01")
}

/// Starts `app` on a free loopback port; its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

/// POSTs `body` to `path` with `headers` besides the JSON content type.
async fn send(gw: &Gateway, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    gw.post_raw(path, body.to_string(), &all).await
}

/// The trace id and parent span id of a `traceparent` value.
fn ids(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "not a traceparent: {traceparent:?}");
    (parts[1].to_string(), parts[2].to_string())
}

#[tokio::test]
async fn handlers_receive_the_submitters_trace() {
    // The HTTP handler answers with the traceparent header it received.
    let base = serve(Router::new().route(
        "/traced",
        post(|headers: HeaderMap| async move {
            Json(json!({"traceparent": headers.get("traceparent").and_then(|v| v.to_str().ok())}))
        }),
    ))
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let handlers = dir.path().join("handlers.toml");
    std::fs::write(
        &handlers,
        format!(
            r#"
            [handlers.http_traced]
            kind = "http"
            url = "{base}/traced"

            [handlers.command_traced]
            kind = "command"
            argv = ["/bin/sh", "-c", "printf '{{\"traceparent\": \"%s\"}}' \"$TRACEPARENT\""]
            "#
        ),
    )
    .expect("handlers file");
    let mut stack = Stack::new("traces_handlers").await;
    // The worker's own environment is not what a command handler gets.
    stack.set_env("TRACEPARENT", &format!("00-{}-{SPAN}-01", "1".repeat(32)));
    let gw = stack.gateway(&[]).await;
    let _worker = stack.worker("worker", &["--handlers-file", handlers.to_str().expect("path")]).await;

    for task in ["http_traced", "command_traced"] {
        let a = send(&gw, "/tasks", &json!({"task": task, "args": []}), &[("traceparent", &traceparent())]).await;
        assert_eq!(a.status, 202, "{}", a.text);
        assert_eq!(a.body["trace_id"], TRACE, "the task is in the submitter's trace: {}", a.text);
        let id = a.body["id"].as_str().expect("id").to_string();
        let t = gw.wait_task(&id, LONG).await;
        assert_eq!(t["status"], "success", "{t}");
        assert_eq!(t["trace_id"], TRACE, "{t}");
        let received = t["result"]["traceparent"].as_str().unwrap_or_else(|| panic!("{task} got no traceparent: {t}"));
        let (trace, parent) = ids(received);
        assert_eq!(trace, TRACE, "{task} continues the submitter's trace");
        assert_ne!(parent, SPAN, "{task}'s parent is the worker's run span, not the submitter's");
    }
}

#[tokio::test]
async fn a_missing_or_invalid_traceparent_starts_a_new_trace_and_a_batch_shares_one() {
    let stack = Stack::new("traces_new").await;
    let gw = stack.gateway(&[]).await;
    let hex32 = |v: &Value| v.as_str().is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()));

    let plain = gw.submit(&json!({"task": "echo", "args": [1]})).await;
    assert_eq!(plain.status, 202, "{}", plain.text);
    assert!(hex32(&plain.body["trace_id"]), "a new trace: {}", plain.text);
    let mut seen = vec![plain.body["trace_id"].clone()];
    for bad in ["garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "ff-xyz"] {
        let a = send(&gw, "/tasks", &json!({"task": "echo", "args": [2]}), &[("traceparent", bad)]).await;
        assert_eq!(a.status, 202, "an invalid traceparent is no error: {}", a.text);
        assert!(hex32(&a.body["trace_id"]), "{}", a.text);
        assert!(!seen.contains(&a.body["trace_id"]), "each gets a trace of its own: {}", a.text);
        seen.push(a.body["trace_id"].clone());
    }

    let tasks: Vec<Value> = (0..3).map(|i| json!({"task": "echo", "args": [i]})).collect();
    let batch = send(&gw, "/tasks/batch", &json!({ "tasks": tasks }), &[("traceparent", &traceparent())]).await;
    assert_eq!(batch.status, 202, "{}", batch.text);
    let traces: Vec<&Value> = batch.body["tasks"].as_array().expect("tasks").iter().map(|t| &t["trace_id"]).collect();
    assert_eq!(traces, vec![&json!(TRACE); 3], "{}", batch.text);
}

/// What the test's OTLP receiver got: each request body (OTLP/JSON).
type Received = Arc<Mutex<Vec<Value>>>;

/// `(service.name, span name, trace id, span id, parent span id)` of every span received.
fn spans(received: &Received) -> Vec<(String, String, String, String, String)> {
    let mut out = Vec::new();
    for body in received.lock().iter() {
        for rs in body["resourceSpans"].as_array().into_iter().flatten() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or_default()
                .to_string();
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    let field = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                    out.push((
                        service.clone(),
                        field("name"),
                        field("traceId"),
                        field("spanId"),
                        field("parentSpanId"),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn spans_are_exported_over_otlp_in_the_submitters_trace() {
    let received: Received = Arc::default();
    let sink = received.clone();
    let collector = serve(Router::new().route(
        "/v1/traces",
        post(move |Json(body): Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().push(body);
                Json(json!({}))
            }
        }),
    ))
    .await;
    let mut stack = Stack::new("traces_otlp").await;
    stack.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector);
    stack.set_env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
    stack.set_env("OTEL_BSP_SCHEDULE_DELAY", "200");
    let gw = stack.gateway(&[]).await;
    let _worker = stack.worker("worker", &[]).await;

    let a = send(&gw, "/tasks", &json!({"task": "echo", "args": [7]}), &[("traceparent", &traceparent())]).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let id = a.body["id"].as_str().expect("id").to_string();
    assert_eq!(gw.wait_task(&id, LONG).await["status"], "success");

    let wanted =
        [("yadtq-gateway", "submit"), ("yadtq-worker", "claim"), ("yadtq-worker", "run"), ("yadtq-worker", "outcome")];
    wait_for(LONG, "the four spans at the receiver", || async {
        let got = spans(&received);
        wanted.iter().all(|(svc, name)| got.iter().any(|s| s.0 == *svc && s.1 == *name && s.2 == TRACE))
    })
    .await;
    let got = spans(&received);
    let in_trace: Vec<(&str, &str)> = got.iter().filter(|s| s.2 == TRACE).map(|s| (&*s.0, &*s.1)).collect();
    println!("{} spans received; in the submitter's trace: {in_trace:?}", got.len());
    let submit = got.iter().find(|s| s.1 == "submit" && s.2 == TRACE).expect("submit span");
    assert_eq!(submit.4, SPAN, "the gateway's span is the child of the submitter's");
    for name in ["claim", "run", "outcome"] {
        let span = got.iter().find(|s| s.1 == name && s.2 == TRACE).expect("worker span");
        assert_eq!(span.4, submit.3, "the worker's {name} span is the child of the gateway's submit span: {got:?}");
    }
}
