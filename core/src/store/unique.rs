//! Unique tasks (docs/unique.md): at most one task per unique key whose
//! status holds the key, enforced by PostgreSQL (migration 0017's partial
//! unique index `tasks_unique_key`), never by a read before the insert.
//!
//! A submission's [`Unique`] is stored on its row as `unique_key` (the JSON
//! array `[tenant, task name, key]`, then `/<for_seconds>/<bucket>` when it
//! has a period; the bucket is `floor(epoch / for_seconds)` of the database
//! clock, so every gateway buckets alike) and `unique_states` (the terminal
//! statuses its `while` added). Every status other than `success`, `failed`
//! and `cancelled` holds the key, statuses of a later release included.
//!
//! The insert ([`super::tasks::insert_batch`], [`super::tasks::insert_each`])
//! is `ON CONFLICT DO NOTHING`: a row that collides inserts nothing (a
//! concurrent one waits for the other's commit), and only then is the holder
//! read ([`holder_in`]). A holder that has left its holding statuses in
//! between is no holder: the insert is tried again. The transitions that
//! can collide are the moves from a terminal status back into a holding one
//! (the manual retry): [`is_violation`] tells them apart.

use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use super::limits::plan::Plan;
use super::tasks::{Inserted, NewTask};
use super::StoreError;
use crate::model::TaskStatus;
use crate::names::TaskKey;

/// The name of the partial unique index of migration 0017.
pub const INDEX: &str = "tasks_unique_key";

/// A submission's `unique` option, validated by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unique {
    /// The client's key, or [`default_key`] of the task.
    pub key: String,
    /// Length of the time bucket, seconds (at least 1); `None`: no bucket.
    pub for_seconds: Option<i64>,
    /// Statuses that hold the key besides the non-terminal ones (the
    /// submission's `while`; non-terminal names in it change nothing).
    pub also_while: Vec<TaskStatus>,
}

impl Unique {
    /// The stored key without its bucket: the JSON array
    /// `[tenant, task name, key]` (unambiguous whatever the parts hold).
    pub fn base(&self, tenant: &str, name: &str) -> String {
        serde_json::to_string(&[tenant, name, &self.key]).expect("strings serialise")
    }

    /// `unique_states` as sent to the insert: the terminal statuses of
    /// `also_while`, comma separated (status names hold no comma), or `None`.
    pub fn states(&self) -> Option<String> {
        let terminal: Vec<&str> = self.also_while.iter().filter(|s| s.is_terminal()).map(TaskStatus::as_str).collect();
        (!terminal.is_empty()).then(|| terminal.join(","))
    }
}

/// The default key of a task: the SHA-256 (hex) of the canonical JSON of
/// `{"task", "args", "kwargs", "queue"}`, object keys sorted at every
/// level and no whitespace, so the same task written with other spacing or
/// key order has the same key. Numbers are kept as written (`1` and `1.0`
/// differ). `args` and `kwargs` are JSON text already validated.
pub fn default_key(name: &str, args: &str, kwargs: &str, queue: &str) -> String {
    let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap_or(serde_json::Value::Null);
    let task = serde_json::json!({
        "args": canonical(parse(args)),
        "kwargs": canonical(parse(kwargs)),
        "queue": queue,
        "task": name,
    });
    hex::encode(Sha256::digest(serde_json::to_string(&canonical(task)).expect("JSON serialises")))
}

/// `v` with the keys of every object sorted (serde_json keeps insertion
/// order in this workspace).
pub(crate) fn canonical(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        other => other,
    }
}

/// Inserts `tasks` ([`super::tasks::insert_rows`], one statement) and resolves
/// each that inserted nothing ([`resolve`]): so is a later task of `tasks`
/// with the unique key of an earlier one, which is not sent. Only a task
/// whose key's holder left its holding statuses meanwhile is sent again,
/// in a next round (a plain submission takes one statement, one round).
///
/// `plans[i]` is task `i`'s limit plan, if any
/// ([`super::tasks::insert_rows_planned`]); missing entries are none.
pub(super) async fn insert_in(
    conn: &mut PgConnection,
    tasks: &[NewTask],
    plans: &[Option<Plan>],
) -> Result<Vec<Inserted>, StoreError> {
    let mut out: Vec<Option<Inserted>> = (0..tasks.len()).map(|_| None).collect();
    let mut pending = first_of_each_key(tasks, 0..tasks.len());
    for _round in 0..MAX_ROUNDS {
        let mut sent = vec![false; tasks.len()];
        pending.iter().for_each(|&i| sent[i] = true);
        let mut created = if pending.len() == tasks.len() {
            super::tasks::insert_rows_planned(&mut *conn, tasks, &[], plans).await?
        } else {
            let some: Vec<NewTask> = pending.iter().map(|&i| tasks[i].clone()).collect();
            let their: Vec<Option<Plan>> = pending.iter().map(|&i| plans.get(i).cloned().flatten()).collect();
            super::tasks::insert_rows_planned(&mut *conn, &some, &[], &their).await?
        };
        let mut again = Vec::new();
        for (i, t) in tasks.iter().enumerate() {
            if out[i].is_some() {
                continue;
            }
            let row = if sent[i] { created.remove(&t.key()) } else { None };
            match row {
                Some(row) => out[i] = Some(Inserted::Created(row)),
                None => match resolve(&mut *conn, t).await? {
                    Some(found) => out[i] = Some(found),
                    None => again.push(i),
                },
            }
        }
        if again.is_empty() {
            return Ok(out.into_iter().map(|o| o.expect("every task resolved")).collect());
        }
        pending = first_of_each_key(tasks, again);
    }
    Err(busy())
}

