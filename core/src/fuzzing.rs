//! The property-test runner the fuzz targets share (the envelope decoder's
//! in this crate, the submit validator's in the gateway), and a strategy
//! for arbitrary JSON values. Test support only: behind `cfg(test)` or the
//! `test-support` feature.
//!
//! Deterministic by default (a fixed seed, [`CASES`] cases, each target
//! stopped after [`BUDGET`] whatever is left), so CI runs the same cases in a
//! few seconds; `PROPTEST_CASES`, `PROPTEST_RNG_SEED` and
//! `YADTQ_FUZZ_SECONDS` make a run longer or different.

use std::cell::Cell;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{Map, Value};

/// Cases per target unless `PROPTEST_CASES` says otherwise.
pub const CASES: u32 = 1024;
/// Seed unless `PROPTEST_RNG_SEED` says otherwise.
pub(crate) const SEED: u64 = 13;
/// Longest a target runs unless `YADTQ_FUZZ_SECONDS` says otherwise; the
/// cases left then pass unrun (the count run is printed).
pub const BUDGET: Duration = Duration::from_secs(6);

/// Runs `test` on values of `strategy` under the fixed configuration.
pub fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut config = Config { failure_persistence: None, max_shrink_time: 10_000, ..Config::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(SEED);
    }
    let budget = std::env::var("YADTQ_FUZZ_SECONDS")
        .ok()
        .map_or(BUDGET, |s| Duration::from_secs_f64(s.parse().expect("YADTQ_FUZZ_SECONDS: seconds")));
    let (started, ran) = (Instant::now(), Cell::new(0u64));
    let result = TestRunner::new(config.clone()).run(&strategy, |v| {
        if started.elapsed() > budget {
            return Ok(());
        }
        ran.set(ran.get() + 1);
        test(v)
    });
    println!(
        "fuzz {name}: {} of {} cases in {:.1?} (seed {:?})",
        ran.get(),
        config.cases,
        started.elapsed(),
        config.rng_seed
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

/// Any JSON value, nested a few levels, with large numbers and any text.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        "-?[1-9][0-9]{0,39}".prop_map(|d| Value::Number(d.parse().expect("digits are a number"))),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}
