//! Encrypted and authenticated connections (docs/deployment.md, "Encrypted
//! and authenticated connections") against the secured servers of
//! `scripts/secured.sh`: PostgreSQL accepting TLS only (`sslmode=verify-full`,
//! a scram-sha-256 password or a client certificate) and a Kafka broker whose
//! one listener is SASL_SSL (SCRAM), both with the certificates of
//! `scripts/certs.sh`. Skipped, with a message, when
//! `YADTQ_SECURED_DATABASE_URL` is not set (`scripts/test.sh` starts the
//! servers and sets it).

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde_json::json;
use yadtq_core::kafka_security::{KafkaSecurity, Mechanism, Protocol};
use yadtq_tests::{free_port, Stack};

/// Generous bound on a process's start or exit; a hang fails the test, it measures nothing.
const START: Duration = Duration::from_secs(60);

/// The secured servers, as `scripts/secured.sh env` describes them.
struct Secured {
    /// Superuser URL with `sslmode=verify-full` and the CA as `sslrootcert`.
    database_url: String,
    /// The SASL_SSL listener's bootstrap address.
    kafka: String,
    /// Folder of `ca.pem`, `client.pem` and `client.key`.
    certs: PathBuf,
    user: String,
    password: String,
}

impl Secured {
    fn from_env() -> Option<Self> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let Some(database_url) = var("YADTQ_SECURED_DATABASE_URL") else {
            eprintln!(
                "skipped: YADTQ_SECURED_DATABASE_URL is not set. Run scripts/test.sh (it starts the secured \
                 servers), or scripts/secured.sh start and eval \"$(scripts/secured.sh env)\""
            );
            return None;
        };
        let need = |n: &str| var(n).unwrap_or_else(|| panic!("{n} is not set (scripts/secured.sh env sets it)"));
        Some(Self {
            database_url,
            kafka: need("YADTQ_SECURED_KAFKA"),
            certs: PathBuf::from(need("YADTQ_SECURED_CERTS")),
            user: need("YADTQ_SECURED_KAFKA_USERNAME"),
            password: need("YADTQ_SECURED_KAFKA_PASSWORD"),
        })
    }

    fn cert(&self, file: &str) -> String {
        self.certs.join(file).to_string_lossy().into_owned()
    }

    /// The services' Kafka settings for these servers, with SASL `mechanism`.
    fn kafka_env(&self, mechanism: &str) -> Vec<(&'static str, String)> {
        vec![
            ("YADTQ_KAFKA_SECURITY_PROTOCOL", "sasl_ssl".into()),
            ("YADTQ_KAFKA_SASL_MECHANISM", mechanism.into()),
            ("YADTQ_KAFKA_SASL_USERNAME", self.user.clone()),
            ("YADTQ_KAFKA_SASL_PASSWORD", self.password.clone()),
            ("YADTQ_KAFKA_SSL_CA", self.cert("ca.pem")),
        ]
    }

    /// A stack on these servers whose processes get no Kafka security
    /// settings unless a test gives them.
    async fn bare_stack(&self, test: &str) -> Stack {
        Stack::with_servers(test, &self.database_url, &self.kafka).await
    }

    /// A stack on these servers whose processes use SCRAM-SHA-512 and the CA.
    async fn stack(&self, test: &str) -> Stack {
        let mut stack = self.bare_stack(test).await;
        for (k, v) in self.kafka_env("SCRAM-SHA-512") {
            stack.set_env(k, &v);
        }
        stack
    }

    /// A metadata client of the tests' own, on the same security settings
    /// code as the services (`protocol` and, when given, SASL and the CA).
    fn kafka_client(&self, protocol: Protocol, sasl: bool) -> BaseConsumer {
        let ca = self.certs.join("ca.pem");
        let security = KafkaSecurity::new(
            protocol,
            sasl.then_some((Mechanism::ScramSha512, self.user.as_str(), self.password.as_str())),
            protocol.as_str().ends_with("ssl").then_some(ca.as_path()),
        );
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.kafka).set("client.id", "yadtq-tests-secured");
        security.apply(&mut c);
        c.create().expect("kafka client")
    }
}

/// `url` with another user and no password, authenticated by the client
/// certificate of `scripts/certs.sh` (CN yadtq_cert).
fn with_client_certificate(url: &str, s: &Secured) -> String {
    let mut u = reqwest::Url::parse(url).expect("database URL");
    u.set_username("yadtq_cert").expect("user");
    u.set_password(None).expect("password");
    u.query_pairs_mut().append_pair("sslcert", &s.cert("client.pem")).append_pair("sslkey", &s.cert("client.key"));
    u.to_string()
}

