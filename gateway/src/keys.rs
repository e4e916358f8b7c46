//! `yadtq-gateway keys …`: API key management against the database
//! (`DATABASE_URL`), for operators and scripts; the admin API
//! (`/admin/keys`) does the same over HTTP.

use clap::{Args, Subcommand};
use uuid::Uuid;
use yadtq_core::auth::{self, Scope};
use yadtq_core::names::QueueName;
use yadtq_core::store::keys::{self, CreatedKey, NewKey, Revoked};

/// `yadtq-gateway keys` and its commands.
#[derive(Debug, Args)]
pub struct KeysCommand {
    #[command(subcommand)]
    action: KeysAction,
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Create a key; prints its token (shown once) on stdout, the key on stderr.
    Create(CreateArgs),
    /// List keys (never their tokens), newest first.
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        db: Database,
    },
    /// Revoke a key: every gateway refuses it within `--auth-cache-ttl`.
    Revoke {
        /// Key id (from `keys list`).
        id: Uuid,
        #[command(flatten)]
        db: Database,
    },
    /// Print a fresh random token without storing it, e.g. for `YADTQ_BOOTSTRAP_ADMIN_KEY`.
    Token,
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// Tenant whose tasks the key reaches (letters, digits, '-', '_').
    #[arg(long, default_value = auth::DEFAULT_TENANT)]
    tenant: String,
    /// Comma separated: submit, read, operate, metrics, admin (all of these
    /// in the tenant), cluster (everything, every tenant; only this command
    /// and the bootstrap key grant it).
    #[arg(long, value_delimiter = ',', required = true)]
    scopes: Vec<Scope>,
    /// Limit the key to these queues (comma separated); every queue when absent.
    #[arg(long, value_delimiter = ',')]
    queues: Option<Vec<String>>,
    /// What the key is for, shown in listings.
    #[arg(long, default_value = "")]
    name: String,
    #[command(flatten)]
    db: Database,
}

#[derive(Debug, Args)]
struct Database {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

impl Database {
    async fn pool(&self) -> anyhow::Result<sqlx::PgPool> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.database_url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL (DATABASE_URL): {e}"))?;
        yadtq_core::store::MIGRATOR.run(&pool).await?;
        Ok(pool)
    }
}

/// Why [`check_new_key`] refused a new key.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidKey {
    /// The field (and CLI flag) at fault: `tenant`, `scopes`, `queues` or `name`.
    pub field: &'static str,
    /// What is wrong with it, for the problem document or the CLI.
    pub message: String,
}

impl InvalidKey {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// Checks a new key's tenant, scopes and queues; the error names the field.
pub fn check_new_key(key: &NewKey) -> Result<(), InvalidKey> {
    if !auth::is_valid_tenant(&key.tenant) {
        let invalid = yadtq_core::names::InvalidTenant { name: key.tenant.clone() };
        return Err(InvalidKey::new("tenant", invalid.to_string()));
    }
    if key.scopes.is_empty() {
        return Err(InvalidKey::new("scopes", "give at least one scope"));
    }
    for q in key.queues.iter().flatten() {
        QueueName::check(q).map_err(|e| InvalidKey::new("queues", format!("queue '{q}' {e}")))?;
    }
    if key.name.chars().count() > 200 {
        return Err(InvalidKey::new("name", "name must be at most 200 characters"));
    }
    // PostgreSQL refuses NUL in text, which would surface as a 500.
    if key.name.contains('\0') {
        return Err(InvalidKey::new("name", "name must not contain NUL characters"));
    }
    Ok(())
}

/// Runs a `keys` command.
pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd.action {
        KeysAction::Token => println!("{}", auth::new_token()),
        KeysAction::Create(a) => {
            let new = NewKey { tenant: a.tenant, name: a.name, scopes: a.scopes, queues: a.queues };
            check_new_key(&new).map_err(|e| anyhow::anyhow!("--{}: {}", e.field, e.message))?;
            let CreatedKey { key, token } = keys::create(&a.db.pool().await?, &new, "cli").await?;
            eprintln!(
                "created key {} (tenant {}, scopes {}); its token, below, is shown only now",
                key.id,
                key.tenant,
                key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
            );
            println!("{token}");
        }
        KeysAction::List { tenant, db } => {
            println!(
                "{:<36}  {:<16}  {:<12}  {:<28}  {:<16}  {:<8}  NAME",
                "ID", "TENANT", "TOKEN", "SCOPES", "QUEUES", "STATE"
            );
            for k in keys::list(&db.pool().await?, tenant.as_deref()).await? {
                let scopes = k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
                let queues = k.queues.map_or_else(|| "*".to_string(), |q| q.join(","));
                let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                println!(
                    "{:<36}  {:<16}  {:<12}  {:<28}  {:<16}  {:<8}  {}",
                    k.id, k.tenant, k.token_prefix, scopes, queues, state, k.name
                );
            }
        }
        // The operator's command needs no confirmation: it is how a locked-out tenant is recovered.
        KeysAction::Revoke { id, db } => match keys::revoke(&db.pool().await?, id, "cli", |_, _| true).await? {
            Revoked::Done(k) => eprintln!("revoked key {} (tenant {})", k.id, k.tenant),
            Revoked::Already(k) => {
                eprintln!("key {} was already revoked at {}", k.id, k.revoked_at.unwrap_or_default())
            }
            Revoked::NotFound => anyhow::bail!("no key with id {id}"),
            Revoked::Refused { .. } => unreachable!("the command allows every revocation"),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> NewKey {
        NewKey { tenant: "acme".into(), name: name.into(), scopes: vec![Scope::Read], queues: None }
    }

    /// Found by schemathesis: a NUL in `name` reached PostgreSQL (a 500).
    #[test]
    fn a_name_with_a_nul_character_is_refused_naming_the_field() {
        assert_eq!(check_new_key(&key("billing")), Ok(()));
        let InvalidKey { field, message: msg } = check_new_key(&key("bill\0ing")).unwrap_err();
        assert_eq!(field, "name");
        assert!(msg.contains("NUL"), "{msg}");
    }
}
