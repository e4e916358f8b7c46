//! Test support for the end-to-end suite: each test gets its own PostgreSQL
//! database and Kafka namespace, and starts the real `yadtq-gateway` and
//! `yadtq-worker` binaries against the broker and server named by
//! `KAFKA_BOOTSTRAP` and `DATABASE_URL` (`scripts/test.sh` starts both), or
//! against the three-node cluster of [`Cluster`]. Processes are killed when
//! their handle drops; their logs are kept under `target/e2e-logs/<database>/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};

/// Liveness timings used by tests that do not change them: fast heartbeats so
/// recovery tests finish quickly, with the session timeout (6 s, the broker's
/// minimum) below the dead-after threshold as the design requires.
pub const FAST_TIMINGS: &[(&str, &str)] =
    &[("YADTQ_HEARTBEAT_INTERVAL", "1"), ("YADTQ_DEAD_AFTER", "7"), ("YADTQ_MAINTENANCE_PERIOD", "0.5")];

/// How a [`Stack`] starts the service binaries. The tests' default
/// ([`Launch::tests`]) runs `target/debug` with [`FAST_TIMINGS`]; the benchmark
/// runs release binaries with the documented default timings.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Directory holding `yadtq-gateway` and `yadtq-worker`.
    pub bin_dir: PathBuf,
    /// Where each process's log file (`<name>.log`) goes.
    pub log_dir: PathBuf,
    /// Liveness settings (environment variables) for every process.
    pub timings: &'static [(&'static str, &'static str)],
    /// `RUST_LOG` for the services; `None` leaves their default filter.
    pub rust_log: Option<&'static str>,
}

impl Launch {
    /// Debug binaries, fast timings, logs under `target/e2e-logs/<database>/`.
    pub fn tests(database: &str) -> Self {
        Self {
            bin_dir: target_dir().join("debug"),
            log_dir: target_dir().join("e2e-logs").join(database),
            timings: FAST_TIMINGS,
            rust_log: Some("info,rdkafka=warn,sqlx=warn,tower_http=warn"),
        }
    }
}

/// One test's private stack: a database, a namespace, and the processes it started.
pub struct Stack {
    /// URL of this test's own database.
    pub database_url: String,
    /// Kafka namespace (topic, group and leader-key prefix).
    pub namespace: String,
    /// Kafka bootstrap servers.
    pub kafka: String,
    /// Pool on this test's database, for assertions on rows.
    pub db: PgPool,
    /// How processes are started (binaries, logs, timings); set it before starting any.
    pub launch: Launch,
    /// An `admin` and `cluster` key of the default tenant, minted for this test: what
    /// [`Gateway`]'s requests send, and `YADTQ_API_KEY` of the processes it starts.
    pub api_key: String,
    http: reqwest::Client,
    extra_env: Vec<(String, String)>,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with scripts/test.sh, which starts PostgreSQL and Kafka")
    })
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A Kafka client configuration for the tests' own clients: `bootstrap`
/// and the connection security the services read from the environment
/// (`YADTQ_KAFKA_SECURITY_PROTOCOL`, …; plaintext when unset), so the
/// tests' clients connect as the processes they start do. Panics when those
/// variables are invalid.
pub fn kafka_config(bootstrap: &str) -> ClientConfig {
    let security = yadtq_core::kafka_security::KafkaSecurity::from_env()
        .unwrap_or_else(|e| panic!("the YADTQ_KAFKA_* security settings: {e}"));
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    security.apply(&mut c);
    c
}

/// Path of a debug workspace binary; panics with a hint when it was not built.
pub fn binary(name: &str) -> PathBuf {
    built(target_dir().join("debug").join(name))
}

/// `path` when that binary exists; panics with a hint otherwise.
fn built(path: PathBuf) -> PathBuf {
    assert!(path.exists(), "{} missing: build the binaries (scripts/test.sh and scripts/bench.sh do)", path.display());
    path
}

impl Stack {
    /// Creates a fresh database and namespace named after `test`, on the
    /// broker of `KAFKA_BOOTSTRAP`.
    pub async fn new(test: &str) -> Self {
        Self::with_kafka(test, &env("KAFKA_BOOTSTRAP")).await
    }