/// `url` with `key` set to `value` in its query (added, or replaced), or removed when `value` is `None`.
fn with_query(url: &str, key: &str, value: Option<&str>) -> String {
    let mut u = reqwest::Url::parse(url).expect("database URL");
    let pairs: Vec<(String, String)> = u.query_pairs().into_owned().filter(|(k, _)| k != key).collect();
    let mut q = u.query_pairs_mut();
    q.clear().extend_pairs(pairs);
    if let Some(v) = value {
        q.append_pair(key, v);
    }
    drop(q);
    u.to_string()
}

#[tokio::test]
async fn a_task_runs_end_to_end_over_tls_and_sasl_ssl() {
    let Some(secured) = Secured::from_env() else { return };
    let stack = secured.stack("secured_e2e").await;
    // The gateway authenticates to PostgreSQL by client certificate and to
    // Kafka with SCRAM-SHA-256; the worker with passwords and SCRAM-SHA-512.
    let cert_url = with_client_certificate(&stack.database_url, &secured);
    let gw = stack
        .with_env(&[("DATABASE_URL", &cert_url), ("YADTQ_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")])
        .gateway(&[])
        .await;
    let _worker = stack.worker("worker", &[]).await;

    let a = gw.submit(&json!({"task": "add", "args": [2, 3]})).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let id = a.body["id"].as_str().expect("id");
    let done = gw.wait_task(id, START).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["result"], 5, "{done}");
    let ready = gw.get("/readyz").await;
    assert_eq!(ready.body["kafka"], "up", "{}", ready.text);

    // Every connection to this test's database is encrypted, the gateway's
    // under the certificate's user and the worker's under the password's.
    let conns: Vec<(String, bool)> = sqlx::query_as(
        "SELECT a.usename::text, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
         WHERE a.datname = current_database() AND a.backend_type = 'client backend'",
    )
    .fetch_all(&stack.db)
    .await
    .expect("connections");
    assert!(conns.iter().all(|(_, ssl)| *ssl), "unencrypted connections: {conns:?}");
    for user in ["yadtq_cert", "yadtq"] {
        assert!(conns.iter().any(|(u, _)| u == user), "no connection as {user}: {conns:?}");
    }

    // The task's record is in the topic, read over SASL_SSL by a client of the tests'.
    let client = secured.kafka_client(Protocol::SaslSsl, true);
    let topic = yadtq_core::config::Names::new(&stack.namespace).task_topic();
    let records = tokio::task::spawn_blocking(move || {
        let md = client.fetch_metadata(Some(&topic), Duration::from_secs(10)).expect("metadata over SASL_SSL");
        let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
        parts
            .iter()
            .map(|&p| {
                let (low, high) = client.fetch_watermarks(&topic, p, Duration::from_secs(10)).expect("watermarks");
                high - low
            })
            .sum::<i64>()
    })
    .await
    .expect("watermarks");
    assert_eq!(records, 1, "the task's one record");
}

/// A process that must stop at start: its binary, log name, environment and
/// what its log must say.
struct Refusal {
    bin: &'static str,
    name: &'static str,
    env: Vec<(&'static str, String)>,
    expected: &'static [&'static str],
}

