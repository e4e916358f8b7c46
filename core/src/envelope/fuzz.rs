//! Fuzz targets of the envelope decoder ([`Envelope::decode`]), as property
//! tests: arbitrary bytes (and JSON-ish records) never panic, encode then
//! decode is the identity, and fields this release does not know are
//! ignored (a newer writer's envelope still decodes to the same task).
//!
//! Deterministic by default (a fixed seed, [`crate::fuzzing::CASES`] cases, each target
//! stopped after [`crate::fuzzing::BUDGET`] whatever is left), so CI runs the same cases in a
//! few seconds. Longer, with other seeds:
//! `PROPTEST_CASES=1000000 YADTQ_FUZZ_SECONDS=3600 PROPTEST_RNG_SEED=$RANDOM
//! cargo test -p yadtq-core fuzz -- --nocapture`.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Envelope, EnvelopeError, ENVELOPE_VERSION};
use crate::fuzzing::{json_value, run};
use crate::names::TaskKey;

/// The envelope's fields.
const FIELDS: [&str; 8] = ["v", "id", "task", "args", "kwargs", "queue", "attempt", "submitted_at"];

/// An envelope as a gateway or the publisher writes one.
fn envelope() -> impl Strategy<Value = Envelope> {
    (
        (".+", any::<String>(), any::<String>()),
        prop::collection::vec(json_value(), 0..4),
        prop::collection::vec((any::<String>(), json_value()), 0..4),
        any::<i32>(),
        (0i64..253_402_300_799, 0u32..1_000_000_000),
    )
        .prop_map(|((id, task, queue), args, kwargs, attempt, (secs, nanos))| Envelope {
            v: ENVELOPE_VERSION,
            id: TaskKey::from_stored(id),
            task,
            args: RawValue::from_string(Value::Array(args).to_string()).expect("JSON text"),
            kwargs: RawValue::from_string(Value::Object(kwargs.into_iter().collect()).to_string()).expect("JSON text"),
            queue,
            attempt,
            submitted_at: chrono::DateTime::from_timestamp(secs, nanos).expect("in range"),
        })
}

/// The envelope's content, to compare two of them.
fn fields(e: &Envelope) -> (u32, &str, &str, &str, &str, &str, i32, chrono::DateTime<chrono::Utc>) {
    (e.v, &e.id, &e.task, e.args.get(), e.kwargs.get(), &e.queue, e.attempt, e.submitted_at)
}

#[test]
fn fuzz_envelope_arbitrary_bytes_never_panic() {
    run("envelope bytes", prop::collection::vec(any::<u8>(), 0..256), |bytes| {
        match Envelope::decode(Some(&bytes)) {
            Ok(env) => prop_assert!(env.v == ENVELOPE_VERSION && !env.id.is_empty()),
            Err(EnvelopeError::Invalid(_) | EnvelopeError::UnknownVersion(_)) => {}
            Err(e) => prop_assert!(false, "{e} for a record with a value"),
        }
        Ok(())
    });
}

#[test]
fn fuzz_envelope_jsonish_records_never_panic() {
    // Objects of the envelope's fields with any values: the decoder's error
    // paths for each field, and a valid record now and then.
    let field = (prop::sample::select(FIELDS.to_vec()).prop_map(str::to_string), json_value());
    let record = (prop::collection::vec(field, 0..10), envelope()).prop_map(|(fields, base)| {
        let mut doc: Map<String, Value> = serde_json::from_slice(&base.encode()).expect("an envelope is an object");
        doc.extend(fields);
        serde_json::to_vec(&doc).expect("a Value serialises")
    });
    run("envelope records", record, |bytes| {
        if let Ok(env) = Envelope::decode(Some(&bytes)) {
            prop_assert!(env.v == ENVELOPE_VERSION && !env.id.is_empty());
        }
        Ok(())
    });
}

#[test]
fn fuzz_envelope_encode_then_decode_is_the_identity() {
    run("envelope round trip", envelope(), |env| {
        let bytes = env.encode();
        let back = Envelope::decode(Some(&bytes)).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(fields(&back), fields(&env));
        prop_assert_eq!(back.encode(), bytes);
        Ok(())
    });
}

#[test]
fn fuzz_envelope_unknown_fields_are_ignored() {
    let extra = prop::collection::vec(
        (any::<String>().prop_filter("unknown", |k| !FIELDS.contains(&k.as_str())), json_value()),
        1..5,
    );
    run("envelope unknown fields", (envelope(), extra), |(env, extra)| {
        let mut doc: Map<String, Value> = serde_json::from_slice(&env.encode()).expect("an envelope is an object");
        doc.extend(extra);
        let bytes = serde_json::to_vec(&doc).expect("a Value serialises");
        let back = Envelope::decode(Some(&bytes)).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(fields(&back), fields(&env));
        Ok(())
    });
}
