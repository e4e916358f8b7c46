//! Built-in handlers: `add`, `sub`, `multiply`, `divide` (the seed's examples),
//! `echo`, `sleep`, `fail` and `flaky` (fails, retryably, until attempt `args[0]`),
//! and for workflow nodes (docs/workflows.md) `sum` (its numeric args plus
//! its parents' results) and `collect` (its parents' results by ref).

use std::time::Duration;

use serde_json::{Number, Value};

use crate::handler::{HandlerError, Registry, TaskContext};

/// Registers every built-in handler on `r`.
pub fn register(r: &mut Registry) {
    r.register("add", |ctx| async move { fold(&ctx, 1, i64::checked_add, |a, b| a + b) });
    r.register("multiply", |ctx| async move { fold(&ctx, 1, i64::checked_mul, |a, b| a * b) });
    r.register("sub", |ctx| async move {
        exactly_two(&ctx)?;
        fold(&ctx, 2, i64::checked_sub, |a, b| a - b)
    });
    r.register("divide", |ctx| async move { divide(&ctx) });
    r.register("echo", |ctx| async move { Ok(Value::Array(ctx.args)) });
    r.register("sleep", |ctx| async move { sleep(ctx).await });
    r.register("flaky", |ctx| async move {
        let succeed_on = ctx.args.first().and_then(Value::as_i64).unwrap_or(2);
        if i64::from(ctx.attempt) < succeed_on {
            Err(HandlerError::retryable(format!("flaky: attempt {} of {succeed_on}", ctx.attempt)))
        } else {
            Ok(Value::from(ctx.attempt))
        }
    });
    r.register("sum", |mut ctx| async move {
        let from_parents: Vec<Value> = succeeded(&ctx).map(|(_, result)| result.clone()).collect();
        ctx.args.extend(from_parents);
        if ctx.args.is_empty() {
            return Ok(Value::from(0));
        }
        fold(&ctx, 1, i64::checked_add, |a, b| a + b)
    });
    r.register("collect", |ctx| async move {
        let results: serde_json::Map<String, Value> = succeeded(&ctx).map(|(r, v)| (r.clone(), v.clone())).collect();
        let failed: Vec<&String> = parents(&ctx).filter(|(_, p)| p["status"] != "success").map(|(r, _)| r).collect();
        Ok(serde_json::json!({"args": ctx.args, "parents": results, "failed": failed}))
    });
    r.register("fail", |ctx| async move {
        let message = ctx.args.first().and_then(Value::as_str).unwrap_or("failed on purpose");
        Err(HandlerError::retryable(message))
    });
}

/// A workflow node's parents (`TaskContext::parents`), by ref in ref order; none for a plain task.
fn parents(ctx: &TaskContext) -> impl Iterator<Item = (&String, &Value)> {
    ctx.parents.as_ref().and_then(Value::as_object).into_iter().flatten()
}

/// The results of a node's parents that succeeded, by ref.
fn succeeded(ctx: &TaskContext) -> impl Iterator<Item = (&String, &Value)> {
    parents(ctx).filter(|(_, p)| p["status"] == "success").map(|(r, p)| (r, &p["result"]))
}

fn numbers(ctx: &TaskContext, min: usize) -> Result<Vec<&Number>, HandlerError> {
    if ctx.args.len() < min {
        return Err(HandlerError::invalid_arguments(format!(
            "{} needs at least {min} numbers in args, got {}",
            ctx.task,
            ctx.args.len()
        )));
    }
    ctx.args
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_number().ok_or_else(|| HandlerError::invalid_arguments(format!("args[{i}] must be a number, got {v}")))
        })
        .collect()
}

fn exactly_two(ctx: &TaskContext) -> Result<(), HandlerError> {
    if ctx.args.len() != 2 {
        return Err(HandlerError::invalid_arguments(format!(
            "{} takes exactly 2 numbers in args, got {}",
            ctx.task,
            ctx.args.len()
        )));
    }
    Ok(())
}

