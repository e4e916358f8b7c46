//! The yadtq stack under test: a fresh database and Kafka namespace from
//! `yadtq_tests::Stack`, whose launcher here starts the RELEASE gateway and
//! worker binaries with the default liveness timings (the tests run
//! `target/debug` with fast ones).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use sqlx::PgPool;

/// Liveness settings at their documented defaults (written out so a stray
/// environment variable cannot change what is measured).
pub const DEFAULT_TIMINGS: &[(&str, &str)] =
    &[("YADTQ_HEARTBEAT_INTERVAL", "2"), ("YADTQ_DEAD_AFTER", "10"), ("YADTQ_MAINTENANCE_PERIOD", "1")];

/// Directory of the binaries: `YADTQ_BIN_DIR`, else `<workspace>/target/release`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("YADTQ_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        target.join("release")
    })
}

/// The user's own gateway, when `YADTQ_URL` names one: its base URL (no
/// trailing `/`) and the key to send, `YADTQ_API_KEY` (a key with the
/// `submit` scope suffices). `Ok(None)` when `YADTQ_URL` is unset or empty;
/// an error when it is set and `YADTQ_API_KEY` is not, as the scripts'
/// `require_api_key` does for the SDKs' tests and schemathesis.
pub fn external_gateway() -> Result<Option<(String, String)>> {
    let url = std::env::var("YADTQ_URL").unwrap_or_default();
    if url.is_empty() {
        return Ok(None);
    }
    let key = std::env::var("YADTQ_API_KEY").unwrap_or_default();
    if key.is_empty() {
        bail!(
            "YADTQ_URL is set ({url}), so the benchmark uses that gateway, but YADTQ_API_KEY is not: set it to a key \
             of that gateway with the `submit` scope (`yadtq-gateway keys create --scopes submit` against its \
             database), or unset YADTQ_URL to benchmark stacks of the bench's own"
        );
    }
    Ok(Some((url.trim_end_matches('/').to_string(), key)))
}

/// One scenario's private stack: the test harness's [`yadtq_tests::Stack`]
/// (fresh database and namespace, process launcher) set to start the release
/// binaries with the default timings and the services' own log filter.
pub struct Bench {
    pub stack: yadtq_tests::Stack,
    pub http: reqwest::Client,
}

/// A started process (SIGKILLed when dropped) and a running gateway.
pub use yadtq_tests::{Gateway, Proc};

/// An HTTP client sized for `conns` concurrent connections to one host,
/// sending `api_key` as its bearer token (the stack's, [`yadtq_tests::Stack::api_key`]).
pub fn http_client(conns: usize, api_key: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(yadtq_tests::bearer_headers(api_key))
        .pool_max_idle_per_host(conns.max(1))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .expect("http client")
}

impl Bench {
    /// A fresh database + namespace named after `scenario`.
    pub async fn new(scenario: &str, a: &crate::Args) -> Result<Self> {
        let mut stack = yadtq_tests::Stack::new(&format!("bench_{scenario}")).await;
        stack.launch = yadtq_tests::Launch {
            bin_dir: bin_dir(),
            log_dir: bin_dir().join("../bench-logs").join(&stack.namespace),
            timings: DEFAULT_TIMINGS,
            rust_log: None, // the services' default log filter, as deployed
        };
        for kv in &a.service_env {
            let (k, v) = kv.split_once('=').with_context(|| format!("--env {kv}: expected NAME=VALUE"))?;
            stack.set_env(k, v);
        }
        let http = http_client(256, &stack.api_key);
        Ok(Self { stack, http })
    }

    pub fn db(&self) -> &PgPool {
        &self.stack.db
    }

    /// Starts a gateway on a free port and waits for `/healthz` (panics when
    /// it does not answer within 30 s).
    pub async fn gateway(&self) -> Gateway {
        self.stack.gateway(&[]).await
    }

    /// Starts a worker with `--concurrency c` without waiting (panics when the
    /// binary is missing or cannot start).
    pub fn spawn_worker(&self, name: &str, c: usize) -> Proc {
        self.stack.spawn("yadtq-worker", &["--concurrency", &c.to_string()], name)
    }

    /// Starts `w` workers of concurrency `c` and waits until all registered and
    /// each owns partitions, so no rebalance (which pauses the partitions that
    /// move) falls into the measurement.
    pub async fn workers(&self, w: usize, c: usize) -> Vec<Proc> {
        let procs: Vec<Proc> = (0..w).map(|i| self.spawn_worker(&format!("worker-{i}"), c)).collect();
        // Owning partitions implies registered (a `workers` row).
        for p in &procs {
            self.stack.wait_assigned(p).await;
        }
        procs
    }

    /// Waits until no task is open (queued, scheduled, processing); errors after `timeout`.
    pub async fn wait_all_terminal(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let open: i64 =
                sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status NOT IN ('success', 'failed', 'cancelled')")
                    .fetch_one(self.db())
                    .await?;
            if open == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{open} tasks not terminal after {timeout:?}");
            }
            // Cheap (index on status) and not too often: the bench must not load PostgreSQL.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Drops the database and the namespace's topics (processes must be gone),
    /// unless `YADTQ_BENCH_KEEP` is set: then both stay for inspection.
    pub async fn cleanup(self) {
        if std::env::var_os("YADTQ_BENCH_KEEP").is_some() {
            eprintln!("[bench] YADTQ_BENCH_KEEP: database and topics {} kept", self.stack.namespace);
            return;
        }
        let ns = self.stack.namespace.clone();
        let kafka = self.stack.kafka.clone();
        self.stack.db.close().await;
        if let Ok(admin_url) = std::env::var("DATABASE_URL") {
            if let Ok(admin) = PgPool::connect(&admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{ns}\" WITH (FORCE)")).execute(&admin).await;
                admin.close().await;
            }
        }
        let _ = delete_topics(&kafka, &ns).await;
    }
}

async fn delete_topics(kafka: &str, ns: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = yadtq_tests::kafka_config(kafka).create()?;
    let md = admin.inner().fetch_metadata(None, Duration::from_secs(10))?;
    let names: Vec<String> =
        md.topics().iter().map(|t| t.name().to_string()).filter(|n| n.starts_with(&format!("{ns}."))).collect();
    if !names.is_empty() {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        admin.delete_topics(&refs, &AdminOptions::new()).await?;
    }
    Ok(())
}
