//! The `unique` option of a submission (docs/unique.md): its request shape
//! and its validation into the store's [`Unique`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use yadtq_core::model::TaskStatus;
use yadtq_core::store::unique::{self, Unique};

use crate::config::Limits;
use crate::problem::ApiError;

/// At most one task of this tenant and task name holds the key at a time:
/// a repeat while that task holds it answers 200 with it (header
/// `Yadtq-Unique: existing`) instead of creating one. Every status but
/// `success`, `failed` and `cancelled` holds the key (statuses added later
/// included); `while` adds terminal ones. When `id` names another existing
/// task, the unique match wins. `{}` takes the default key.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "sync-customer-42"}))]
pub struct UniqueRequest {
    /// The key (1 to `YADTQ_MAX_UNIQUE_KEY_LEN` characters, default 256, no
    /// control characters). Default: the SHA-256 of the canonical JSON of
    /// `task`, `args`, `kwargs` and `queue` (object keys sorted, no spaces).
    #[schema(pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]{1,256}$")]
    pub key: Option<String>,
    /// The key holds within a time bucket of this many seconds only
    /// (`floor(epoch / for_seconds)` of the database clock, so a new bucket
    /// admits a new task). At least 1.
    #[schema(minimum = 1, maximum = 2147483647)]
    #[serde(default, deserialize_with = "super::integer")]
    pub for_seconds: Option<i32>,
    /// Terminal statuses that also hold the key (e.g. `["success"]` with
    /// `for_seconds: 3600`: at most one successful task per hour). Names of
    /// non-terminal statuses change nothing: they always hold it.
    #[serde(rename = "while")]
    #[schema(value_type = Option<Vec<TaskStatus>>)]
    pub holding: Option<Vec<String>>,
}

impl UniqueRequest {
    /// The option as stored, for a view: the effective key (the default
    /// one included) and the `while` names given.
    pub fn of(u: &Unique) -> Self {
        Self {
            key: Some(u.key.clone()),
            for_seconds: u.for_seconds.and_then(|s| i32::try_from(s).ok()),
            holding: Some(u.also_while.iter().map(|s| s.as_str().to_string()).collect()),
        }
    }
}

/// Validates `req` for the task `name`, `args`, `kwargs` and `queue`;
/// errors are 400s naming `unique.key`, `unique.for_seconds` or `unique.while`.
pub fn validate(
    req: UniqueRequest,
    name: &str,
    args: &str,
    kwargs: &str,
    queue: &str,
    limits: &Limits,
) -> Result<Unique, ApiError> {
    let key = match req.key {
        None => unique::default_key(name, args, kwargs, queue),
        Some(k) => {
            let len = k.chars().count();
            if !(1..=limits.max_unique_key_len).contains(&len) || k.chars().any(char::is_control) {
                return Err(ApiError::bad_request(
                    "unique.key",
                    format!(
                        "unique.key must be 1 to {} characters without control characters (got {len})",
                        limits.max_unique_key_len
                    ),
                ));
            }
            k
        }
    };
    if req.for_seconds.is_some_and(|s| s < 1) {
        return Err(ApiError::bad_request("unique.for_seconds", "unique.for_seconds must be at least 1"));
    }
    let also_while = req
        .holding
        .unwrap_or_default()
        .iter()
        .map(|s| {
            TaskStatus::parse(s).ok_or_else(|| {
                let known: Vec<&str> = TaskStatus::KNOWN.iter().map(TaskStatus::as_str).collect();
                ApiError::bad_request(
                    "unique.while",
                    format!("unique.while names unknown status {s:?}; known: {}", known.join(", ")),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Unique { key, for_seconds: req.for_seconds.map(i64::from), also_while })
}

/// The header that marks an answer as the existing holder of the
/// submission's unique key, with the value [`EXISTING`].
pub const HEADER: &str = "yadtq-unique";
/// The value of [`HEADER`].
pub const EXISTING: &str = "existing";

/// The holder of a submission's key, when `caller` may see its queue;
/// otherwise a 409 naming `unique` (a key in a queue the caller's API key
/// does not cover stays taken, but its task is not shown).
pub fn visible_holder(
    caller: &crate::auth::Caller,
    holder: yadtq_core::model::Task,
) -> Result<yadtq_core::model::Task, ApiError> {
    if caller.sees_queue(&holder.queue) {
        return Ok(caller.present(holder));
    }
    Err(ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "another task, in a queue this API key cannot see, holds the unique key",
        Some("unique"),
    ))
}
