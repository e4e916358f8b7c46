//! Parsing and validating a `POST /tasks` body. Pure: bytes in, a validated
//! task or a 4xx [`ApiError`] naming the field out. `args` and `kwargs` are
//! kept as the exact JSON text the client sent (design guarantee 8).

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use yadtq_core::config::DEFAULT_QUEUE;
use yadtq_core::envelope::Envelope;
use yadtq_core::kafka::RecordLimit;
use yadtq_core::names::{LimitName, QueueName, TaskId, TaskName, Tenant};
use yadtq_core::store::tasks::{Backoff, NewTask};
use yadtq_core::validate;

use crate::config::Limits;
use crate::problem::ApiError;

/// Body of `POST /tasks` (and each element of `POST /tasks/batch`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"task": "multiply", "args": [4, 5], "kwargs": {}}))]
pub struct SubmitRequest {
    /// Handler name (required): letters, digits and `._:-`, starting with a letter.
    // Required in the schema; an `Option` here only so that its absence is a
    // 400 naming `task` rather than serde's generic message.
    #[schema(value_type = String, pattern = "^[A-Za-z][A-Za-z0-9._:-]{0,127}$")]
    pub task: Option<String>,
    /// Positional arguments, a JSON array of any values (default `[]`).
    #[schema(value_type = Option<Vec<serde_json::Value>>)]
    pub args: Option<Box<RawValue>>,
    /// Keyword arguments, a JSON object of any values (default `{}`).
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub kwargs: Option<Box<RawValue>>,
    /// Client-chosen task id (1-128 of letters, digits, `._:-`, other than `.`
    /// and `..`); submitting the
    /// same id again returns the original task. Default: a server UUID.
    /// `task-id` and the `Idempotency-Key` header, when given too, must be the same id.
    pub id: Option<String>,
    /// Same as `id` (the seed's spelling).
    #[serde(rename = "task-id")]
    pub task_id: Option<String>,
    /// Queue (1-64 of letters, digits, `-`, `_`); maps to topic `yadtq.tasks.<queue>`. Default `default`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub queue: Option<String>,
    /// Retries after the first attempt (claims allowed = max_retries + 1). Retried on
    /// retryable errors only (panics, timeouts, HTTP 5xx/429, a handler's retryable error).
    /// At most `YADTQ_MAX_RETRIES_LIMIT` (default 100).
    #[schema(minimum = 0, maximum = 100)]
    #[serde(default, deserialize_with = "integer")]
    pub max_retries: Option<i32>,
    /// Seconds: upper bound of the first retry delay (doubling per attempt, full jitter);
    /// at most `YADTQ_MAX_TIMEOUT` (default 86400).
    #[schema(minimum = 0, maximum = 86400)]
    pub retry_backoff_base: Option<f64>,
    /// Seconds: longest retry delay; at least `retry_backoff_base`, at most `YADTQ_MAX_TIMEOUT` (default 86400).
    #[schema(minimum = 0, maximum = 86400)]
    pub retry_backoff_cap: Option<f64>,
    /// Per-attempt timeout in seconds; the handler is aborted and the attempt fails with kind `timeout`.
    /// At most `YADTQ_MAX_TIMEOUT` (default 86400).
    #[schema(exclusive_minimum = 0, maximum = 86400)]
    pub timeout: Option<f64>,
    /// Run no sooner than this many seconds from now (the task waits `scheduled`); at most
    /// `YADTQ_MAX_SCHEDULE_AHEAD` (default 2592000, 30 days).
    #[schema(minimum = 0, maximum = 2592000)]
    pub countdown: Option<f64>,
    /// Run no sooner than this time (RFC 3339), at most `YADTQ_MAX_SCHEDULE_AHEAD` (default 30 days)
    /// ahead; exclusive with `countdown`.
    pub eta: Option<DateTime<Utc>>,
    /// At most one live task of this kind (docs/unique.md): a repeat while an
    /// earlier task holds the key answers 200 with that task and the header
    /// `Yadtq-Unique: existing`. Unlike `id` (this exact request, forever),
    /// the key frees once its task has left the holding statuses. When `id`
    /// and `unique` match different existing tasks, the unique match wins.
    pub unique: Option<UniqueRequest>,
    /// Limits the task takes by name (docs/limits.md), besides every limit
    /// whose `tasks` list names its task; at most `YADTQ_MAX_LIMITS_PER_TASK`
    /// (default 8), no name twice. A task whose limits have no room is
    /// accepted `held` (202) and runs once they have. An unknown name answers
    /// 422 naming it. Not part of the idempotency comparison. Taken by
    /// `POST /tasks` and `POST /tasks/batch` only.
    #[schema(value_type = Option<Vec<LimitNameText>>, max_items = 8)]
    pub limits: Option<Vec<String>>,
    /// Not supported: always refused with 400 naming `priority` (use a separate
    /// queue for urgent work). Not in the schema, which allows no such field.
    #[schema(ignore)]
    pub priority: Option<serde::de::IgnoredAny>,
}

