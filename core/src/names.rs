//! Validated names: a client's task id, a handler (task) name and a queue
//! name. Each type holds its rule once; a value of the type has passed it, so
//! code past the edge (HTTP, configuration, handler files) never re-checks.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// Longest client-chosen task id, in characters.
pub(crate) const MAX_TASK_ID_LEN: usize = 128;

/// Longest queue name, in characters.
pub(crate) const MAX_QUEUE_LEN: usize = 64;

/// A name that breaks its type's rule. Displays as `must be <rule>`, so a
/// caller prefixes the field: `format!("{field} {e}")`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be {rule}")]
pub struct InvalidName {
    /// The rule, in words (`1-64 characters of letters, digits, '-' and '_'`).
    pub rule: String,
}

/// A task id as clients see it (`id`, `task-id`, `Idempotency-Key`, the
/// `{id}` of `/tasks/{id}`): 1 to 128 ASCII letters, digits and `._:-`, and
/// neither `.` nor `..`, which clients normalise away as path segments, so
/// `/tasks/..` could never reach the task. The stored key adds the tenant
/// ([`crate::auth::task_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    /// The rule, for error messages.
    pub const RULE: &'static str = "1-128 characters of letters, digits and ._:-, other than . and ..";

    /// The rule as the regular expression of the OpenAPI document (every
    /// task id parameter and field; the gateway writes it there from here).
    pub const PATTERN: &'static str = "^(?!\\.\\.?$)[A-Za-z0-9._:-]{1,128}$";

    /// Checks `id` against [`TaskId::RULE`] without keeping it.
    pub fn check(id: &str) -> Result<(), InvalidName> {
        let ok =
            !id.is_empty() && id.len() <= MAX_TASK_ID_LEN && id.bytes().all(is_name_byte) && id != "." && id != "..";
        holds(ok, || Self::RULE.to_string())
    }

    /// Checks `id` against [`TaskId::RULE`].
    pub fn parse(id: impl Into<String>) -> Result<Self, InvalidName> {
        let id = id.into();
        Self::check(&id).map(|()| Self(id))
    }
}

/// A handler's name (`task` of a submission, a handlers file's keys): 1 to
/// `max_len` ASCII letters, digits and `._:-`, starting with a letter. The
/// length bound is the caller's (the gateway's `--max-task-name-len`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskName(String);

impl TaskName {
    /// Checks `name` against the rule with at most `max_len` characters.
    pub fn parse(name: impl Into<String>, max_len: usize) -> Result<Self, InvalidName> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= max_len
            && name.as_bytes()[0].is_ascii_alphabetic()
            && name.bytes().all(is_name_byte);
        holds(ok, || format!("1-{max_len} characters of letters, digits and ._:- starting with a letter"))
            .map(|()| Self(name))
    }
}

/// A queue's name, as operators declare it (`YADTQ_QUEUES`) and clients
/// name it (`queue`): 1 to 64 ASCII letters, digits, `-` and `_`. The queue
/// `q` maps to topic `yadtq.tasks.q`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(
    value_type = String,
    pattern = "^[A-Za-z0-9_-]{1,64}$",
    description = "A queue's name, as `YADTQ_QUEUES` declares it: 1-64 letters, digits, `-`, `_`."
)]
pub struct QueueName(String);

impl QueueName {
    /// The rule, for error messages.
    pub const RULE: &'static str = "1-64 characters of letters, digits, '-' and '_'";

    /// Checks `name` against [`QueueName::RULE`] without keeping it.
    pub fn check(name: &str) -> Result<(), InvalidName> {
        let ok = !name.is_empty()
            && name.len() <= MAX_QUEUE_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        holds(ok, || Self::RULE.to_string())
    }

    /// Checks `name` against [`QueueName::RULE`].
    pub fn parse(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        Self::check(&name).map(|()| Self(name))
    }
}

impl TryFrom<String> for QueueName {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Self, InvalidName> {
        Self::parse(s)
    }
}

impl From<QueueName> for String {
    fn from(q: QueueName) -> String {
        q.0
    }
}

/// A limit's name (`PUT /limits/{name}`, a submission's `limits`): 1 to 64
/// ASCII letters, digits, `-` and `_`, unique per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LimitName(String);