/// Folds the numbers left to right: exact in i64 while every input is an
/// integer and nothing overflows, otherwise in f64.
fn fold(
    ctx: &TaskContext,
    min: usize,
    int_op: fn(i64, i64) -> Option<i64>,
    float_op: fn(f64, f64) -> f64,
) -> Result<Value, HandlerError> {
    let nums = numbers(ctx, min)?;
    let ints: Option<Vec<i64>> = nums.iter().map(|n| n.as_i64()).collect();
    if let Some(ints) = ints {
        let exact = ints[1..].iter().try_fold(ints[0], |acc, &b| int_op(acc, b));
        if let Some(v) = exact {
            return Ok(Value::from(v));
        }
    }
    let floats: Vec<f64> = nums.iter().map(|n| n.as_f64().unwrap_or(f64::NAN)).collect();
    float_result(floats[1..].iter().fold(floats[0], |acc, &b| float_op(acc, b)))
}

fn float_result(v: f64) -> Result<Value, HandlerError> {
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| HandlerError::invalid_arguments("result is not a finite number"))
}

/// True division, like Python's `/`: `divide(7, 2)` is `3.5`, `divide(4, 2)` is `2.0`.
fn divide(ctx: &TaskContext) -> Result<Value, HandlerError> {
    exactly_two(ctx)?;
    let nums = numbers(ctx, 2)?;
    let (a, b) = (nums[0].as_f64().unwrap_or(f64::NAN), nums[1].as_f64().unwrap_or(f64::NAN));
    if b == 0.0 {
        return Err(HandlerError::invalid_arguments("division by zero"));
    }
    float_result(a / b)
}

/// Sleeps `args[0]` (or `kwargs.seconds`) seconds, up to one day, reporting
/// progress every second; returns the seconds slept.
async fn sleep(ctx: TaskContext) -> Result<Value, HandlerError> {
    let v = ctx.args.first().or_else(|| ctx.kwargs.get("seconds"));
    let secs =
        v.and_then(Value::as_f64).filter(|s| s.is_finite() && (0.0..=86_400.0).contains(s)).ok_or_else(|| {
            HandlerError::invalid_arguments("sleep needs a number of seconds between 0 and 86400 in args[0]")
        })?;
    let start = tokio::time::Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    loop {
        let next = (tokio::time::Instant::now() + Duration::from_secs(1)).min(end);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = ctx.cancel.cancelled() => return Err(HandlerError::retryable("sleep cancelled")),
        }
        if next >= end {
            return float_result(secs);
        }
        let done = start.elapsed().as_secs_f64();
        ctx.report_progress(100.0 * done / secs, format!("slept {done:.0} of {secs} s")).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn run(name: &str, args: Value) -> Result<Value, HandlerError> {
        let r = Registry::with_builtins();
        let ctx = TaskContext {
            id: "t".into(),
            task: name.into(),
            attempt: 1,
            args: args.as_array().unwrap().clone(),
            kwargs: Default::default(),
            cancel: Default::default(),
            progress: None,
            owner: None,
            trace: None,
            parents: None,
        };
        (r.get(name).unwrap())(ctx).await
    }

    #[tokio::test]
    async fn arithmetic() {
        assert_eq!(run("multiply", json!([4, 5])).await.unwrap(), json!(20));
        assert_eq!(run("add", json!([1, 2, 3])).await.unwrap(), json!(6));
        assert_eq!(run("sub", json!([1, 5])).await.unwrap(), json!(-4));
        assert_eq!(run("add", json!([1.5, 2])).await.unwrap(), json!(3.5));
        assert_eq!(run("divide", json!([7, 2])).await.unwrap(), json!(3.5));
        assert_eq!(run("add", json!([i64::MAX, 1])).await.unwrap(), json!(9223372036854775808.0));
    }

    #[tokio::test]
    async fn bad_arguments_are_permanent() {
        let e = run("divide", json!([1, 0])).await.unwrap_err();
        assert_eq!(
            (e.kind.as_str(), e.message.as_str(), e.retryable),
            ("invalid_arguments", "division by zero", false)
        );
        assert_eq!(run("add", json!(["x", 1])).await.unwrap_err().kind, "invalid_arguments");
        assert_eq!(run("sub", json!([1, 2, 3])).await.unwrap_err().kind, "invalid_arguments");
        assert!(run("fail", json!(["boom"])).await.unwrap_err().retryable);
    }
}
