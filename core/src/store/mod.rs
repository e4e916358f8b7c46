//! The PostgreSQL data layer, one module per table or concern:
//! [`tasks`] (the task state machine, written once at the top of that
//! module, and the `published_at` protocol), [`attempts`] (the attempt
//! history and what the rows say about running attempts), [`workers`]
//! (registration, heartbeats, listing), [`queues`] (declared queues),
//! [`tenants`] (dedicated tenants; re-routing their tasks is in [`tasks`]),
//! [`keys`] and [`audit`] (API keys and the audit log of admin actions),
//! [`stats`] (the aggregates the leader samples for the metrics),
//! [`overview`] (recent throughput per queue, for `GET /queues`),
//! [`events`] (task-change notifications) and [`leader`] (the maintenance
//! lease's lock).
//!
//! Every statement is checked against the schema at build time
//! (`sqlx::query!` / `query_as!`, with the offline data committed in
//! `.sqlx/`); business code never writes SQL. Every state transition is a
//! conditional UPDATE naming the expected status (and, for a worker's writes,
//! its worker id and attempt number), so a stale writer changes nothing.
//! Statements that change many task rows lock them in id order (or skip
//! locked rows), so two concurrent batches can never wait on each other in a
//! cycle. They join the id list (`UNNEST`) to the table rather than filter
//! with `id = ANY($1)`: a filter is tested against the whole list for every
//! row a plan scans (a partial index, a small table's sequential scan), a
//! join is not.

pub mod attempts;
pub mod audit;
mod columns;
mod error;
pub mod events;
pub mod keys;
pub(crate) mod leader;
pub mod limits;
#[cfg(test)]
mod list_plans;
pub mod overview;
pub mod queues;
pub mod schedules;
pub mod stats;
#[cfg(any(test, feature = "synthetic"))]
pub mod synthetic;
pub mod tasks;
pub mod tenants;
#[cfg(test)]
mod tests;
pub mod unique;
pub mod workers;
pub mod workflows;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

pub use error::StoreError;

use crate::config::CommonConfig;

/// Embedded migrations from `migrations/`. Running them takes an advisory
/// lock, so several processes starting at once are safe. Versions applied by
/// a newer release are accepted (`ignore_missing`): migrations are additive
/// (docs/deployment.md, "Upgrades"), so this release's statements still hold
/// on a newer schema during a rolling deploy.
pub static MIGRATOR: sqlx::migrate::Migrator = {
    let mut m = sqlx::migrate!("../migrations");
    m.ignore_missing = true;
    m
};

/// Opens the pool described by `cfg` and applies pending migrations. TLS is
/// as `DATABASE_URL`'s query says (`sslmode`, `sslrootcert`, `sslcert`,
/// `sslkey`; sqlx's default is `prefer`, which does not verify the server).
///
/// Errors when PostgreSQL cannot be reached within the acquire timeout (the
/// message names the host and port, and for a failed TLS handshake the URL's
/// TLS parameters) or a migration fails.
pub async fn connect(cfg: &CommonConfig) -> anyhow::Result<PgPool> {
    let opts: PgConnectOptions = cfg.database_url.parse()?;
    let target = format!("{}:{}", opts.get_host(), opts.get_port());
    let pool = match PgPoolOptions::new()
        .max_connections(cfg.db_pool_size)
        .acquire_timeout(cfg.db_acquire_timeout)
        .after_connect(|conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(SESSION).await.map(drop)
            })
        })
        .connect_with(opts.clone())
        .await
    {
        Ok(pool) => pool,
        Err(e) => {
            // The pool retries until its acquire timeout and then says only
            // that it timed out; one direct attempt says why (refused,
            // unknown host, authentication, no such database).
            use sqlx::Connection;
            let cause = match tokio::time::timeout(cfg.db_acquire_timeout, PgConnection::connect_with(&opts)).await {
                Ok(Err(direct)) if is_tls_failure(&direct) => {
                    format!("{direct} (check sslmode, sslrootcert, sslcert and sslkey in DATABASE_URL)")
                }
                Ok(Err(direct)) => direct.to_string(),
                _ => e.to_string(),
            };
            anyhow::bail!("cannot connect to PostgreSQL at {target} (DATABASE_URL): {cause}")
        }
    };
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// True for a failed TLS set-up: sqlx's own TLS errors, and the handshake's
/// (an untrusted or misnamed certificate), which rustls reports as invalid data.
fn is_tls_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    }
}

/// What every session of the services runs right after it connects:
/// `jit = off`. Their statements are short and indexed; a row estimate
/// past `jit_above_cost` (one statement's, on a large `tasks` table) made
/// PostgreSQL compile the statement anew on every call, about 30 ms of CPU
/// each, where running it takes a fraction of a millisecond. A `SET`, not
/// a startup option, so that a pooler in session mode, which may refuse
/// or drop startup options, passes it.
const SESSION: &str = "SET jit = off";

/// Opens one connection outside any pool (heartbeats and the leader lock use
/// their own connection, so a busy or recycling pool cannot delay or drop them).
pub async fn connect_dedicated(database_url: &str) -> Result<PgConnection, StoreError> {
    use sqlx::{Connection, Executor};
    let mut conn = PgConnection::connect(database_url).await?;
    conn.execute(SESSION).await?;
    Ok(conn)
}

/// `SELECT 1` within the pool's acquire timeout: true when PostgreSQL answers.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query!("SELECT 1 AS one").fetch_one(pool).await.is_ok()
}

#[cfg(test)]
mod connect_tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        cfg: crate::config::CommonConfig,
    }

    /// A closed port: the error names the host and port and the real cause,
    /// not only the pool's timeout.
    #[tokio::test]
    async fn an_unreachable_database_url_names_its_host_port_and_cause() {
        let cfg = Cli::try_parse_from([
            "t",
            "--database-url",
            "postgres://yadtq:yadtq@127.0.0.1:1/none",
            "--kafka-bootstrap",
            "127.0.0.1:1",
            "--db-acquire-timeout",
            "1",
        ])
        .expect("parses")
        .cfg;
        let e = super::connect(&cfg).await.expect_err("nothing listens on port 1").to_string();
        assert!(e.contains("PostgreSQL at 127.0.0.1:1 (DATABASE_URL)"), "{e}");
        assert!(e.to_lowercase().contains("refused"), "{e}");
    }

    /// The services' sessions run without JIT compilation, pooled or
    /// dedicated (a server default of `on` compiled a statement on every
    /// call once its estimate passed `jit_above_cost`).
    #[sqlx::test(migrator = "crate::store::MIGRATOR")]
    async fn service_sessions_run_without_jit(pool: sqlx::PgPool) {
        // This test's own database, on the server DATABASE_URL names.
        let server = std::env::var("DATABASE_URL").expect("DATABASE_URL, as for every store test");
        let (server, _) = server.rsplit_once('/').expect("a URL with a database");
        let url = format!("{server}/{}", pool.connect_options().get_database().expect("a test database"));
        let cfg =
            Cli::try_parse_from(["t", "--database-url", &url, "--kafka-bootstrap", "127.0.0.1:1"]).expect("parses").cfg;
        let show = "SELECT current_setting('jit')";
        let pooled: String = sqlx::query_scalar(show).fetch_one(&super::connect(&cfg).await.unwrap()).await.unwrap();
        let mut own = super::connect_dedicated(&url).await.unwrap();
        let dedicated: String = sqlx::query_scalar(show).fetch_one(&mut own).await.unwrap();
        assert_eq!((pooled.as_str(), dedicated.as_str()), ("off", "off"));
    }
}
