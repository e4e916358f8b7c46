//! Submission's fast path (docs/limits.md "Cost"): a task's memberships are
//! worked out before its insert, from what this process read of its
//! tenant's limits, so the insert statement itself checks them under the
//! buckets' locks and inserts the task `queued`, holding its slots, when
//! every bucket has room ([`super::super::tasks::insert_rows_planned`]).
//!
//! What is read here is only a guess: the statement refuses a plan whose
//! buckets are gone, whose limits are not exactly the task's (its `tasks`
//! probe and the buckets' limit names), or whose tenant differs, and then
//! inserts the task `held` for [`super::settle`] (the slow path, exact as
//! always). So a stale guess costs time, never a slot.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sqlx::{PgConnection, PgPool};

use super::{bucket_ids, bucket_key, KeyPointer};
use crate::names::LimitName;
use crate::store::tasks::{Inserted, NewTask};
use crate::store::StoreError;

/// How long a read of which limits list a task name (or of a limit's key)
/// is used before it is read again: a `tasks` list changed meanwhile sends
/// the name's tasks down the slow path for at most this long.
const TTL: Duration = Duration::from_secs(1);

/// Bucket ids remembered per database at most (then forgotten at once).
const MAX_BUCKETS: usize = 100_000;

/// Task names whose `tasks` lists are remembered per database at most
/// (then forgotten at once): names are the submitters' to choose.
const MAX_NAMES: usize = 10_000;

/// A task's planned memberships, in the insert statement's text form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Bucket ids, ascending, comma-joined.
    pub buckets: String,
    /// The limit name of each of those buckets, sorted, comma-joined.
    pub limits: String,
    /// The limits whose `tasks` list names the task, sorted, comma-joined
    /// (`""`: none); the statement's probe must find exactly these.
    pub listed: String,
}

/// A limit as a plan needs it: its name and key pointer.
type Definition = (String, Option<String>);

/// What this process read of one database's limits.
#[derive(Default)]
struct Known {
    /// (tenant, task name) → the limits whose `tasks` list names it, and when read.
    listed: HashMap<(String, String), (Vec<Definition>, Instant)>,
    /// (tenant, limit) → its key pointer, and when read (existing limits only).
    keys: HashMap<(String, String), (Option<String>, Instant)>,
    /// (tenant, limit, bucket) → bucket id (checked by the statement).
    buckets: HashMap<(String, String, String), i64>,
}

/// Per database ([`database_of`]): ids differ between databases.
static KNOWN: LazyLock<Mutex<HashMap<String, Known>>> = LazyLock::new(Default::default);

/// Turns of this process's planned inserts, per database and bucket id ([`turn`]).
static TURNS: LazyLock<Mutex<HashMap<(String, i64), BucketTurn>>> = LazyLock::new(Default::default);

/// One bucket's turn: its holder, then its waiters.
type BucketTurn = Arc<tokio::sync::Mutex<()>>;