/// A limit's name in the OpenAPI document: 1-64 of letters, digits, `-`, `_`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
pub struct LimitNameText(String);

/// An optional integer, also when written with a fraction of zero (`4.0`):
/// JSON Schema counts that as an integer, and so do clients that only have
/// floating-point numbers.
pub(crate) fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    let whole = n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e18).map(|f| f as i64));
    whole
        .and_then(|i| i32::try_from(i).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("invalid value: {n}, expected an integer (32 bits)")))
}

/// Validates a submission body; `idempotency_key` is the `Idempotency-Key` header.
///
/// Errors (all 400 unless noted), each naming its field: body deeper than the
/// limit (`body`), not JSON (`body`), unknown or mistyped field, missing or
/// invalid `task` (422 when a catalogue is configured and lacks it), `args` not
/// an array, `kwargs` not an object, invalid or conflicting ids, invalid queue
/// (422 when valid but not among the declared queues),
/// `max_retries`, `timeout`, backoff, `countdown` or `eta` out of range, `priority`,
/// an invalid `unique` (`unique.key`, `unique.for_seconds`, `unique.while`).
#[cfg(test)]
pub fn validate(body: &[u8], idempotency_key: Option<&str>, limits: &Limits) -> Result<NewTask, ApiError> {
    check_json(body, limits)?;
    validate_item(body, idempotency_key, limits)
}

/// The checks that apply to a whole body: nesting depth, then a full parse,
/// which rejects invalid text (lone surrogates included) that a raw capture would keep.
pub fn check_json(body: &[u8], limits: &Limits) -> Result<(), ApiError> {
    let depth = validate::json_depth(body);
    if depth > limits.max_json_depth {
        return Err(ApiError::bad_request(
            "body",
            format!("JSON nesting depth {depth} exceeds the limit of {}", limits.max_json_depth),
        ));
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request("body", format!("body is not valid JSON: {e}")))
}

/// Deserialises `body` as `T`, naming the offending field on error.
pub fn parse<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, ApiError> {
    // serde's derived structs also accept an array of the fields in order
    // (`["multiply", [4, 5]]`, or a 400 naming `[0]`); the API takes objects.
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(ApiError::bad_request("body", "the body must be a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let detail = e.inner().to_string();
        let path = e.path().to_string();
        let unknown = detail.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next());
        // The path of an unknown field ends with the field itself, which is
        // at fault rather than the object holding it. A field named "" is
        // named as the body.
        let field = match (path.as_str(), unknown) {
            (".", Some(name)) if !name.is_empty() => name.to_string(),
            (".", _) | ("", _) => "body".to_string(),
            _ => path,
        };
        ApiError::bad_request(&field, detail)
    })
}

/// Validates one task whose JSON is already known to be well formed.
pub fn validate_item(body: &[u8], idempotency_key: Option<&str>, limits: &Limits) -> Result<NewTask, ApiError> {
    validate_item_or(body, idempotency_key, None, limits)
}

/// [`validate`] with the task's `limits` (checked names, in request order;
/// empty when none): `POST /tasks`.
pub fn validate_limited(
    body: &[u8],
    idempotency_key: Option<&str>,
    limits: &Limits,
) -> Result<(NewTask, Vec<LimitName>), ApiError> {
    check_json(body, limits)?;
    validate_item_limited(body, idempotency_key, None, limits)
}

