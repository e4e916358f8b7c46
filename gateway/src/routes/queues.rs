//! `GET /queues`: per queue, the tasks by active status, the oldest queued
//! task's age, tasks finished per minute over a recent window, and the
//! workers' consumer lag. What the dashboard's overview shows. Tasks in a
//! status this release does not know count in `other`, by status.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use yadtq_core::model::TaskStatus;

use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Longest window of `minutes`, minutes.
pub const MAX_MINUTES: i32 = 60;
/// Window when `minutes` is not given, minutes.
pub const DEFAULT_MINUTES: i32 = 15;

/// Query of `GET /queues`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QueuesQuery {
    /// Throughput window: the last this many minutes, the current one
    /// included (1 to 60, default 15).
    #[param(minimum = 1, maximum = 60)]
    pub minutes: Option<i32>,
}

/// Tasks finished in one minute, by outcome.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Minute {
    /// Start of the minute (database clock).
    pub minute: DateTime<Utc>,
    /// Tasks that succeeded.
    pub success: i64,
    /// Tasks that failed (retries spent, or a permanent error).
    pub failed: i64,
    /// Tasks cancelled.
    pub cancelled: i64,
}

/// One queue's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueOverview {
    /// Queue name.
    pub queue: String,
    /// Workflow nodes waiting for their parents (docs/workflows.md).
    pub waiting: i64,
    /// Tasks a limit holds back until it has room (docs/limits.md); not
    /// counted in `queued` nor in `oldest_queued_age_s`.
    pub held: i64,
    /// Tasks waiting for a worker now.
    pub queued: i64,
    /// Tasks waiting for their `run_at` (countdown, eta, retry backoff).
    pub scheduled: i64,
    /// Tasks running now.
    pub processing: i64,
    /// Tasks now in a status this release does not know (a newer release's,
    /// during a rolling upgrade), by that status
    /// verbatim; such tasks are not finished. Empty when there are none.
    pub other: BTreeMap<String, i64>,
    /// Seconds since the oldest `queued` task became due (database clock);
    /// null when none is queued.
    pub oldest_queued_age_s: Option<f64>,
    /// Tasks finished per minute over the window, oldest first, one entry per
    /// minute (zeros included); the last one is the current, partial minute.
    pub throughput: Vec<Minute>,
    /// Sums of `throughput`.
    pub finished: Minute,
    /// `failed / (success + failed)` over the window; null when none finished.
    pub failure_rate: Option<f64>,
    /// Records on the queue's topics (its shared topic and its dedicated
    /// tenants' own) the workers' consumer group has not committed yet; null
    /// when Kafka did not answer (see `kafka_error`).
    pub consumer_lag: Option<i64>,
}

/// Every queue: the ones the gateways declare and any that holds tasks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Queues {
    /// The throughput window, minutes.
    pub minutes: i32,
    /// The queues, by name.
    pub queues: Vec<QueueOverview>,
    /// Why `consumer_lag` is null, when Kafka did not answer within the
    /// gateway's `--lag-read-timeout` (2 s by default).
    pub kafka_error: Option<String>,
}

/// Per queue: tasks by active status (statuses this release does not know,
/// a newer release's, in `other`), oldest queued age, throughput and
/// failure rate over the last `minutes`, consumer lag. Reads PostgreSQL's
/// partial indexes (active statuses, `finished_at`), so its cost follows the
/// active and recent tasks rather than the table; the lag asks Kafka for
/// watermarks and the workers' committed offsets (bounded by the gateway's
/// `--lag-read-timeout`, 2 s by default).
#[utoipa::path(
    get, path = "/queues", tag = "queues", operation_id = "listQueues", params(QueuesQuery),
    responses(
        (status = 200, description = "The queues", body = Queues),
        (status = 400, description = "Invalid `minutes`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    query: Result<Query<QueuesQuery>, QueryRejection>,
) -> Result<Json<Queues>, ApiError> {
    // Counts over every tenant's tasks: the operators' view.
    caller.require(yadtq_core::auth::Scope::Operate)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("minutes", e.body_text()))?;
    let minutes = q.minutes.unwrap_or(DEFAULT_MINUTES);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(ApiError::bad_request("minutes", format!("minutes must be 1 to {MAX_MINUTES}")));
    }
    let pool = &state.pool;
    let (declared, active, (now, finished)) = tokio::try_join!(
        yadtq_core::store::queues::declared(pool),
        yadtq_core::store::stats::active(pool),
        yadtq_core::store::overview::finished_per_minute(pool, minutes),
    )?;
    let mut names: BTreeSet<String> = declared.into_iter().collect();
    names.extend(state.cfg.limits.queues.iter().cloned());
    names.extend(active.counts.iter().map(|c| c.queue.clone()));
    names.extend(finished.iter().map(|f| f.queue.clone()));
    let names: Vec<String> = names.into_iter().collect();

    let (lag, kafka_error) = {
        // Each queue's lag sums its shared topic and its dedicated tenants'.
        let queues: Vec<(String, Vec<String>)> = names.iter().map(|q| (q.clone(), state.routes.topics_of(q))).collect();
        let (cfg, timeout) = (state.cfg.common.clone(), state.cfg.inspect.lag_read_timeout);
        let read = tokio::task::spawn_blocking(move || yadtq_core::inspect::consumer_lag(&cfg, &queues, timeout));
        match read.await {
            Ok(Ok(lag)) => (lag, None),
            Ok(Err(e)) => (BTreeMap::new(), Some(e.to_string())),
            Err(e) => (BTreeMap::new(), Some(e.to_string())),
        }
    };

    let first = now - chrono::Duration::minutes(i64::from(minutes - 1));
    let queues = names
        .iter()
        .map(|name| {
            let count = |status: TaskStatus| {
                active.counts.iter().find(|c| &c.queue == name && c.status == status).map_or(0, |c| c.count)
            };
            let other = active
                .counts
                .iter()
                .filter(|c| &c.queue == name && !c.status.is_known())
                .map(|c| (c.status.as_str().to_owned(), c.count))
                .collect();
            let mut throughput: Vec<Minute> = (0..minutes)
                .map(|i| Minute { minute: first + chrono::Duration::minutes(i64::from(i)), ..Minute::default() })
                .collect();
            let mut total = Minute { minute: first, ..Minute::default() };
            for f in finished.iter().filter(|f| &f.queue == name) {
                let Some(slot) = throughput.iter_mut().find(|m| m.minute == f.minute) else { continue };
                let (one, sum) = match f.status {
                    TaskStatus::Success => (&mut slot.success, &mut total.success),
                    TaskStatus::Failed => (&mut slot.failed, &mut total.failed),
                    TaskStatus::Cancelled => (&mut slot.cancelled, &mut total.cancelled),
                    // The store reads terminal statuses only; nothing else is "finished".
                    _ => continue,
                };
                *one += f.count;
                *sum += f.count;
            }
            let decided = total.success + total.failed;
            QueueOverview {
                queue: name.clone(),
                waiting: count(TaskStatus::Waiting),
                held: count(TaskStatus::Held),
                queued: count(TaskStatus::Queued),
                scheduled: count(TaskStatus::Scheduled),
                processing: count(TaskStatus::Processing),
                other,
                oldest_queued_age_s: active.oldest_queued.iter().find(|(q, _)| q == name).map(|(_, age)| *age),
                failure_rate: (decided > 0).then(|| total.failed as f64 / decided as f64),
                finished: total,
                throughput,
                consumer_lag: if kafka_error.is_none() { lag.get(name).copied() } else { None },
            }
        })
        .collect();
    Ok(Json(Queues { minutes, queues, kafka_error }))
}