    /// Like [`Stack::new`], with the processes on the Kafka bootstrap servers
    /// `kafka` instead (e.g. [`Cluster::bootstrap`]).
    pub async fn with_kafka(test: &str, kafka: &str) -> Self {
        Self::with_servers(test, &env("DATABASE_URL"), kafka).await
    }

    /// Like [`Stack::new`] on other servers: the test's database is created
    /// through `admin_url` (a superuser's URL; its query, e.g. `sslmode`,
    /// is kept for the test's URL), the processes use the broker `kafka`.
    pub async fn with_servers(test: &str, admin_url: &str, kafka: &str) -> Self {
        let kafka = kafka.to_string();
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let name = format!("t_{test}_{suffix}");
        let mut admin = PgConnection::connect(admin_url).await.expect("connect to the admin database URL");
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await.expect("create test database");
        let database_url = database_url_for(admin_url, &name);
        let db = PgPool::connect(&database_url).await.expect("connect to test database");
        yadtq_migrate(&db).await;
        // The operator's key: `admin` for releases that do not know `cluster` (the upgrade test).
        let scopes = [yadtq_core::auth::Scope::Admin, yadtq_core::auth::Scope::Cluster];
        let api_key = mint_key(&db, yadtq_core::auth::DEFAULT_TENANT, &scopes, None).await;
        Self {
            api_key,
            database_url,
            launch: Launch::tests(&name),
            namespace: name.clone(),
            kafka,
            db,
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client"),
            extra_env: Vec::new(),
        }
    }

