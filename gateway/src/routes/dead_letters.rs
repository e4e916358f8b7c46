//! `GET /dead-letters`, `GET /dead-letters/{partition}/{offset}` and `POST
//! /dead-letters/{partition}/{offset}/replay`: the dead-letter topic
//! (`yadtq.dlq`), otherwise invisible, and a way to run the task a dead
//! letter stood for.
//!
//! What replay means: a Kafka record only says "look at this row"
//! (docs/architecture.md), so replay never re-sends the dead letter's bytes (they are
//! what the worker could not read). It reads the task id from the record's
//! key (or, failing that, the value's `id`) and, when that task's row is
//! still `queued`, sends a fresh envelope built from the row, as the
//! publisher would. A task that is running or finished is refused (409):
//! it ran, or is running, already, and the claim would refuse a second run
//! anyway; a failed or cancelled one is run again by `POST
//! /tasks/{id}/retry`, as a new attempt. Replaying twice, or a task whose
//! first record is still in the topic, at worst adds a duplicate record,
//! which the claim absorbs (it moves only `queued` to `processing`).
//!
//! Whose dead letter it is: the tenant of the task it names
//! ([`DeadLetter::tenant`]); an `admin` key reaches its own tenant's, a
//! `cluster` key every one, those naming no task included. Others read as
//! absent (404), as other tenants' tasks do.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use yadtq_core::inspect::{DeadLetter, DeadLetters, ScanBudget};
use yadtq_core::model::{Task, TaskStatus};
use yadtq_core::names::TaskKey;
use yadtq_core::store::audit;

use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use yadtq_core::auth::Scope;

/// Most dead letters one `GET /dead-letters` returns.
pub const MAX_LIMIT: usize = 200;
/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;

/// Settings of the gateway's Kafka reads for operators (`GET /dead-letters`,
/// the consumer lag of `GET /queues`).
#[derive(Debug, Clone, clap::Args)]
pub struct InspectConfig {
    /// Bytes of each dead letter's value a listing shows (`GET
    /// /dead-letters/{partition}/{offset}` shows it whole).
    #[arg(long, env = "YADTQ_DEAD_LETTER_PREVIEW_BYTES", default_value_t = 4096)]
    pub dead_letter_preview_bytes: usize,

    /// Seconds a read of the dead-letter topic may take; past it the answer
    /// is a 503 with Retry-After.
    #[arg(long, env = "YADTQ_DEAD_LETTER_READ_TIMEOUT", default_value = "5", value_parser = yadtq_core::config::parse_duration)]
    pub dead_letter_read_timeout: Duration,

    /// Records one `GET /dead-letters` reads at most before it answers with
    /// what it kept and `next_before` to go on from: a tenant's admin whose
    /// dead letters are few among many gets a bounded read, not a timeout.
    #[arg(long, env = "YADTQ_DEAD_LETTER_SCAN_RECORDS", default_value_t = 10_000)]
    pub dead_letter_scan_records: usize,

    /// Seconds the consumer-lag read of `GET /queues` may take; past it the
    /// answer carries `consumer_lag: null` and `kafka_error`.
    #[arg(long, env = "YADTQ_LAG_READ_TIMEOUT", default_value = "2", value_parser = yadtq_core::config::parse_duration)]
    pub lag_read_timeout: Duration,
}

impl InspectConfig {
    /// Errors naming the flag when a timeout or the scan budget is zero.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.dead_letter_scan_records > 0, "--dead-letter-scan-records must be 1 or more");
        yadtq_core::config::ensure_positive(&[
            ("--dead-letter-read-timeout", self.dead_letter_read_timeout),
            ("--lag-read-timeout", self.lag_read_timeout),
        ])
    }
}

/// Query of `GET /dead-letters`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadLettersQuery {
    /// Only this partition of the dead-letter topic (yadtq creates it with
    /// one, partition 0); one the topic lacks matches nothing.
    #[param(minimum = 0)]
    pub partition: Option<i32>,
    /// Only records before this offset (in each partition read): pass a
    /// page's `next_before` to read the page before it.
    #[param(minimum = 0)]
    pub before: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