impl LimitName {
    /// The rule, for error messages.
    pub const RULE: &'static str = QueueName::RULE;

    /// Checks `name` against [`LimitName::RULE`].
    pub fn parse(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        QueueName::check(&name).map(|()| Self(name))
    }

    /// A name read back from the database, where only parsed names are written.
    pub(crate) fn from_stored(name: String) -> Self {
        Self(name)
    }
}

/// `as_str`, `Deref<Target = str>`, `AsRef<str>`, `Display` and comparison
/// with a `&str` for each name, so a checked name goes wherever a `&str` does.
macro_rules! str_like {
    ($($t:ty),*) => {$(
        impl $t {
            /// The name as a `&str`.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as a `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
str_like!(TaskId, TaskName, QueueName, LimitName, Tenant, TaskKey, ScheduleKey);

/// A tenant's name: 1 to 64 ASCII letters, digits, `-` or `_` (so it can
/// never contain the `/` of a [`TaskKey`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Tenant(String);

/// A tenant name that breaks [`Tenant::RULE`]; the one message for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant '{name}' must be {}", Tenant::RULE)]
pub struct InvalidTenant {
    /// The name as given.
    pub name: String,
}

impl Tenant {
    /// The rule, for error messages.
    pub const RULE: &'static str = "1-64 characters of letters, digits, '-' and '_'";

    /// True when `name` keeps [`Tenant::RULE`].
    pub(crate) fn is_valid(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// Checks `name` against [`Tenant::RULE`].
    pub fn parse(name: impl Into<String>) -> Result<Self, InvalidTenant> {
        let name = name.into();
        if Self::is_valid(&name) {
            Ok(Self(name))
        } else {
            Err(InvalidTenant { name })
        }
    }

    /// The tenant of tasks submitted before tenants existed
    /// ([`crate::auth::DEFAULT_TENANT`]).
    pub fn default_tenant() -> Self {
        Self(crate::auth::DEFAULT_TENANT.to_string())
    }

    /// A tenant name read back from the system's own storage (an API key's
    /// row), which was checked when it was written.
    pub fn from_stored(name: String) -> Self {
        Self(name)
    }
}

/// The stored key of a task (`tasks.id`, the Kafka record's key and the
/// envelope's `id`, NOTIFY payloads, attempt rows): the client's [`TaskId`]
/// for the default tenant (every id stored before tenants existed stays
/// valid), `<tenant>/<id>` otherwise. Client ids cannot contain `/`, so keys
/// of two tenants never collide. Built from a tenant and a client id only by
/// [`TaskKey::new`]; a client id is never a key by accident.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskKey(String);

impl TaskKey {
    /// The key of `tenant`'s task `id`.
    pub fn new(tenant: &Tenant, id: &TaskId) -> Self {
        if tenant.as_str() == crate::auth::DEFAULT_TENANT {
            Self(id.as_str().to_string())
        } else {
            Self(format!("{tenant}/{id}"))
        }
    }

    /// A key read back from the system's own records (a `tasks` row, a
    /// Kafka record's envelope, a NOTIFY payload), which [`TaskKey::new`] built.
    pub fn from_stored(key: String) -> Self {
        Self(key)
    }

    /// The tenant the key belongs to (the part before `/`, else the default tenant).
    pub fn tenant(&self) -> &str {
        self.0.split_once('/').map_or(crate::auth::DEFAULT_TENANT, |(t, _)| t)
    }

    /// The tenant's own id of this task (the part after `/`, else all of it).
    pub fn client_id(&self) -> &str {
        self.0.split_once('/').map_or(self.0.as_str(), |(_, id)| id)
    }

    /// The tenant's own id as a [`TaskId`] (it kept the rule when it was submitted).
    pub(crate) fn task_id(&self) -> TaskId {
        TaskId(self.client_id().to_string())
    }

    /// The id `tenant` knows this task by: the tenant's own id for one of
    /// its tasks, the whole key for another tenant's (what a `cluster` key
    /// of another tenant sees, e.g. replaying a dead letter). The default
    /// tenant's keys carry no prefix, so it sees every key whole.
    pub fn id_for(&self, tenant: &Tenant) -> TaskId {
        let own = match tenant.as_str() {
            crate::auth::DEFAULT_TENANT => None,
            t => self.0.strip_prefix(t).and_then(|rest| rest.strip_prefix('/')),
        };
        TaskId(own.unwrap_or(&self.0).to_string())
    }
}

/// The stored key of a schedule (`schedules.key`): made like a [`TaskKey`]
/// from its tenant and the client's schedule id (the task-id alphabet, at
/// most 100 characters, so its tasks' ids fit a [`TaskId`]), in a type of
/// its own so a schedule's key is never taken for a task's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ScheduleKey(String);

impl ScheduleKey {
    /// The key of `tenant`'s schedule `id`.
    pub fn new(tenant: &Tenant, id: &TaskId) -> Self {
        Self(TaskKey::new(tenant, id).0)
    }

    /// A key read back from the `schedules` table, which [`ScheduleKey::new`] built.
    pub fn from_stored(key: String) -> Self {
        Self(key)
    }

    /// The tenant's own id of this schedule.
    pub fn client_id(&self) -> &str {
        self.0.split_once('/').map_or(self.0.as_str(), |(_, id)| id)
    }

    /// The stored key of the task this schedule fires with id suffix
    /// `suffix`: `sched:<schedule id>:<suffix>` under the schedule's tenant.
    pub fn task_key(&self, suffix: &str) -> TaskKey {
        let prefix = crate::schedule::TASK_ID_PREFIX;
        TaskKey(match self.0.split_once('/') {
            Some((tenant, id)) => format!("{tenant}/{prefix}{id}:{suffix}"),
            None => format!("{prefix}{}:{suffix}", self.0),
        })
    }
}

/// Tests name stored keys as literals.
#[cfg(test)]
impl From<&str> for TaskKey {
    fn from(key: &str) -> Self {
        Self(key.to_string())
    }
}

/// `Ok` when a rule holds, else the refusal quoting it.
fn holds(ok: bool, rule: impl FnOnce() -> String) -> Result<(), InvalidName> {
    if ok {
        Ok(())
    } else {
        Err(InvalidName { rule: rule() })
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_key_shows_its_own_tenant_the_id_and_others_the_whole_key() {
        let (acme, default) = (Tenant::parse("acme").unwrap(), Tenant::default_tenant());
        let key = TaskKey::new(&acme, &TaskId::parse("x").unwrap());
        assert_eq!((key.as_str(), key.tenant(), key.client_id()), ("acme/x", "acme", "x"));
        assert_eq!(key.id_for(&acme), "x");
        assert_eq!(key.id_for(&default), "acme/x");
        assert_eq!(key.id_for(&Tenant::parse("beta").unwrap()), "acme/x");
        let plain = TaskKey::new(&default, &TaskId::parse("y").unwrap());
        assert_eq!((plain.as_str(), plain.tenant(), plain.id_for(&acme).as_str()), ("y", "default", "y"));
    }

    #[test]
    fn task_ids() {
        for ok in ["12345abc", "a.b_c:d-e", "...", "..a", ".a", &"x".repeat(128)] {
            assert_eq!(TaskId::parse(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in ["", "has space", "slash/", ".", "..", &"x".repeat(129)] {
            assert!(TaskId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(TaskId::parse("a b").unwrap_err().to_string(), format!("must be {}", TaskId::RULE));
    }

    #[test]
    fn task_names() {
        assert!(TaskName::parse("multiply", 64).is_ok());
        assert!(TaskName::parse("billing.send_invoice", 64).is_ok());
        for bad in ["", "1abc", "a b", &"a".repeat(65)] {
            assert!(TaskName::parse(bad, 64).is_err(), "{bad}");
        }
        assert_eq!(
            TaskName::parse("1abc", 64).unwrap_err().to_string(),
            "must be 1-64 characters of letters, digits and ._:- starting with a letter"
        );
    }

    #[test]
    fn queue_names() {
        assert!(QueueName::parse("emails-2_b").is_ok());
        for bad in ["", "a.b", "a b", &"q".repeat(65)] {
            assert!(QueueName::parse(bad).is_err(), "{bad}");
        }
        let q: QueueName = serde_json::from_str("\"emails\"").unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"emails\"");
        assert!(serde_json::from_str::<QueueName>("\"a.b\"").is_err(), "deserialising checks the rule");
    }
}