    /// Sets an environment variable for every process started from now on
    /// (e.g. `YADTQ_DEAD_AFTER` to run with other timings than [`FAST_TIMINGS`]).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.extra_env.push((name.to_string(), value.to_string()));
    }

    /// Runs `yadtq-gateway keys <args>` on the stack's database: (success, stdout, stderr).
    pub fn keys_command(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(binary("yadtq-gateway"))
            .arg("keys")
            .args(args)
            .env("DATABASE_URL", &self.database_url)
            .output()
            .expect("run yadtq-gateway keys");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }

    /// A new token (`yadtq-gateway keys token`) set as
    /// `YADTQ_BOOTSTRAP_ADMIN_KEY` for the processes started from now on.
    pub fn bootstrap_admin_key(&mut self) -> String {
        let (ok, token, err) = self.keys_command(&["token"]);
        assert!(ok, "keys token: {err}");
        let token = token.trim().to_string();
        self.set_env("YADTQ_BOOTSTRAP_ADMIN_KEY", &token);
        token
    }

    /// Starts binary `bin` of [`Stack::launch`] with `args`, logging to
    /// `<log>.log`, connected to this stack; does not wait for it. Panics
    /// when the binary was not built or cannot start.
    pub fn spawn(&self, bin: &str, args: &[&str], log: &str) -> Proc {
        let path = built(self.launch.bin_dir.join(bin));
        std::fs::create_dir_all(&self.launch.log_dir).expect("log dir");
        let log_path = self.launch.log_dir.join(format!("{log}.log"));
        let out = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(&path);
        cmd.args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("KAFKA_BOOTSTRAP", &self.kafka)
            .env("YADTQ_NAMESPACE", &self.namespace)
            .env("YADTQ_API_KEY", &self.api_key)
            .envs(self.launch.timings.iter().copied())
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        match self.launch.rust_log {
            Some(filter) => cmd.env("RUST_LOG", filter),
            None => cmd.env_remove("RUST_LOG"),
        };
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
        Proc { pid: child.id(), child: Some(child), log: log_path, name: log.to_string() }
    }

    /// Starts a gateway on a free port and waits until `/healthz` answers.
    pub async fn gateway(&self, args: &[&str]) -> Gateway {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut all = vec!["serve", "--listen", listen.as_str()];
        all.extend_from_slice(args);
        let proc = self.spawn("yadtq-gateway", &all, &format!("gateway-{port}"));
        let client =
            Client { base: format!("http://{listen}"), http: self.http.clone(), key: Some(self.api_key.clone()) };
        let gw = Gateway { client, proc };
        wait_for(Duration::from_secs(30), "gateway /healthz", || async {
            gw.http.get(format!("{}/healthz", gw.base)).send().await.is_ok_and(|r| r.status().is_success())
        })
        .await;
        gw
    }

    /// Starts a worker named `name` (for its log file) with extra flags, and
    /// waits until it is registered in the `workers` table.
    pub async fn worker(&self, name: &str, args: &[&str]) -> Proc {
        self.worker_binary("yadtq-worker", name, args).await
    }

    /// Like [`Stack::worker`] with another worker binary of [`Stack::launch`],
    /// e.g. `yadtq-test-worker` (the library with the tests' own Rust handlers).
    pub async fn worker_binary(&self, bin: &str, name: &str, args: &[&str]) -> Proc {
        let proc = self.spawn(bin, args, name);
        let pid = proc.pid() as i32;
        let db = self.db.clone();
        wait_for(Duration::from_secs(60), "worker registration", || {
            let db = db.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM workers WHERE pid = $1")
                    .bind(pid)
                    .fetch_one(&db)
                    .await
                    .is_ok_and(|n| n > 0)
            }
        })
        .await;
        proc
    }

    /// Waits until worker `proc` owns at least one partition, as it reports in
    /// `workers.partitions` (GET /workers) with the heartbeat that follows a
    /// rebalance. A first, empty assignment does not count.
    pub async fn wait_assigned(&self, proc: &Proc) {
        let (db, pid) = (self.db.clone(), proc.pid() as i32);
        wait_for(Duration::from_secs(120), &format!("{} to own partitions", proc.name), || {
            let db = db.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM workers WHERE pid = $1 AND stopped_at IS NULL AND partitions <> '{}'::jsonb",
                )
                .bind(pid)
                .fetch_one(&db)
                .await
                .is_ok_and(|n| n > 0)
            }
        })
        .await;
    }

    /// Worker id of the worker process `proc` (from the `workers` table).
    pub async fn worker_id(&self, proc: &Proc) -> uuid::Uuid {
        sqlx::query_scalar("SELECT id FROM workers WHERE pid = $1 ORDER BY started_at DESC LIMIT 1")
            .bind(proc.pid() as i32)
            .fetch_one(&self.db)
            .await
            .expect("worker row")
    }

    /// Waits until every task in `ids` is terminal; panics after `timeout`
    /// naming how many are not.
    pub async fn wait_terminal(&self, ids: &[String], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM tasks WHERE id = ANY($1) AND status NOT IN ('success', 'failed', 'cancelled')",
            )
            .bind(ids)
            .fetch_one(&self.db)
            .await
            .expect("count open tasks");
            if open == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "{open} of {} tasks not terminal after {timeout:?}", ids.len());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Stores a new API key of `tenant` with `scopes` (limited to `queues` when
/// given) in the database of `db`, as `yadtq-gateway keys create` does, and
/// returns its token.
pub async fn mint_key(
    db: &PgPool,
    tenant: &str,
    scopes: &[yadtq_core::auth::Scope],
    queues: Option<&[&str]>,
) -> String {
    let key = yadtq_core::store::keys::NewKey {
        tenant: tenant.into(),
        name: "test".into(),
        scopes: scopes.to_vec(),
        queues: queues.map(|q| q.iter().map(|s| s.to_string()).collect()),
    };
    yadtq_core::store::keys::create(db, &key, "test-harness").await.expect("mint an API key").token
}

/// `url` with its database replaced by `database`, its query (`?sslmode=…`) kept.
pub fn database_url_for(url: &str, database: &str) -> String {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, format!("?{q}")),
        None => (url, String::new()),
    };
    let base = path.rsplit_once('/').map(|(b, _)| b).expect("the database URL has a database name");
    format!("{base}/{database}{query}")
}

async fn yadtq_migrate(db: &PgPool) {
    // The services migrate on start too; doing it here lets tests read tables
    // before any process has started. The migrations embedded in yadtq-core,
    // built with the binaries, not the folder as it is now.
    yadtq_core::store::MIGRATOR.run(db).await.expect("migrate test database");
}

