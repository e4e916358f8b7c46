//! Fuzz targets of the submit validator ([`super::validate`]), as property
//! tests: arbitrary bytes and arbitrary JSON-ish documents never panic, a
//! refusal is always a 4xx problem naming a field, and an accepted document
//! round-trips (what was accepted, submitted again as the gateway stored it,
//! is the same task with the same request hash).
//!
//! Deterministic by default (a fixed seed, [`yadtq_core::fuzzing::CASES`] cases, each target
//! stopped after [`yadtq_core::fuzzing::BUDGET`] whatever is left), so CI runs the same cases in a
//! few seconds. Longer, with other seeds:
//! `PROPTEST_CASES=1000000 YADTQ_FUZZ_SECONDS=3600 PROPTEST_RNG_SEED=$RANDOM
//! cargo test -p yadtq-gateway fuzz -- --nocapture`.

use std::cell::Cell;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Map, Value};
use yadtq_core::fuzzing::{json_value, run};

use super::validate;
use crate::config::Limits;

/// The fields of a submission, each drawn often so that documents get far.
const FIELDS: [&str; 14] = [
    "task",
    "args",
    "kwargs",
    "id",
    "task-id",
    "queue",
    "max_retries",
    "retry_backoff_base",
    "retry_backoff_cap",
    "timeout",
    "countdown",
    "eta",
    "priority",
    "unique",
];

fn limits() -> Limits {
    Limits {
        max_body_bytes: 1 << 20,
        max_json_depth: 8,
        max_task_name_len: 32,
        max_retries_limit: 100,
        default_max_retries: 3,
        default_timeout: Duration::from_secs(300),
        max_timeout: Duration::from_secs(86_400),
        max_schedule_ahead: Duration::from_secs(2_592_000),
        max_batch: 100,
        max_batch_body_bytes: 1 << 20,
        task_catalogue: vec![],
        max_unique_key_len: 16,
        max_limits_per_task: 8,
        max_limit_tasks: 100,
        queues: vec!["default".into(), "emails".into()],
    }
}

/// A value that a field could plausibly hold, valid or near it.
fn plausible(field: &'static str) -> BoxedStrategy<Value> {
    match field {
        "task" => prop_oneof!["[a-z][a-z0-9._:-]{0,40}", "[ -~]{0,8}"].prop_map(Value::from).boxed(),
        "args" => prop::collection::vec(json_value(), 0..4).prop_map(Value::Array).boxed(),
        "kwargs" => prop::collection::vec(("[a-z]{1,5}", json_value()), 0..4)
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
            .boxed(),
        "id" | "task-id" => prop_oneof!["[A-Za-z0-9._:-]{1,130}", "[ -~]{0,4}"].prop_map(Value::from).boxed(),
        "queue" => prop_oneof![Just("default".to_string()), Just("emails".to_string()), "[A-Za-z0-9_.-]{0,70}"]
            .prop_map(Value::from)
            .boxed(),
        "max_retries" => {
            prop_oneof![(-5i64..120).prop_map(Value::from), (-5.0f64..120.0).prop_map(Value::from)].boxed()
        }
        "unique" => (
            prop::option::of(prop_oneof!["[a-z0-9-]{0,20}", "[ -~]{0,4}"]),
            prop::option::of(-2i64..100_000),
            prop::option::of(prop::collection::vec(prop_oneof![Just("success"), Just("failed"), Just("done")], 0..3)),
        )
            .prop_map(|(key, for_seconds, holding)| {
                let mut u = serde_json::Map::new();
                key.map(|k| u.insert("key".into(), Value::from(k)));
                for_seconds.map(|s| u.insert("for_seconds".into(), Value::from(s)));
                holding.map(|w| u.insert("while".into(), Value::from(w)));
                Value::Object(u)
            })
            .boxed(),
        "eta" => prop_oneof![
            (-100_000i64..5_000_000)
                .prop_map(|s| Value::from((chrono::Utc::now() + chrono::Duration::seconds(s)).to_rfc3339())),
            "[0-9T:Z-]{0,25}".prop_map(Value::from),
        ]
        .boxed(),
        _ => {
            prop_oneof![(-10.0f64..3_000_000.0).prop_map(Value::from), (-10i64..100_000).prop_map(Value::from)].boxed()
        }
    }
}

