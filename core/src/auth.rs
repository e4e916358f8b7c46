//! Pure parts of authentication: API key scopes, tokens and their hashes,
//! tenant names, and how a tenant's task id maps to the stored task key.
//! The key table is `store::keys`; the gateway checks requests
//! (`gateway/src/auth.rs`). docs/security.md has the model.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::names::Tenant;

/// The tenant of tasks submitted before tenants existed, of the bootstrap
/// admin key, and of every request when authentication is off.
pub const DEFAULT_TENANT: &str = "default";

/// What [`is_valid_tenant`] accepts, for error messages ([`Tenant::RULE`]).
pub const TENANT_RULE: &str = Tenant::RULE;

/// True when `t` is 1 to 64 ASCII letters, digits, `-` or `_` (so it can
/// never contain the `/` of a stored task key): [`Tenant::is_valid`].
pub fn is_valid_tenant(t: &str) -> bool {
    Tenant::is_valid(t)
}

/// What a key may do. `admin` implies every scope but `cluster`, within the
/// key's tenant; `cluster` implies every scope, over every tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `POST /tasks`, `POST /tasks/batch`.
    Submit,
    /// Read tasks, their attempts and events, and the worker roster (without
    /// handler output or worker hosts).
    Read,
    /// Cancel and retry tasks; see handler output and worker details.
    Operate,
    /// `GET /metrics` when the gateway is configured to protect it.
    Metrics,
    /// Everything within the key's own tenant: its keys, its audit entries,
    /// its dead letters.
    Admin,
    /// Everything, over every tenant: other tenants' keys, the whole audit
    /// log and dead-letter topic, dedicated tenants' worker lists. Granted
    /// only by `YADTQ_BOOTSTRAP_ADMIN_KEY` and `yadtq-gateway keys create`.
    Cluster,
}

impl Scope {
    /// Every scope, in the order listings show them.
    pub(crate) const ALL: [Scope; 6] =
        [Scope::Submit, Scope::Read, Scope::Operate, Scope::Metrics, Scope::Admin, Scope::Cluster];

    /// The name stored in `api_keys.scopes` and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Read => "read",
            Self::Operate => "operate",
            Self::Metrics => "metrics",
            Self::Admin => "admin",
            Self::Cluster => "cluster",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s.trim())
            .ok_or_else(|| format!("unknown scope '{s}'; scopes are {}", Self::ALL.map(Scope::as_str).join(", ")))
    }
}

/// True when a key holding `held` may act with `needed` (`cluster` holds
/// all, `admin` all but `cluster`).
pub fn grants(held: &[Scope], needed: Scope) -> bool {
    held.contains(&needed)
        || held.contains(&Scope::Cluster)
        || (held.contains(&Scope::Admin) && needed != Scope::Cluster)
}

/// The tenant of a stored task key that a record from outside (a dead
/// letter's key or value) names: `<tenant>/<id>` with a valid tenant and
/// id, or a bare valid id ([`DEFAULT_TENANT`]); `None` for anything else.
pub(crate) fn tenant_of_named_key(key: &str) -> Option<&str> {
    let (tenant, id) = key.split_once('/').unwrap_or((DEFAULT_TENANT, key));
    (is_valid_tenant(tenant) && crate::names::TaskId::check(id).is_ok()).then_some(tenant)
}

/// Prefix of every token this release makes, so a leaked one is easy to
/// find in logs and code scanners.
pub(crate) const TOKEN_PREFIX: &str = "yadtq_";

/// Shortest token the gateway accepts from `YADTQ_BOOTSTRAP_ADMIN_KEY`
/// (those it makes are 49 characters: the prefix and 256 random bits).
pub const MIN_TOKEN_LEN: usize = 32;

/// A new token: [`TOKEN_PREFIX`] and 32 bytes from the operating system's
/// random source, base64url without padding (49 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a token, the only form the database keeps.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The first characters of a token, kept to tell keys apart in listings.
pub fn token_prefix(token: &str) -> String {
    token.chars().take(TOKEN_PREFIX.len() + 6).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_keys_are_unique_across_tenants_and_reversible() {
        use crate::names::{TaskId, TaskKey};
        let task_key = |t: &str, id: &str| TaskKey::new(&Tenant::parse(t).unwrap(), &TaskId::parse(id).unwrap());
        assert_eq!(task_key(DEFAULT_TENANT, "12345abc"), "12345abc");
        assert_eq!(task_key("acme", "12345abc"), "acme/12345abc");
        assert_ne!(task_key("acme", "x"), task_key("beta", "x"));
        for (tenant, id) in [("default", "a:b.c"), ("acme", "12345abc"), ("a-b_c", "default")] {
            let key = task_key(tenant, id);
            assert_eq!(key.client_id(), id);
            assert_eq!(key.tenant(), tenant);
        }
    }

    #[test]
    fn tenant_names_cannot_hold_the_key_separator() {
        assert!(is_valid_tenant("acme-1_b") && !is_valid_tenant("a/b") && !is_valid_tenant(""));
        assert!(!is_valid_tenant(&"x".repeat(65)));
    }

    #[test]
    fn admin_grants_every_scope_but_cluster_which_grants_all() {
        assert!(grants(&[Scope::Admin], Scope::Operate));
        assert!(!grants(&[Scope::Admin], Scope::Cluster));
        assert!(grants(&[Scope::Cluster], Scope::Admin) && grants(&[Scope::Cluster], Scope::Submit));
        assert!(grants(&[Scope::Read, Scope::Submit], Scope::Submit));
        assert!(!grants(&[Scope::Read], Scope::Operate));
        assert_eq!("operate".parse::<Scope>(), Ok(Scope::Operate));
        assert!("root"
            .parse::<Scope>()
            .unwrap_err()
            .contains("scopes are submit, read, operate, metrics, admin, cluster"));
    }

    #[test]
    fn a_named_key_has_a_tenant_only_when_it_is_a_stored_task_key() {
        assert_eq!(tenant_of_named_key("acme/dl-1"), Some("acme"));
        assert_eq!(tenant_of_named_key("dl-1"), Some(DEFAULT_TENANT));
        for junk in ["", "a/b/c", "a b", "/x", "acme/", "acme/..", "x\u{0}"] {
            assert_eq!(tenant_of_named_key(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 49, "{a}");
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_prefix(&a).len(), 12);
    }
}