/// Writes `dir/nginx.conf` for an nginx run in the foreground with its pid,
/// logs and temporary files in `dir`, with `http` (directives) inside its
/// `http {}` block; returns its path, for `nginx -p <dir> -c <path>`.
pub fn write_nginx_conf(dir: &Path, http: &str) -> PathBuf {
    let conf = format!(
        "daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{http}
}}
",
        dir = dir.display()
    );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

/// SIGTERM to `child`, then waits up to `timeout` for it to exit, and
/// SIGKILLs it if it has not: its exit status, `None` when it was killed.
/// (nginx's master stops its workers on SIGTERM; a SIGKILLed master would
/// leave them running, still listening.)
pub fn terminate(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A started process; killed with SIGKILL when dropped.
pub struct Proc {
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
    name: String,
}

impl Proc {
    /// Operating-system pid (also after the process ended).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for a clean exit; returns whether it exited 0.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut c) = self.child.take() else { return false };
        terminate(&mut c, timeout).is_some_and(|status| status.success())
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit
    /// status, or `None` when it is still running (it is left running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(Instant::now() < deadline, "{}: no '{needle}' in log after {timeout:?}", self.name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A running gateway and an HTTP client for it that sends the stack's
/// admin key ([`Stack::api_key`]); [`Client`]'s methods are its own.
pub struct Gateway {
    client: Client,
    /// The process.
    pub proc: Proc,
}

impl std::ops::Deref for Gateway {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Gateway {
    /// A client of this gateway that sends `key` as its bearer token (none: no
    /// `Authorization` header).
    pub fn as_key(&self, key: Option<&str>) -> Client {
        Client { key: key.map(str::to_string), ..self.client.clone() }
    }
}

/// An HTTP client of one gateway, with the API key it sends.
#[derive(Clone)]
pub struct Client {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer <key>`.
    pub key: Option<String>,
}

/// An HTTP answer: status, selected headers and the parsed JSON body (Null when not JSON).
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// `Content-Type` header.
    pub content_type: String,
    /// `Location` header.
    pub location: Option<String>,
    /// Body as JSON.
    pub body: Value,
    /// Body as text.
    pub text: String,
    /// Every header.
    pub headers: reqwest::header::HeaderMap,
}

impl Client {
    fn authorised(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    async fn answer(resp: reqwest::Response) -> Answer {
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (status, content_type, location) =
            (resp.status().as_u16(), header("content-type").unwrap_or_default(), header("location"));
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Answer {
            status,
            content_type,
            location,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
            headers,
        }
    }

    /// Sends `method` to `path` with exactly `headers` (no default
    /// `Content-Type`) and an optional body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        // The stack's key unless the caller sends an Authorization header of its own.
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
            req = self.authorised(req);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        Self::answer(req.send().await.expect("request")).await
    }

    /// `host:port` of the gateway, for raw TCP clients.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// POSTs raw `body` to `path` with extra headers.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>, headers: &[(&str, &str)]) -> Answer {
        let mut req =
            self.authorised(self.http.post(format!("{}{path}", self.base))).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::answer(req.body(body).send().await.expect("POST")).await
    }

    /// POSTs JSON `body` to `/tasks`.
    pub async fn submit(&self, body: &Value) -> Answer {
        self.post_raw("/tasks", body.to_string(), &[]).await
    }

    /// GETs `path` and returns the response unread (e.g. an event stream).
    pub async fn get_response(&self, path: &str) -> reqwest::Response {
        self.authorised(self.http.get(format!("{}{path}", self.base))).send().await.expect("GET")
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> Answer {
        Self::answer(self.authorised(self.http.get(format!("{}{path}", self.base))).send().await.expect("GET")).await
    }

    /// Polls `GET /tasks/{id}` until the task is terminal.
    pub async fn wait_task(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let a = self.get(&format!("/tasks/{id}")).await;
            let status = a.body["status"].as_str().unwrap_or_default().to_string();
            if matches!(status.as_str(), "success" | "failed" | "cancelled") {
                return a.body;
            }
            assert!(Instant::now() < deadline, "task {id} still {status} after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Default headers that send `key` as `Authorization: Bearer <key>`, for
/// HTTP clients of a gateway built outside [`Client`].
pub fn bearer_headers(key: &str) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse().expect("a token is visible ASCII"));
    h
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Polls `check` every 100 ms until it is true; panics naming `what` after `timeout`.
pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops and starts the shared local servers (`scripts/kafka.sh`,
/// `scripts/postgres.sh`) for fault tests. Only possible when `scripts/test.sh`
/// started them itself (it sets `YADTQ_TEST_LOCAL_SERVICES=1`); against a
/// user's own servers the fault tests that need it panic with a clear message.
pub struct Servers;

/// Runs `scripts/<service>.sh <args>` (without the exported server URLs,
/// which make the scripts leave servers alone) and returns its standard
/// output; its messages (standard error) go to the test's. Panics when it fails.
fn run_script(service: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scripts/{service}.sh"));
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("KAFKA_BOOTSTRAP")
        .stderr(Stdio::inherit())
        .output()
        .expect("run server script");
    assert!(out.status.success(), "scripts/{service}.sh {} failed", args.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Servers {
    fn script(service: &str, action: &str) {
        assert!(
            std::env::var("YADTQ_TEST_LOCAL_SERVICES").as_deref() == Ok("1"),
            "this fault test stops and starts {service}: run it through scripts/test.sh with the local servers"
        );
        run_script(service, &[action]);
    }

    /// Stops the Kafka broker (SIGTERM, clean shutdown).
    pub fn stop_kafka() {
        Self::script("kafka", "stop");
    }

    /// Starts the Kafka broker on the same log directory and waits until it answers.
    pub fn start_kafka() {
        Self::script("kafka", "start");
    }

    /// Stops PostgreSQL (fast shutdown: clients are disconnected).
    pub fn stop_postgres() {
        Self::script("postgres", "stop");
    }

    /// Starts PostgreSQL and waits until it accepts connections.
    pub fn start_postgres() {
        Self::script("postgres", "start");
    }
}

impl Proc {
    /// Sends `signal` (e.g. `STOP`, `CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Stack {
    /// Lets this stack's `tasks` table hold `status` and puts the tasks
    /// `ids` in it, as a newer release (its migration, then its writes)
    /// would during a rolling upgrade.
    pub async fn put_in_new_status(&self, status: &str, ids: &[&str]) {
        sqlx::query(&format!(
            "ALTER TABLE tasks DROP CONSTRAINT tasks_status_check, ADD CONSTRAINT tasks_status_check CHECK (status IN
                 ('waiting', 'queued', 'scheduled', 'processing', 'success', 'failed', 'cancelled', '{status}'))"
        ))
        .execute(&self.db)
        .await
        .expect("widen the status CHECK");
        sqlx::query("UPDATE tasks SET status = $1 WHERE id = ANY($2)")
            .bind(status)
            .bind(ids)
            .execute(&self.db)
            .await
            .expect("put tasks in the new status");
    }

    /// Ids of `n` tasks submitted through `gw`, built by `body(i)`; asserts each is accepted.
    pub async fn submit_many(&self, gw: &Gateway, n: usize, body: impl Fn(usize) -> Value) -> Vec<String> {
        let answers = futures::future::join_all((0..n).map(|i| gw.submit_owned(body(i)))).await;
        answers
            .into_iter()
            .map(|a| {
                assert!(a.status == 202 || a.status == 200, "{}", a.text);
                a.body["id"].as_str().expect("id").to_string()
            })
            .collect()
    }

    /// Tasks among `ids` that were claimed other than exactly once (from `task_attempts`).
    pub async fn not_run_once(&self, ids: &[String]) -> Vec<(String, i64)> {
        sqlx::query_as(
            "SELECT t.id, count(a.attempt) FROM tasks t LEFT JOIN task_attempts a ON a.task_id = t.id
             WHERE t.id = ANY($1) GROUP BY t.id HAVING count(a.attempt) <> 1",
        )
        .bind(ids)
        .fetch_all(&self.db)
        .await
        .expect("attempt counts")
    }

    /// Asserts each of `ids` was claimed exactly once. On failure the message
    /// holds each offending task's attempts (worker, outcome, error, times),
    /// their workers' rows and the load average, so a failure seen once in CI
    /// tells a re-run caused by a starved heartbeat (first attempt
    /// `worker_lost`) from a double claim.
    pub async fn assert_ran_once(&self, ids: &[String], what: &str) {
        let bad = self.not_run_once(ids).await;
        if bad.is_empty() {
            return;
        }
        let bad_ids: Vec<String> = bad.iter().map(|(id, _)| id.clone()).collect();
        // One line per row, formatted by PostgreSQL: this is a failure report, not data.
        let attempts: Vec<String> = sqlx::query_scalar(
            "SELECT format('task %s attempt %s on worker %s: outcome %s, error %s, %s .. %s',
                           task_id, attempt, worker_id, outcome, error, started_at, finished_at)
             FROM task_attempts WHERE task_id = ANY($1) ORDER BY task_id, attempt",
        )
        .bind(&bad_ids)
        .fetch_all(&self.db)
        .await
        .expect("attempt history");
        let workers: Vec<String> = sqlx::query_scalar(
            "SELECT format('worker %s: state %s, started %s, stopped %s, last heartbeat %s',
                           id, state, started_at, stopped_at, last_heartbeat_at)
             FROM workers WHERE id IN (SELECT worker_id FROM task_attempts WHERE task_id = ANY($1))",
        )
        .bind(&bad_ids)
        .fetch_all(&self.db)
        .await
        .expect("workers of the attempts");
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let mut report =
            format!("{what}: {} of {} tasks were not claimed exactly once (load average {load})", bad.len(), ids.len());
        for line in attempts.iter().chain(&workers) {
            report.push_str("\n  ");
            report.push_str(line);
        }
        panic!("{report}");
    }

    /// Count of `ids` in `status`.
    pub async fn count_status(&self, ids: &[String], status: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE id = ANY($1) AND status = $2")
            .bind(ids)
            .bind(status)
            .fetch_one(&self.db)
            .await
            .expect("count")
    }

    /// Waits until `worker` holds at least `n` `processing` tasks; returns their ids.
    pub async fn wait_processing_on(&self, worker: uuid::Uuid, n: i64, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let ids: Vec<String> =
                sqlx::query_scalar("SELECT id FROM tasks WHERE status = 'processing' AND worker_id = $1")
                    .bind(worker)
                    .fetch_all(&self.db)
                    .await
                    .unwrap_or_default();
            if ids.len() as i64 >= n {
                return ids;
            }
            assert!(Instant::now() < deadline, "worker {worker} holds {} processing tasks, wanted {n}", ids.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Client {
    /// POSTs an owned JSON body to `/tasks` (for building many futures).
    pub async fn submit_owned(&self, body: Value) -> Answer {
        self.submit(&body).await
    }

    /// Number of long-polls and event streams the gateway holds now, from
    /// its `yadtq_gateway_waiters` gauge: how a test knows a client's wait
    /// has reached the gateway before it acts.
    pub async fn waiters(&self) -> f64 {
        metric_sample(&self.get("/metrics").await.text, "yadtq_gateway_waiters")
    }
}

/// Value of the unlabelled sample `name` in a Prometheus text page (0 when absent).
pub fn metric_sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// An `echo` task to insert straight through `yadtq_core::store` (bypassing
/// the gateway), with `POST /tasks`' defaults: 3 retries, 300 s timeout,
/// queue `default`, no delay. `args` is JSON array text; the request hash is
/// derived from the id.
pub fn echo_task(id: String, args: String) -> yadtq_core::store::tasks::NewTask {
    yadtq_core::store::tasks::NewTask {
        trace: None,
        unique: None,
        request_hash: format!("hash-{id}"),
        id: yadtq_core::names::TaskId::parse(id).expect("a task id"),
        tenant: yadtq_core::names::Tenant::default_tenant(),
        name: yadtq_core::names::TaskName::parse("echo", 64).expect("a task name"),
        args,
        kwargs: "{}".into(),
        queue: yadtq_core::names::QueueName::parse("default").expect("a queue name"),
        max_retries: 3,
        timeout_seconds: 300.0,
        run_at: None,
        retry_backoff: Default::default(),
    }
}

/// The local three-node Kafka cluster of `scripts/kafka-cluster.sh` (KRaft,
/// replication factor 3, `min.insync.replicas=2`), for the broker failover
/// test: its bootstrap servers, crashing and restarting a node (node N is
/// broker id N), and what the cluster's metadata says about a topic.
#[derive(Clone)]
pub struct Cluster {
    bootstrap: String,
    // One client for every metadata query: librdkafka keeps connections to
    // the live brokers and moves off a dead one by itself.
    meta: std::sync::Arc<BaseConsumer>,
}

/// One partition as the cluster's metadata shows it (broker ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Partition number.
    pub id: i32,
    /// Broker leading it; -1 while it has none.
    pub leader: i32,
    /// Brokers holding a replica.
    pub replicas: Vec<i32>,
    /// In-sync replicas: the brokers an `acks=all` write waits for.
    pub isr: Vec<i32>,
}

/// How long one metadata or watermark query may take before the test fails.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

impl Cluster {
    /// The cluster named by `YADTQ_KAFKA_CLUSTER`, which `scripts/test.sh`
    /// sets after starting it; `None` when unset (the test is then skipped).
    pub fn from_env() -> Option<Self> {
        let bootstrap = std::env::var("YADTQ_KAFKA_CLUSTER").ok().filter(|b| !b.is_empty())?;
        let meta = kafka_config(&bootstrap)
            .set("client.id", "yadtq-tests-cluster-metadata")
            .create()
            .expect("metadata client");
        Some(Self { bootstrap, meta: std::sync::Arc::new(meta) })
    }

    /// The bootstrap servers, comma separated.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// SIGKILLs broker `node` (1 to 3), as a crash would; returns once the
    /// process is gone. Panics when the script fails (e.g. the node is not running).
    pub async fn kill(&self, node: i32) {
        Self::script(&["kill", &node.to_string()]).await;
    }

    /// Starts broker `node` again on its old log directory; returns once it is
    /// a registered, unfenced broker of the cluster (the script waits 90 s at
    /// most, then fails, and so does this).
    pub async fn restart(&self, node: i32) {
        Self::script(&["restart", &node.to_string()]).await;
    }

    /// Node id of the active controller (the KRaft quorum's leader). With
    /// every node both broker and controller, killing it costs an election
    /// before the controller can fence the dead broker.
    pub async fn controller(&self) -> i32 {
        let out = Self::script(&["controller"]).await;
        out.trim().parse().unwrap_or_else(|_| panic!("controller id, got {out:?}"))
    }

    async fn script(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            run_script("kafka-cluster", &args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .expect("cluster script")
    }

    /// The partitions of `topic` in id order. Panics when the metadata cannot
    /// be read within 10 s or names no such topic.
    pub async fn partitions(&self, topic: &str) -> Vec<PartitionState> {
        let (meta, topic) = (self.meta.clone(), topic.to_string());
        tokio::task::spawn_blocking(move || {
            let md = meta.fetch_metadata(Some(&topic), METADATA_TIMEOUT).expect("cluster metadata");
            let t = md.topics().iter().find(|t| t.name() == topic).expect("topic in metadata");
            assert!(t.error().is_none(), "metadata of {topic}: {:?}", t.error());
            let mut parts: Vec<PartitionState> = t
                .partitions()
                .iter()
                .map(|p| PartitionState {
                    id: p.id(),
                    leader: p.leader(),
                    replicas: p.replicas().to_vec(),
                    isr: p.isr().to_vec(),
                })
                .collect();
            parts.sort_by_key(|p| p.id);
            parts
        })
        .await
        .expect("metadata task")
    }

    /// Ids of the brokers in the cluster's metadata: the registered, unfenced
    /// ones. Panics when the metadata cannot be read within 10 s.
    pub async fn brokers(&self) -> Vec<i32> {
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || {
            let md = meta.fetch_metadata(None, METADATA_TIMEOUT).expect("cluster metadata");
            let mut ids: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
            ids.sort_unstable();
            ids
        })
        .await
        .expect("metadata task")
    }

    /// Records in each partition of `topic`, in partition id order (high
    /// minus low watermark, asked of each partition's leader). Panics after
    /// 10 s without an answer.
    pub async fn records(&self, topic: &str) -> Vec<i64> {
        let ids: Vec<i32> = self.partitions(topic).await.iter().map(|p| p.id).collect();
        let (meta, topic) = (self.meta.clone(), topic.to_string());
        tokio::task::spawn_blocking(move || {
            ids.iter()
                .map(|&p| {
                    let (low, high) = meta.fetch_watermarks(&topic, p, METADATA_TIMEOUT).expect("watermarks");
                    high - low
                })
                .collect()
        })
        .await
        .expect("watermarks task")
    }

    /// Broker leading the partition of `__consumer_offsets` that holds
    /// `group`: the group's coordinator, which receives its heartbeats, joins
    /// and offset commits.
    pub async fn coordinator(&self, group: &str) -> i32 {
        let offsets = self.partitions("__consumer_offsets").await;
        // Kafka's own mapping: Utils.abs(groupId.hashCode()) % partitions,
        // with Java's String.hashCode over UTF-16 units.
        let hash = group.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
        let abs = if hash == i32::MIN { 0 } else { hash.abs() };
        let id = abs % offsets.len() as i32;
        offsets.iter().find(|p| p.id == id).expect("coordinator partition").leader
    }

    /// Deletes `topics` (a test's own, so the cluster does not accumulate
    /// partitions that every broker restart must recover); errors are ignored.
    pub async fn delete_topics(&self, topics: &[String]) {
        let admin: Result<AdminClient<DefaultClientContext>, _> = kafka_config(&self.bootstrap).create();
        if let Ok(admin) = admin {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            let _ = admin.delete_topics(&names, &AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT))).await;
        }
    }
}

/// A TCP proxy to PostgreSQL on loopback that a test can cut, to take one
/// process's database away while the others keep theirs. While cut, it closes
/// every open connection and refuses new ones at once (as a dead server would).
#[derive(Clone)]
pub struct PgCut {
    /// `postgres://…` URL through the proxy, for the process's `DATABASE_URL`.
    pub url: String,
    cut: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl PgCut {
    /// Starts a proxy in front of the server of `database_url`.
    pub async fn start(database_url: &str) -> Self {
        let (head, rest) = database_url.split_once('@').expect("DATABASE_URL has user@host");
        let (server, db) = rest.split_once('/').expect("DATABASE_URL has a database");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("{head}@{}/{db}", listener.local_addr().expect("proxy addr"));
        let (cut, _) = tokio::sync::watch::channel(false);
        let cut = std::sync::Arc::new(cut);
        let (server, state) = (server.to_string(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if *state.borrow() {
                    continue; // dropped: the connection is closed at once
                }
                let (server, mut cut_rx) = (server.clone(), state.subscribe());
                tokio::spawn(async move {
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&server).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = cut_rx.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Self { url, cut }
    }

    /// Cuts (`true`) or restores (`false`) the database behind the proxy.
    pub fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

impl Stack {
    /// Starts a worker like [`Stack::worker`] whose PostgreSQL goes through `cut`.
    pub async fn worker_via(&self, cut: &PgCut, name: &str, args: &[&str]) -> Proc {
        let mut via = Self { extra_env: self.extra_env.clone(), ..self.shallow() };
        via.extra_env.push(("DATABASE_URL".into(), cut.url.clone()));
        via.worker(name, args).await
    }

    /// This stack with `env` set for the processes started through the
    /// copy (over [`Stack::set_env`]'s), e.g. another `DATABASE_URL` or Kafka
    /// credentials for one process.
    pub fn with_env(&self, env: &[(&str, &str)]) -> Self {
        let mut copy = Self { extra_env: self.extra_env.clone(), ..self.shallow() };
        copy.extra_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        copy
    }

    fn shallow(&self) -> Self {
        Self {
            database_url: self.database_url.clone(),
            namespace: self.namespace.clone(),
            kafka: self.kafka.clone(),
            db: self.db.clone(),
            launch: self.launch.clone(),
            api_key: self.api_key.clone(),
            http: self.http.clone(),
            extra_env: Vec::new(),
        }
    }
}