/// Reads the topic on a blocking thread; a broker that does not answer is a 503.
async fn blocking<T: Send + 'static>(read: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the dead-letter topic");
            Err(ApiError::unavailable(format!("cannot read the dead-letter topic from Kafka: {e}"), 2))
        }
        Err(e) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None)),
    }
}

/// List dead letters, newest first: records a worker found on a task topic
/// that are not valid envelopes, with the reason and origin it gave. Values
/// are cut to 4,096 bytes by default (`truncated`; the gateway's
/// `--dead-letter-preview-bytes`); read one whole by its address. An
/// `admin` key sees those naming its tenant's tasks, a `cluster` key all.
/// One read scans at most 10,000 records (`--dead-letter-scan-records`) or
/// half the read timeout, so a page can hold fewer records than asked, even
/// none: go on while `next_before` is not null.
#[utoipa::path(
    get, path = "/dead-letters", tag = "dead-letters", operation_id = "listDeadLetters", params(DeadLettersQuery),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadLetters),
        (status = 400, description = "Invalid query parameter (`field` names it)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Kafka did not answer within 5 s (`--dead-letter-read-timeout`); see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<DeadLettersQuery>, QueryRejection>,
) -> Result<Json<DeadLetters>, ApiError> {
    caller.require(Scope::Admin)?;
    let Query(q) = query.map_err(|e| {
        let text = e.body_text();
        let field = ["partition", "before", "limit"].into_iter().find(|f| text.contains(f)).unwrap_or("query");
        ApiError::bad_request(field, text)
    })?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("limit", format!("limit must be 1 to {MAX_LIMIT}")));
    }
    if q.partition.is_some_and(|p| p < 0) {
        return Err(ApiError::bad_request("partition", "partition must be 0 or more"));
    }
    if q.before.is_some_and(|b| b < 0) {
        return Err(ApiError::bad_request("before", "before must be 0 or more"));
    }
    let cfg = state.cfg.common.clone();
    let inspect = &state.cfg.inspect;
    let preview = inspect.dead_letter_preview_bytes;
    let budget = ScanBudget { records: inspect.dead_letter_scan_records, timeout: inspect.dead_letter_read_timeout };
    let keep = {
        let caller = caller.clone();
        move |dl: &DeadLetter| caller.administers(dl.tenant())
    };
    let page =
        blocking(move || yadtq_core::inspect::dead_letters(&cfg, q.partition, q.before, limit, preview, budget, keep))
            .await?;
    Ok(Json(page))
}

/// The `{partition}/{offset}` of a dead letter's path, checked: a 400
/// problem document naming the parameter otherwise.
pub struct Address {
    /// Partition of the dead-letter topic.
    pub partition: i32,
    /// Offset in it.
    pub offset: i64,
}

impl<S: Send + Sync> FromRequestParts<S> for Address {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((p, o)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("partition", e.body_text()))?;
        let partition = p
            .parse::<i32>()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| ApiError::bad_request("partition", "partition must be a number, 0 or more"))?;
        let offset = o
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| ApiError::bad_request("offset", "offset must be a number, 0 or more"))?;
        Ok(Self { partition, offset })
    }
}

/// The dead letter at `addr`, or 404, also when `caller` may not administer its tenant.
async fn load(state: &AppState, caller: &Caller, addr: &Address) -> Result<DeadLetter, ApiError> {
    let (cfg, partition, offset) = (state.cfg.common.clone(), addr.partition, addr.offset);
    let timeout = state.cfg.inspect.dead_letter_read_timeout;
    blocking(move || yadtq_core::inspect::dead_letter(&cfg, partition, offset, timeout))
        .await?
        .filter(|dl| caller.administers(dl.tenant()))
        .ok_or_else(|| ApiError::not_found(format!("no dead letter at partition {partition}, offset {offset}")))
}