/// What a task that was not inserted found: the holder of its unique key
/// (which wins), else the task of its id; `None` when neither exists any
/// more (the holder left its holding statuses since): insert it again.
async fn resolve(conn: &mut PgConnection, t: &NewTask) -> Result<Option<Inserted>, StoreError> {
    if let Some(u) = &t.unique {
        if let Some(id) = holder_in(&mut *conn, &u.base(&t.tenant, &t.name), u.for_seconds).await? {
            if let Some(holder) = super::tasks::get_in(&mut *conn, &TaskKey::from_stored(id)).await? {
                return Ok(Some(Inserted::Unique(holder)));
            }
        }
    }
    Ok(match super::tasks::get_in(&mut *conn, &t.key()).await? {
        Some(existing) if existing.request_hash == t.request_hash => Some(Inserted::Existing(existing)),
        // A different earlier task with this id.
        Some(_) => Some(Inserted::Conflict(t.key())),
        None if t.unique.is_some() => None,
        // Same id twice in one statement with different bodies.
        None => Some(Inserted::Conflict(t.key())),
    })
}

/// Rounds of insert-then-resolve before [`busy`]: a round repeats only for
/// a task whose key's holder left its holding statuses while it was read.
const MAX_ROUNDS: usize = 8;

/// The error of a task whose key changed holder [`MAX_ROUNDS`] times while
/// it was inserted: transient (a 503 with Retry-After), the next try settles.
fn busy() -> StoreError {
    StoreError::Unavailable(std::sync::Arc::new(sqlx::Error::Protocol(
        "the task's unique key changed holder too often while it was inserted".into(),
    )))
}

/// The indexes among `among` (of `tasks`) to send to the insert: every task
/// without a key, and the first task of each stored key (one statement has
/// one clock, so one bucket). A later task with the key of an earlier one is
/// not sent: it finds the earlier one as its holder.
fn first_of_each_key(tasks: &[NewTask], among: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    among
        .into_iter()
        .filter(|&i| {
            let t = &tasks[i];
            t.unique.as_ref().is_none_or(|u| seen.insert((u.base(&t.tenant, &t.name), u.for_seconds)))
        })
        .collect()
}

/// True when `e` is a violation of the unique key's index: a move into a
/// holding status while another task holds the same key.
pub fn is_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.constraint() == Some(INDEX))
}

/// The id of the task that holds the stored key of (`base`, `for_seconds`)
/// now (bucketed by this statement's clock), if one does.
async fn holder_in(
    conn: &mut PgConnection,
    base: &str,
    for_seconds: Option<i64>,
) -> Result<Option<String>, StoreError> {
    let id = sqlx::query_scalar!(
        "SELECT id FROM tasks
         WHERE unique_key = yadtq_unique_key($1, $2)
           AND (status <> ALL (ARRAY['success', 'failed', 'cancelled']) OR status = ANY (unique_states))",
        base,
        for_seconds
    )
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_key_ignores_spacing_and_key_order_only() {
        let k = default_key("report", r#"[1, {"b": 2, "a": [3]}]"#, r#"{"y": 1, "x": "z"}"#, "default");
        assert_eq!(k, default_key("report", r#"[1,{"a":[3],"b":2}]"#, r#"{"x":"z","y":1}"#, "default"));
        assert_eq!(k.len(), 64);
        for other in [
            default_key("report", r#"[1, {"b": 2, "a": [3]}]"#, r#"{"y": 1, "x": "z"}"#, "emails"),
            default_key("other", r#"[1, {"b": 2, "a": [3]}]"#, r#"{"y": 1, "x": "z"}"#, "default"),
            default_key("report", r#"[1.0, {"b": 2, "a": [3]}]"#, r#"{"y": 1, "x": "z"}"#, "default"),
            default_key("report", r#"[{"b": 2, "a": [3]}, 1]"#, r#"{"y": 1, "x": "z"}"#, "default"),
        ] {
            assert_ne!(k, other);
        }
    }

    #[test]
    fn the_base_cannot_be_forged_by_separators_in_the_parts() {
        let u = |key: &str| Unique { key: key.into(), for_seconds: None, also_while: vec![] };
        assert_ne!(u("b\",\"c").base("t", "a"), u("c").base("t", "a\",\"b"));
        assert_eq!(u("k").base("t", "a"), r#"["t","a","k"]"#);
    }

    #[test]
    fn only_terminal_statuses_are_stored_as_extra_states() {
        let u = Unique {
            key: "k".into(),
            for_seconds: None,
            also_while: vec![TaskStatus::Queued, TaskStatus::Success, TaskStatus::Failed],
        };
        assert_eq!(u.states().as_deref(), Some("success,failed"));
        assert_eq!(Unique { also_while: vec![TaskStatus::Queued], ..u }.states(), None);
    }
}