/// [`validate_item_or`] with the task's `limits`: 400 naming `limits` for
/// more than `YADTQ_MAX_LIMITS_PER_TASK`, `limits[j]` for an invalid or
/// repeated name. `POST /tasks` and each item of `POST /tasks/batch`.
pub fn validate_item_limited(
    body: &[u8],
    idempotency_key: Option<&str>,
    default_id: Option<TaskId>,
    limits: &Limits,
) -> Result<(NewTask, Vec<LimitName>), ApiError> {
    let (task, names) = validate_parts(body, idempotency_key, default_id, limits)?;
    let names = names.unwrap_or_default();
    if names.len() > limits.max_limits_per_task {
        return Err(ApiError::bad_request(
            "limits",
            format!("{} limits exceed the limit of {} per task", names.len(), limits.max_limits_per_task),
        ));
    }
    let mut out: Vec<LimitName> = Vec::with_capacity(names.len());
    for (j, name) in names.into_iter().enumerate() {
        let field = format!("limits[{j}]");
        let name = LimitName::parse(name).map_err(|e| ApiError::bad_request(&field, format!("limit name {e}")))?;
        if let Some(k) = out.iter().position(|n| *n == name) {
            return Err(ApiError::bad_request(&field, format!("limit '{name}' is named twice (limits[{k}])")));
        }
        out.push(name);
    }
    Ok((task, out))
}

/// [`validate_item`], with `default_id` (a batch's `<Idempotency-Key>.<index>`,
/// a workflow node's `wf:<workflow>:<ref>`) as the id of a task that names
/// none, instead of a fresh UUID. The caller made it, so it is not checked
/// against the reserved prefixes (the batch checks its key where it reads it).
pub fn validate_item_or(
    body: &[u8],
    idempotency_key: Option<&str>,
    default_id: Option<TaskId>,
    limits: &Limits,
) -> Result<NewTask, ApiError> {
    let (task, names) = validate_parts(body, idempotency_key, default_id, limits)?;
    if names.is_some() {
        return Err(ApiError::bad_request(
            "limits",
            "limits are taken by POST /tasks and POST /tasks/batch only (a limit's `tasks` list applies everywhere)",
        ));
    }
    Ok(task)
}