/// This process's turn at the buckets of a planned insert ([`turn`]).
pub struct Turn(#[allow(dead_code)] Vec<tokio::sync::OwnedMutexGuard<()>>);

/// Waits for this process's turn at every bucket that `plans` name, in
/// database `db` ([`database_of`]): taken in id order, so two waiting
/// inserts never wait for each other's. Hold it through the planned
/// insert statement and no further: a transaction's [`plan`] may have
/// created buckets, uncommitted, before it waits for its turn, and a
/// settle (the slow path) waits for such a row, so a turn held through a
/// settle could wait, unseen by PostgreSQL, for its own waiter; the insert
/// statement itself waits for no bucket it cannot see.
/// Empty at once for a plain insert. A planned insert holds its buckets'
/// row locks from its end through its commit, so concurrent ones sharing a
/// bucket (all of them, with one global bucket) queue on that lock inside
/// PostgreSQL, each holding a connection, each hand-off a backend woken on
/// a busy machine; taking turns here instead, the submissions that arrive
/// meanwhile gather into the next batch (docs/limits.md "Cost"). Other
/// processes still race for the locks, which the insert's guard settles.
pub async fn turn(db: &str, plans: &[Option<Plan>]) -> Turn {
    let mut ids: Vec<i64> =
        plans.iter().flatten().flat_map(|p| p.buckets.split(',').filter_map(|b| b.parse().ok())).collect();
    ids.sort_unstable();
    ids.dedup();
    let mutexes: Vec<BucketTurn> = {
        let mut turns = TURNS.lock();
        if turns.len() + ids.len() > MAX_BUCKETS {
            // Forget the turns no insert holds or waits for.
            turns.retain(|_, m| Arc::strong_count(m) > 1);
        }
        ids.iter().map(|id| turns.entry((db.to_string(), *id)).or_default().clone()).collect()
    };
    let mut held = Vec::with_capacity(mutexes.len());
    for m in mutexes {
        held.push(m.lock_owned().await);
    }
    Turn(held)
}

/// The identity of `pool`'s database (host, port, name), which keys what
/// this process remembers.
pub fn database_of(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!("{}:{}/{}", o.get_host(), o.get_port(), o.get_database().unwrap_or_default())
}

/// Plans for `tasks` (`named[i]`: the limits task `i` names, maybe none):
/// `None` for a task that takes no limit as far as is known (it is
/// inserted plain, or `held` by the statement's probe when a `tasks` list
/// names it since). Reads what is not remembered (a statement per kind:
/// the `tasks` lists, the named limits' keys, missing buckets, created
/// then). `Err((i, name))`: task `i` names limit `name`, which does not
/// exist.
pub async fn plan(
    conn: &mut PgConnection,
    db: &str,
    tasks: &[NewTask],
    named: &[Vec<LimitName>],
) -> Result<Result<Vec<Option<Plan>>, (usize, LimitName)>, StoreError> {
    let now = Instant::now();
    let fresh = |at: &Instant| now.duration_since(*at) < TTL;
    let no_names: Vec<LimitName> = Vec::new();
    let named_of = |i: usize| named.get(i).unwrap_or(&no_names);
    // What is not known (or too old) yet.
    let (mut stale_names, mut stale_keys) = (Vec::new(), Vec::new());
    let mut seen: HashSet<(String, String)> = HashSet::new();
    {
        let mut all = KNOWN.lock();
        let known = all.entry(db.to_string()).or_default();
        for (i, t) in tasks.iter().enumerate() {
            let name = (t.tenant.to_string(), t.name.to_string());
            if !known.listed.get(&name).is_some_and(|(_, at)| fresh(at)) && seen.insert(name.clone()) {
                stale_names.push(name);
            }
            for l in named_of(i) {
                let key = (t.tenant.to_string(), l.to_string());
                if !known.keys.get(&key).is_some_and(|(_, at)| fresh(at)) && !stale_keys.contains(&key) {
                    stale_keys.push(key);
                }
            }
        }
    }
    if !stale_names.is_empty() {
        let (tenants, names): (Vec<String>, Vec<String>) = stale_names.iter().cloned().unzip();
        let rows = sqlx::query!(
            r#"SELECT u.tenant AS "tenant!", u.task_name AS "task_name!", l.name AS "limit_name?", l.key_pointer
               FROM UNNEST($1::text[], $2::text[]) AS u(tenant, task_name)
               LEFT JOIN limit_tasks lt ON lt.tenant = u.tenant AND lt.task_name = u.task_name
               LEFT JOIN limits l ON l.tenant = lt.tenant AND l.name = lt.limit_name"#,
            &tenants,
            &names
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut read: HashMap<(String, String), Vec<Definition>> = HashMap::new();
        for r in rows {
            let defs = read.entry((r.tenant, r.task_name)).or_default();
            if let Some(limit) = r.limit_name {
                defs.push((limit, r.key_pointer));
            }
        }
        let mut all = KNOWN.lock();
        let known = all.entry(db.to_string()).or_default();
        if known.listed.len() + read.len() > MAX_NAMES {
            known.listed.clear();
        }
        for (name, mut defs) in read {
            defs.sort();
            known.listed.insert(name, (defs, now));
        }
    }
    if !stale_keys.is_empty() {
        let (tenants, limits): (Vec<String>, Vec<String>) = stale_keys.iter().cloned().unzip();
        let rows = sqlx::query!(
            r#"SELECT l.tenant, l.name, l.key_pointer
               FROM UNNEST($1::text[], $2::text[]) AS u(tenant, name)
               JOIN limits l ON l.tenant = u.tenant AND l.name = u.name"#,
            &tenants,
            &limits
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut all = KNOWN.lock();
        let known = all.entry(db.to_string()).or_default();
        for r in rows {
            stale_keys.retain(|k| k.0 != r.tenant || k.1 != r.name);
            known.keys.insert((r.tenant, r.name), (r.key_pointer, now));
        }
    }
    // What is left of `stale_keys` was read and does not exist.
    let unknown = stale_keys;
    // Each task's limits and buckets; the bucket ids not remembered.
    let mut wanted: Vec<Vec<(String, String)>> = Vec::with_capacity(tasks.len());
    let mut listed: Vec<String> = Vec::with_capacity(tasks.len());
    let mut missing: HashSet<(String, String, String)> = HashSet::new();
    {
        let mut all = KNOWN.lock();
        let known = all.entry(db.to_string()).or_default();
        for (i, t) in tasks.iter().enumerate() {
            let tenant = t.tenant.to_string();
            let defs =
                known.listed.get(&(tenant.clone(), t.name.to_string())).map(|(d, _)| d.clone()).unwrap_or_default();
            listed.push(defs.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join(","));
            let mut limits: Vec<Definition> = defs;
            let mut complete = true;
            for l in named_of(i) {
                let k = (tenant.clone(), l.to_string());
                match known.keys.get(&k) {
                    Some((key, _)) => limits.push((l.to_string(), key.clone())),
                    None if unknown.contains(&k) => return Ok(Err((i, l.clone()))),
                    // Forgotten meanwhile (another submission's refused
                    // plan): no plan, the slow path reads it.
                    None => complete = false,
                }
            }
            if !complete {
                wanted.push(Vec::new());
                continue;
            }
            limits.sort();
            limits.dedup_by(|a, b| a.0 == b.0);
            let buckets: Vec<(String, String)> = limits
                .into_iter()
                .map(|(l, key)| {
                    let bucket = bucket_key(key.map(KeyPointer).as_ref(), &t.args, &t.kwargs);
                    (l, bucket)
                })
                .collect();
            for (l, b) in &buckets {
                let k = (tenant.clone(), l.clone(), b.clone());
                if !known.buckets.contains_key(&k) {
                    missing.insert(k);
                }
            }
            wanted.push(buckets);
        }
    }
    if !missing.is_empty() {
        let mut missing: Vec<(String, String, String)> = missing.into_iter().collect();
        missing.sort();
        let col = |f: fn(&(String, String, String)) -> &str| missing.iter().map(f).collect::<Vec<&str>>();
        let ids = bucket_ids(conn, &col(|m| &m.0), &col(|m| &m.1), &col(|m| &m.2)).await?;
        let mut all = KNOWN.lock();
        let known = all.entry(db.to_string()).or_default();
        if known.buckets.len() + ids.len() > MAX_BUCKETS {
            known.buckets.clear();
        }
        known.buckets.extend(ids);
    }
    let all = KNOWN.lock();
    let known = all.get(db).expect("entered above");
    Ok(Ok(tasks
        .iter()
        .zip(wanted)
        .zip(listed)
        .map(|((t, buckets), listed)| {
            if buckets.is_empty() {
                return None;
            }
            let mut ids: Vec<(i64, &str)> = Vec::with_capacity(buckets.len());
            for (l, b) in &buckets {
                // A bucket missing here went with its limit meanwhile: the slow path decides.
                let id = *known.buckets.get(&(t.tenant.to_string(), l.clone(), b.clone()))?;
                ids.push((id, l));
            }
            ids.sort_unstable();
            let mut limits: Vec<&str> = ids.iter().map(|(_, l)| *l).collect();
            limits.sort_unstable();
            Some(Plan {
                buckets: ids.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>().join(","),
                limits: limits.join(","),
                listed,
            })
        })
        .collect()))
}

/// After an insert with `plans`: a planned task that is not `queued` may
/// have had its plan refused (a bucket gone with its limit, which no
/// reading again of the lists would notice), so what was read of `db` is
/// forgotten and read again by the next submission. A limit that is
/// reached costs that read, on a path that is slow anyway.
pub fn check(db: &str, plans: &[Option<Plan>], out: &[Inserted]) {
    let refused = plans
        .iter()
        .zip(out)
        .any(|(p, o)| p.is_some() && matches!(o, Inserted::Created(r) if r.task.status.as_str() == super::HELD));
    if refused {
        KNOWN.lock().remove(db);
    }
}