#[tokio::test]
async fn wrong_credentials_or_a_missing_ca_stop_the_services_at_start_naming_the_setting() {
    let Some(secured) = Secured::from_env() else { return };
    let stack = secured.bare_stack("secured_refused").await;
    let wrong = "not-the-password-42";
    let env_with = |changes: &[(&'static str, Option<&str>)]| -> Vec<(&'static str, String)> {
        let mut env = secured.kafka_env("SCRAM-SHA-512");
        for (k, v) in changes {
            env.retain(|(name, _)| name != k);
            if let Some(v) = v {
                env.push((k, v.to_string()));
            }
        }
        env
    };
    let wrong_pg_password = {
        let mut u = reqwest::Url::parse(&stack.database_url).expect("url");
        u.set_password(Some(wrong)).expect("password");
        u.to_string()
    };
    let no_root_cert = with_query(&stack.database_url, "sslrootcert", None);
    let cases = vec![
        Refusal {
            bin: "yadtq-gateway",
            name: "kafka-password",
            env: env_with(&[("YADTQ_KAFKA_SASL_PASSWORD", Some(wrong))]),
            expected: &["SASL authentication error", "invalid credentials", "YADTQ_KAFKA_SASL_PASSWORD"],
        },
        Refusal {
            bin: "yadtq-worker",
            name: "worker-kafka-password",
            env: env_with(&[("YADTQ_KAFKA_SASL_PASSWORD", Some(wrong))]),
            expected: &["SASL authentication error", "YADTQ_KAFKA_SASL_PASSWORD"],
        },
        Refusal {
            bin: "yadtq-gateway",
            name: "kafka-no-ca",
            env: env_with(&[("YADTQ_KAFKA_SSL_CA", None)]),
            expected: &["certificate verify failed", "--kafka-ssl-ca"],
        },
        Refusal {
            bin: "yadtq-gateway",
            name: "kafka-missing-ca-file",
            env: env_with(&[("YADTQ_KAFKA_SSL_CA", Some("/nonexistent/ca.pem"))]),
            expected: &["--kafka-ssl-ca / YADTQ_KAFKA_SSL_CA: cannot read /nonexistent/ca.pem"],
        },
        Refusal {
            bin: "yadtq-gateway",
            name: "pg-password",
            env: env_with(&[("DATABASE_URL", Some(&wrong_pg_password))]),
            expected: &["password authentication failed", "(DATABASE_URL)"],
        },
        Refusal {
            bin: "yadtq-gateway",
            name: "pg-no-ca",
            env: env_with(&[("DATABASE_URL", Some(&no_root_cert))]),
            expected: &["invalid peer certificate", "sslrootcert", "(DATABASE_URL)"],
        },
    ];
    let mut started = Vec::new();
    for case in &cases {
        let env: Vec<(&str, &str)> = case.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let listen = format!("127.0.0.1:{}", free_port());
        let args: Vec<&str> =
            if case.bin == "yadtq-gateway" { vec!["serve", "--listen", &listen] } else { vec!["--concurrency", "1"] };
        started.push((stack.with_env(&env).spawn(case.bin, &args, case.name), case.name, case.expected));
    }
    for (mut proc, name, expected) in started {
        let status = proc.wait_exit(START).unwrap_or_else(|| panic!("{name}: still running; log:\n{}", proc.log()));
        let log = proc.log();
        assert!(!status.success(), "{name}: exited {status}; log:\n{log}");
        for needle in expected {
            assert!(log.contains(needle), "{name}: no '{needle}' in log:\n{log}");
        }
        assert!(!log.contains(wrong), "{name}: the password is in the log:\n{log}");
        assert!(!log.contains(&secured.password), "{name}: the password is in the log:\n{log}");
    }
}

#[tokio::test]
async fn plaintext_connections_are_refused() {
    let Some(secured) = Secured::from_env() else { return };
    // Processes of this stack get no Kafka security settings: plaintext.
    let stack = secured.bare_stack("secured_plaintext").await;

    // PostgreSQL: no pg_hba.conf line takes an unencrypted connection.
    let plain_url = with_query(&stack.database_url, "sslmode", Some("disable"));
    let listen = format!("127.0.0.1:{}", free_port());
    let mut gw = stack.with_env(&[("DATABASE_URL", &plain_url)]).spawn(
        "yadtq-gateway",
        &["serve", "--listen", &listen],
        "pg-plaintext",
    );
    let status = gw.wait_exit(START).unwrap_or_else(|| panic!("still running; log:\n{}", gw.log()));
    let log = gw.log();
    assert!(!status.success(), "exited {status}; log:\n{log}");
    assert!(log.contains("no encryption") && log.contains("(DATABASE_URL)"), "{log}");

    // Kafka: a plaintext client gets no metadata from the SASL_SSL listener...
    let client = secured.kafka_client(Protocol::Plaintext, false);
    let meta = tokio::task::spawn_blocking(move || client.fetch_metadata(None, Duration::from_secs(5)).map(|_| ()))
        .await
        .expect("metadata");
    assert!(meta.is_err(), "a plaintext client read the broker's metadata");

    // ...and a gateway configured for plaintext takes it for an outage: it
    // starts (PostgreSQL is fine), says so at start, and reports Kafka down.
    let gw = stack.gateway(&[]).await;
    let ready = gw.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert!(ready.body["kafka"].as_str().is_some_and(|k| k.starts_with("down")), "{}", ready.text);
    assert!(gw.proc.log().contains("Kafka not reachable at start"), "{}", gw.proc.log());
}