/// The checks of [`validate_item_or`]; the `limits` as sent, unchecked.
fn validate_parts(
    body: &[u8],
    idempotency_key: Option<&str>,
    default_id: Option<TaskId>,
    limits: &Limits,
) -> Result<(NewTask, Option<Vec<String>>), ApiError> {
    let req: SubmitRequest = parse(body)?;
    if req.priority.is_some() {
        return Err(ApiError::bad_request(
            "priority",
            "priority is not supported: yadtq runs a queue's tasks in submission order per partition; \
             send urgent tasks to their own queue and give it workers (or a higher weight)",
        ));
    }
    let name = req.task.ok_or_else(|| ApiError::bad_request("task", "task is required: the handler name"))?;
    let name = TaskName::parse(name, limits.max_task_name_len)
        .map_err(|e| ApiError::bad_request("task", format!("task {e}")))?;
    let catalogue = &limits.task_catalogue;
    if !catalogue.is_empty() && !catalogue.iter().any(|c| c == name.as_ref()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("no handler serves task '{name}'; known tasks: {}", catalogue.join(", ")),
            Some("task"),
        ));
    }
    let args = json_of_kind(req.args, '[', "args", "a JSON array", "[]")?;
    let kwargs = json_of_kind(req.kwargs, '{', "kwargs", "a JSON object", "{}")?;

    let mut ids = [("id", req.id), ("task-id", req.task_id), ("Idempotency-Key", idempotency_key.map(str::to_string))]
        .into_iter()
        .filter_map(|(f, v)| v.map(|v| (f, v)));
    let chosen = match ids.next() {
        Some((field, id)) => {
            if let Some((other, _)) = ids.find(|(_, v)| *v != id) {
                return Err(ApiError::bad_request(other, format!("{other} differs from {field}; give one id")));
            }
            let id = TaskId::parse(id).map_err(|e| ApiError::bad_request(field, format!("{field} {e}")))?;
            reserved(&id, field)?;
            Some(id)
        }
        None => None,
    };
    let queue = req.queue.unwrap_or_else(|| DEFAULT_QUEUE.to_string());
    let queue = QueueName::parse(queue).map_err(|e| ApiError::bad_request("queue", format!("queue {e}")))?;
    if !limits.queues.iter().any(|q| q == queue.as_ref()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("queue '{queue}' is not declared; known queues: {}", limits.queues.join(", ")),
            Some("queue"),
        ));
    }

    let max_retries = req.max_retries.unwrap_or(limits.default_max_retries);
    if !(0..=limits.max_retries_limit).contains(&max_retries) {
        return Err(ApiError::bad_request(
            "max_retries",
            format!("max_retries must be between 0 and {}", limits.max_retries_limit),
        ));
    }
    let (max_timeout, max_schedule_ahead) = (limits.max_timeout.as_secs_f64(), limits.max_schedule_ahead.as_secs_f64());
    let timeout_seconds = req.timeout.unwrap_or(limits.default_timeout.as_secs_f64());
    if !(timeout_seconds > 0.0 && timeout_seconds <= max_timeout) {
        return Err(ApiError::bad_request(
            "timeout",
            format!("timeout must be more than 0 and at most {} seconds", max_timeout),
        ));
    }
    for (field, v) in [("retry_backoff_base", req.retry_backoff_base), ("retry_backoff_cap", req.retry_backoff_cap)] {
        if v.is_some_and(|v| !(0.0..=max_timeout).contains(&v)) {
            return Err(ApiError::bad_request(field, format!("{field} must be 0 to {} seconds", max_timeout)));
        }
    }
    if let (Some(b), Some(c)) = (req.retry_backoff_base, req.retry_backoff_cap) {
        if c < b {
            return Err(ApiError::bad_request(
                "retry_backoff_cap",
                "retry_backoff_cap must be at least retry_backoff_base",
            ));
        }
    }
    let now = Utc::now();
    let run_at = match (req.countdown, req.eta) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("eta", "give countdown or eta, not both")),
        (Some(c), None) => {
            if !(c.is_finite() && (0.0..=max_schedule_ahead).contains(&c)) {
                return Err(ApiError::bad_request(
                    "countdown",
                    format!("countdown must be 0 to {} seconds", max_schedule_ahead),
                ));
            }
            Some(now + chrono::Duration::milliseconds((c * 1000.0) as i64))
        }
        (None, Some(eta)) => {
            if (eta - now).num_seconds() as f64 > max_schedule_ahead {
                return Err(ApiError::bad_request(
                    "eta",
                    format!("eta must be at most {} seconds ahead", max_schedule_ahead),
                ));
            }
            Some(eta)
        }
        (None, None) => None,
    }
    // A time already past runs at once.
    .filter(|t| *t > now);

    let unique =
        req.unique.map(|u| unique::validate(u, name.as_ref(), &args, &kwargs, queue.as_ref(), limits)).transpose()?;

    let request_hash = hash(&[&name, &args, &kwargs, &queue]);
    let id = chosen
        .or(default_id)
        .unwrap_or_else(|| TaskId::parse(uuid::Uuid::new_v4().to_string()).expect("a UUID keeps the task id rule"));
    let task = NewTask {
        id,
        // The caller's tenant (and so the stored key) is set by `auth::Caller::adopt`.
        tenant: Tenant::default_tenant(),
        name,
        args,
        kwargs,
        queue,
        max_retries,
        timeout_seconds,
        run_at,
        retry_backoff: Backoff { base_seconds: req.retry_backoff_base, cap_seconds: req.retry_backoff_cap },
        request_hash,
        // Set by the route from the request's headers.
        trace: None,
        unique,
    };
    Ok((task, req.limits))
}