/// One dead letter, its value whole.
#[utoipa::path(
    get, path = "/dead-letters/{partition}/{offset}", tag = "dead-letters", operation_id = "getDeadLetter",
    params(
        ("partition" = i32, Path, description = "Partition of the dead-letter topic", minimum = 0),
        ("offset" = i64, Path, description = "Offset in that partition", minimum = 0),
    ),
    responses(
        (status = 200, description = "The dead letter", body = DeadLetter),
        (status = 400, description = "Malformed partition or offset (`field` names it)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The topic holds no record there (never written, or deleted by retention), or its record is another tenant's and the key lacks `cluster`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Kafka did not answer within 5 s (`--dead-letter-read-timeout`); see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(State(state): State<AppState>, caller: Caller, addr: Address) -> Result<Json<DeadLetter>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(load(&state, &caller, &addr).await?))
}

/// Replay a dead letter: when the task it names is still `queued` (its
/// only record was dead-lettered, so nothing would run it), send a fresh
/// envelope built from the task's row. Never runs a task twice: a task that
/// is running or finished is refused with 409 (retry a failed or cancelled
/// one with `POST /tasks/{id}/retry`), and a duplicate record is absorbed by
/// the claim. A replay is written to the audit log (`dead_letter.replay`,
/// the task's stored id, the dead letter's partition and offset).
#[utoipa::path(
    post, path = "/dead-letters/{partition}/{offset}/replay", tag = "dead-letters", operation_id = "replayDeadLetter",
    params(
        ("partition" = i32, Path, description = "Partition of the dead-letter topic", minimum = 0),
        ("offset" = i64, Path, description = "Offset in that partition", minimum = 0),
    ),
    responses(
        (status = 202, description = "The task was queued and is sent again; the body is the task", body = Task),
        (status = 400, description = "Malformed partition or offset (`field` names it)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The topic holds no record there, or its record is another tenant's and the key lacks `cluster`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The dead letter names no task (`field` is `key`), or its task is not `queued`: it ran or is running already (`field` is `status`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Kafka or PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    addr: Address,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    caller.require(Scope::Admin)?;
    let dl = load(&state, &caller, &addr).await?;
    let Some(id) = dl.task else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the dead letter names no task (its key is not a task id, and its value has no `id`): \
             there is nothing to run; a task exists only as a row, which its submission writes",
            Some("key"),
        ));
    };
    let key = TaskKey::from_stored(id.clone());
    let task = match yadtq_core::store::tasks::get(&state.pool, &key).await? {
        Some(row) => row.task,
        None => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                "the dead letter names task '{id}', which does not exist (never submitted, or deleted by retention)"
            ),
                Some("key"),
            ))
        }
    };
    if task.status == TaskStatus::Held {
        // Never sent while held: a release (under its limits' locks) queues and sends it.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "task '{id}' is held by a limit: it is sent once its limits have room (GET /tasks/{id} says which)"
            ),
            Some("status"),
        ));
    }
    if task.status != TaskStatus::Queued {
        let hint = match task.status {
            TaskStatus::Failed | TaskStatus::Cancelled => {
                "; to run it again as a new attempt use POST /tasks/{id}/retry".replace("{id}", &id)
            }
            _ => String::new(),
        };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "task '{id}' is {}: it ran or is running already, and replay only sends tasks still queued{hint}",
                task.status.as_str()
            ),
            Some("status"),
        ));
    }
    // Recorded before the send: a replay the log cannot record is not made
    // (503), and a send that then fails leaves the row queued for the
    // publisher, so the entry names an action that takes effect.
    let detail = serde_json::json!({"partition": addr.partition, "offset": addr.offset});
    let tenant = key.tenant();
    audit::record(&state.pool, &caller.actor(), "dead_letter.replay", Some(tenant), Some(&id), &detail).await?;
    tracing::info!(%id, partition = addr.partition, offset = addr.offset, by = %caller.actor(), "replaying a dead letter");
    crate::publish::publish(&state, &[&task]).await;
    Ok((StatusCode::ACCEPTED, Json(caller.present(task))))
}