/// A JSON-ish submission: mostly known fields with plausible values, some
/// with any value, sometimes an unknown field or a document that is not an
/// object.
fn document() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(FIELDS.to_vec())
        .prop_flat_map(|f| (Just(f.to_string()), prop_oneof![4 => plausible(f), 1 => json_value()]));
    let object = (
        plausible("task"),
        prop::collection::vec(field, 0..7),
        prop::option::weighted(0.05, (any::<String>(), json_value())),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(task, fields, unknown, with_task)| {
            let mut doc = Map::new();
            if with_task {
                doc.insert("task".into(), task);
            }
            doc.extend(fields);
            doc.extend(unknown);
            Value::Object(doc)
        });
    prop_oneof![19 => object, 1 => json_value()]
}

/// The text of `doc`, sometimes damaged: a byte replaced, or cut short.
fn jsonish_bytes() -> impl Strategy<Value = (Value, Vec<u8>)> {
    (document(), any::<prop::sample::Index>(), any::<u8>(), 0..4u8).prop_map(|(doc, at, byte, how)| {
        let mut text = serde_json::to_vec(&doc).expect("a Value serialises");
        let i = at.index(text.len());
        match how {
            0 => text[i] = byte,
            1 => text.truncate(i),
            _ => {}
        }
        (doc, text)
    })
}

/// A refusal is a 4xx problem document naming a field of the request.
fn check_refusal(e: crate::problem::ApiError, doc: Option<&Value>) -> Result<(), TestCaseError> {
    let status = e.status().as_u16();
    let problem = e.into_problem();
    prop_assert!((400..500).contains(&status), "status {status}: {problem:?}");
    let field = problem.field.clone().unwrap_or_default();
    prop_assert!(!field.is_empty(), "no field named: {problem:?}");
    let root = field.split(['.', '[']).next().unwrap_or_default();
    let in_doc = doc.and_then(Value::as_object).is_some_and(|o| o.contains_key(root) || o.contains_key(&field));
    prop_assert!(
        FIELDS.contains(&root) || ["body", "Idempotency-Key"].contains(&root) || in_doc,
        "field {field:?} is not one of the request's: {problem:?}"
    );
    Ok(())
}

#[test]
fn fuzz_submit_arbitrary_bytes_are_refused_with_a_field_or_accepted() {
    run("submit bytes", prop::collection::vec(any::<u8>(), 0..256), |bytes| {
        if let Err(e) = validate(&bytes, None, &limits()) {
            check_refusal(e, None)?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_submit_documents_are_refused_with_their_field_or_round_trip() {
    let accepted = Cell::new(0u64);
    let key = prop::option::weighted(0.1, "[A-Za-z0-9._:-]{1,10}");
    run("submit documents", (jsonish_bytes(), key), |((doc, body), key)| {
        // A damaged body that still parses is judged as what it now says.
        let sent = serde_json::from_slice::<Value>(&body).ok();
        let task = match validate(&body, key.as_deref(), &limits()) {
            Err(e) => return check_refusal(e, sent.as_ref()),
            Ok(task) => task,
        };
        accepted.set(accepted.get() + 1);
        // What was accepted is what was sent: the text of args and kwargs kept.
        if body == serde_json::to_vec(&doc).unwrap() {
            let text = |f: &str, default: &str| doc.get(f).map_or(default.to_string(), |v| v.to_string());
            prop_assert_eq!(&task.args, &text("args", "[]"));
            prop_assert_eq!(&task.kwargs, &text("kwargs", "{}"));
            prop_assert_eq!(Some(task.name.as_str()), doc["task"].as_str());
            for id in [doc.get("id"), doc.get("task-id")].into_iter().flatten() {
                prop_assert_eq!(Some(task.id.as_str()), id.as_str());
            }
        }
        // Submitted again as stored, it is the same task.
        let again = format!(
            r#"{{"id": {}, "task": {}, "args": {}, "kwargs": {}, "queue": {}, "max_retries": {}, "timeout": {}}}"#,
            json!(task.id),
            json!(task.name),
            task.args,
            task.kwargs,
            json!(task.queue),
            task.max_retries,
            json!(task.timeout_seconds),
        );
        let back = validate(again.as_bytes(), None, &limits())
            .map_err(|e| TestCaseError::fail(format!("{again} refused: {:?}", e.into_problem())))?;
        prop_assert_eq!(
            (&back.id, &back.name, &back.args, &back.kwargs, &back.queue, back.max_retries, back.timeout_seconds),
            (&task.id, &task.name, &task.args, &task.kwargs, &task.queue, task.max_retries, task.timeout_seconds)
        );
        prop_assert_eq!(back.request_hash, task.request_hash);
        Ok(())
    });
    println!("fuzz submit documents: {} accepted", accepted.get());
    assert!(accepted.get() > 0, "no document was accepted: the generator never reaches the round trip");
}