/// 413 unless `task`'s Kafka record fits `limit`: the key (the id) plus the
/// widest envelope any of its attempts would produce
/// ([`Envelope::max_encoded_len`]) within [`RecordLimit::max_record_bytes`].
/// So a task accepted with 202 can always be sent. `field` names the task in
/// the problem document (`body`, or `tasks[3]` in a batch).
pub fn check_record_size(task: &NewTask, limit: &RecordLimit, field: &str) -> Result<(), ApiError> {
    let key = task.key();
    let envelope = Envelope::max_encoded_len(&key, &task.name, &task.args, &task.kwargs, &task.queue);
    let record = key.len() + envelope;
    let max = limit.max_record_bytes();
    if record <= max {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the task's Kafka record would be {record} bytes; queue '{}' takes records of at most {max} bytes: {}; \
             make args and kwargs smaller (pass large data by reference)",
            task.queue,
            limit.explain()
        ),
        Some(field),
    ))
}

/// 400 naming `field` for an id under a prefix only yadtq assigns
/// (`sched:` for schedules' ticks, `wf:` for workflows), so no client can
/// take a future tick's id or a workflow node's.
pub fn reserved(id: &str, field: &str) -> Result<(), ApiError> {
    match yadtq_core::schedule::reserved_prefix(id) {
        Some(prefix) => Err(ApiError::bad_request(
            field,
            format!(
                "{field} must not start with '{prefix}': ids under that prefix are yadtq's own (schedules, workflows)"
            ),
        )),
        None => Ok(()),
    }
}

/// Checks that a raw JSON value starts with `open` (`[` or `{`) and returns its text.
fn json_of_kind(
    v: Option<Box<RawValue>>,
    open: char,
    field: &str,
    what: &str,
    default: &str,
) -> Result<String, ApiError> {
    match v {
        None => Ok(default.to_string()),
        Some(raw) if raw.get().trim_start().starts_with(open) => Ok(raw.get().to_string()),
        Some(raw) => Err(ApiError::bad_request(field, format!("{field} must be {what}, got {}", raw.get()))),
    }
}

/// SHA-256 (hex) of `parts`, each followed by a NUL byte: a request's hash
/// for idempotent submission.
pub fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod fuzz;
pub mod unique;

pub use unique::UniqueRequest;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1 << 20,
            max_json_depth: 8,
            max_task_name_len: 16,
            max_retries_limit: 10,
            default_max_retries: 3,
            default_timeout: Duration::from_secs(300),
            max_timeout: Duration::from_secs(3600),
            max_schedule_ahead: Duration::from_secs(86_400),
            max_batch: 10,
            max_batch_body_bytes: 1 << 20,
            task_catalogue: vec![],
            max_unique_key_len: 16,
            max_limits_per_task: 8,
            max_limit_tasks: 100,
            queues: vec!["default".into(), "emails".into()],
        }
    }

    fn field_of(body: &str) -> String {
        let e = validate(body.as_bytes(), None, &limits()).unwrap_err();
        assert_eq!(e.status().as_u16(), 400, "{body}");
        serde_json::to_value(e.into_problem()).unwrap()["field"].as_str().unwrap().to_string()
    }

    #[test]
    fn limits_are_checked_and_capped() {
        let field = |body: &str| {
            let e = validate_limited(body.as_bytes(), None, &limits()).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{body}");
            serde_json::to_value(e.into_problem()).unwrap()["field"].as_str().unwrap().to_string()
        };
        let (_, names) = validate_limited(br#"{"task": "t", "limits": ["a", "b-2"]}"#, None, &limits()).unwrap();
        assert_eq!(names, ["a", "b-2"]);
        let nine: Vec<String> = (0..9).map(|i| format!("l{i}")).collect();
        assert_eq!(field(&serde_json::json!({"task": "t", "limits": nine}).to_string()), "limits");
        assert_eq!(field(r#"{"task": "t", "limits": ["a", "a"]}"#), "limits[1]");
        assert_eq!(field(r#"{"task": "t", "limits": ["ok", "not ok"]}"#), "limits[1]");
        assert_eq!(field(r#"{"task": "t", "limits": "a"}"#), "limits");
        // Not part of the idempotency comparison.
        let (a, _) = validate_limited(br#"{"task": "t", "id": "x", "limits": ["a"]}"#, None, &limits()).unwrap();
        let (b, _) = validate_limited(br#"{"task": "t", "id": "x"}"#, None, &limits()).unwrap();
        assert_eq!(a.request_hash, b.request_hash);
        // Where no limits are taken (a schedule's template, a workflow node): 400.
        let e = validate_item(br#"{"task": "t", "limits": []}"#, None, &limits()).unwrap_err();
        assert_eq!(serde_json::to_value(e.into_problem()).unwrap()["field"], "limits");
    }

    #[test]
    fn accepts_the_seed_form_and_keeps_text() {
        let t = validate(br#"{"task-id": "12345abc", "task": "multiply", "args": [4, 5]}"#, None, &limits()).unwrap();
        assert_eq!((t.id.as_str(), t.args.as_str(), t.kwargs.as_str()), ("12345abc", "[4, 5]", "{}"));
        let t =
            validate(br#"{"task": "echo", "args": [18446744073709551616, "\u0000"], "countdown": 5}"#, None, &limits())
                .unwrap();
        assert!(t.run_at.is_some());
        assert_eq!(t.args, r#"[18446744073709551616, "\u0000"]"#);
        assert_eq!(t.id.len(), 36, "server-generated UUID");
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(field_of(r#"{"args": []}"#), "task");
        assert_eq!(field_of(r#"{"task": "9x"}"#), "task");
        assert_eq!(field_of(r#"{"task": "abcdefghijklmnopq"}"#), "task");
        assert_eq!(field_of(r#"{"task": "a", "args": {}}"#), "args");
        assert_eq!(field_of(r#"{"task": "a", "kwargs": []}"#), "kwargs");
        assert_eq!(field_of(r#"{"task": "a", "id": "bad id"}"#), "id");
        assert_eq!(field_of(r#"{"task": "a", "id": "x", "task-id": "y"}"#), "task-id");
        assert_eq!(field_of(r#"{"task": "a", "max_retries": 11}"#), "max_retries");
        assert_eq!(field_of(r#"{"task": "a", "timeout": 0}"#), "timeout");
        assert_eq!(field_of(r#"{"task": 5}"#), "task");
        assert_eq!(field_of(r#"{"task": "a", "priority": 1}"#), "priority");
        assert_eq!(field_of(r#"{"task": "a", "queue": "a.b"}"#), "queue");
        assert_eq!(field_of(r#"{"task": "a", "countdown": -1}"#), "countdown");
        assert_eq!(field_of(r#"{"task": "a", "countdown": 1, "eta": "2030-01-01T00:00:00Z"}"#), "eta");
        assert_eq!(field_of(r#"{"task": "a", "eta": "tomorrow"}"#), "eta");
        assert_eq!(field_of(r#"{"task": "a", "retry_backoff_base": 5, "retry_backoff_cap": 1}"#), "retry_backoff_cap");
        assert_eq!(field_of(r#"[[[[[[[[[1]]]]]]]]]"#), "body");
        assert_eq!(field_of(r#"{"task": "a", "args": ["\ud800"]}"#), "body");
        assert_eq!(field_of("not json"), "body");
        assert_eq!(field_of(r#"["multiply", [4, 5]]"#), "body");
        assert_eq!(field_of(r#""multiply""#), "body");
        assert_eq!(field_of(r#"{"task": "a", "bogus": 1}"#), "bogus");
        assert_eq!(field_of(r#"{"task": "a", ".x": 1}"#), ".x");
        assert_eq!(field_of(r#"{"task": "a", "": 1}"#), "body");
    }

    #[test]
    fn unique_is_validated_field_by_field() {
        assert_eq!(field_of(r#"{"task": "a", "unique": {"for_seconds": 0}}"#), "unique.for_seconds");
        assert_eq!(field_of(r#"{"task": "a", "unique": {"for_seconds": 1.5}}"#), "unique.for_seconds");
        assert_eq!(field_of(r#"{"task": "a", "unique": {"while": ["success", "done"]}}"#), "unique.while");
        assert_eq!(field_of(r#"{"task": "a", "unique": {"key": "12345678901234567"}}"#), "unique.key");
        assert_eq!(field_of(r#"{"task": "a", "unique": {"key": ""}}"#), "unique.key");
        assert_eq!(field_of(r#"{"task": "a", "unique": {"key": "a\u0000"}}"#), "unique.key");
        assert_eq!(field_of(r#"{"task": "a", "unique": {"keys": "x"}}"#), "unique.keys");
        assert_eq!(field_of(r#"{"task": "a", "unique": "x"}"#), "unique");
        let u = |body: &str| validate(body.as_bytes(), None, &limits()).unwrap().unique;
        assert_eq!(u(r#"{"task": "a"}"#), None);
        let full =
            u(r#"{"task": "a", "unique": {"key": "1234567890123456", "for_seconds": 60, "while": ["success"]}}"#)
                .unwrap();
        assert_eq!((full.key.as_str(), full.for_seconds), ("1234567890123456", Some(60)));
        assert_eq!(full.also_while, [yadtq_core::model::TaskStatus::Success]);
        // The default key is the task's, whatever the spacing and key order.
        let a = u(r#"{"task": "a", "args": [1], "kwargs": {"x": 1, "y": 2}, "unique": {}}"#).unwrap();
        let b = u(r#"{"task":"a","args":[1],"kwargs":{"y":2,"x":1},"unique":{}}"#).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, u(r#"{"task": "a", "args": [2], "kwargs": {"x": 1, "y": 2}, "unique": {}}"#).unwrap());
    }

    /// schemathesis: `"max_retries": 4.0` is an integer to JSON Schema, and was a 400.
    #[test]
    fn max_retries_written_with_a_zero_fraction_is_an_integer() {
        for (text, want) in [("4", 4), ("4.0", 4), ("4e0", 4), ("0.0", 0)] {
            let body = format!(r#"{{"task": "echo", "max_retries": {text}}}"#);
            assert_eq!(validate(body.as_bytes(), None, &limits()).unwrap().max_retries, want, "{text}");
        }
        for text in ["4.5", "\"4\"", "1e10", "true"] {
            assert_eq!(field_of(&format!(r#"{{"task": "echo", "max_retries": {text}}}"#)), "max_retries", "{text}");
        }
    }

    #[test]
    fn a_task_whose_record_exceeds_the_limit_is_413() {
        let task = |n: usize| {
            validate(
                format!(r#"{{"task": "echo", "id": "t1", "args": ["{}"]}}"#, "x".repeat(n)).as_bytes(),
                None,
                &limits(),
            )
            .unwrap()
        };
        let limit = RecordLimit { producer_max: 1000, topic: "yadtq.tasks".into(), topic_max: Some(2000) };
        let max = limit.max_record_bytes();
        // The record grows by one byte per argument byte: find the largest that fits.
        let base = "t1".len()
            + Envelope::max_encoded_len(
                &yadtq_core::names::TaskKey::from_stored("t1".into()),
                "echo",
                r#"[""]"#,
                "{}",
                "default",
            );
        assert!(check_record_size(&task(max - base), &limit, "body").is_ok());
        let e = check_record_size(&task(max - base + 1), &limit, "tasks[2]").unwrap_err();
        assert_eq!(e.status().as_u16(), 413);
        let p = e.into_problem();
        assert_eq!(p.field.as_deref(), Some("tasks[2]"));
        assert!(p.detail.contains(&format!("would be {} bytes", max + 1)), "{}", p.detail);
        assert!(p.detail.contains(&format!("at most {max} bytes")), "{}", p.detail);
        assert!(p.detail.contains("message.max.bytes 1000, topic yadtq.tasks max.message.bytes 2000)"), "{}", p.detail);
    }

    #[test]
    fn only_declared_queues_are_accepted() {
        assert_eq!(validate(br#"{"task": "a", "queue": "emails"}"#, None, &limits()).unwrap().queue, "emails");
        assert_eq!(validate(br#"{"task": "a"}"#, None, &limits()).unwrap().queue, "default");
        let e = validate(br#"{"task": "a", "queue": "emials"}"#, None, &limits()).unwrap_err();
        assert_eq!(e.status().as_u16(), 422);
        let p = e.into_problem();
        assert_eq!(
            (p.field.as_deref(), p.detail.as_str()),
            (Some("queue"), "queue 'emials' is not declared; known queues: default, emails")
        );
    }
}
