//! How every yadtq Kafka client (producers, consumers, admin clients) connects
//! to the brokers: plaintext, TLS, SASL or SASL over TLS (SCRAM), with the
//! CA that verifies the brokers' certificates. Explicit settings rather than
//! only `--kafka-option` pass-throughs, so that they are checked at start
//! with errors naming the setting, the password stays out of argv and logs,
//! and a broker that refuses the credentials or the certificate stops the
//! process at start ([`check_broker`]) instead of looking like an outage.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;
use secrecy::{ExposeSecret, SecretString};

/// The environment variable holding the SASL password. Environment only: a
/// flag's value would show in `ps` to every local user.
pub(crate) const PASSWORD_ENV: &str = "YADTQ_KAFKA_SASL_PASSWORD";

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// No encryption, no authentication (the default, for a loopback broker).
    #[value(name = "plaintext")]
    Plaintext,
    /// TLS: encrypted, the broker's certificate verified against the CA and its host name.
    #[value(name = "ssl")]
    Ssl,
    /// SASL authentication without encryption: records cross the network readable.
    #[value(name = "sasl_plaintext")]
    SaslPlaintext,
    /// SASL authentication over TLS.
    #[value(name = "sasl_ssl")]
    SaslSsl,
}

impl Protocol {
    /// The value librdkafka takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        }
    }

    fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }

    fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }
}

/// SASL mechanisms yadtq configures itself; others (GSSAPI, OAUTHBEARER,
/// PLAIN) go through `--kafka-option`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mechanism {
    /// SCRAM with SHA-512 (RFC 5802/7677): the password never crosses the network.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
    /// SCRAM with SHA-256.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
}

impl Mechanism {
    /// The value librdkafka takes (`sasl.mechanism`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }
}

/// Kafka connection security, shared by every process (flags and environment).
/// `Debug` shows the password as redacted.
#[derive(Debug, Clone, Args)]
pub struct KafkaSecurity {
    /// Kafka `security.protocol`: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(
        long = "kafka-security-protocol",
        env = "YADTQ_KAFKA_SECURITY_PROTOCOL",
        value_enum,
        ignore_case = true,
        default_value = "plaintext"
    )]
    pub protocol: Protocol,

    /// SASL mechanism with sasl_ssl or sasl_plaintext: SCRAM-SHA-512 or SCRAM-SHA-256.
    #[arg(
        long = "kafka-sasl-mechanism",
        env = "YADTQ_KAFKA_SASL_MECHANISM",
        value_enum,
        ignore_case = true,
        default_value = "SCRAM-SHA-512"
    )]
    pub sasl_mechanism: Mechanism,

    /// SASL user name. Its password comes from the environment variable
    /// YADTQ_KAFKA_SASL_PASSWORD or from --kafka-sasl-password-file (never a flag).
    #[arg(long = "kafka-sasl-username", env = "YADTQ_KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,

    /// File holding the SASL password (its first line; read at start), e.g. a
    /// mounted secret. Instead of YADTQ_KAFKA_SASL_PASSWORD.
    #[arg(long = "kafka-sasl-password-file", env = "YADTQ_KAFKA_SASL_PASSWORD_FILE")]
    pub sasl_password_file: Option<PathBuf>,

    /// The SASL password from [`PASSWORD_ENV`]; read when the flags are parsed.
    #[arg(skip = password_from_env())]
    sasl_password_env: Option<SecretString>,

    /// PEM file of the CA certificate(s) that verify the brokers' certificates
    /// (ssl, sasl_ssl); the system's CAs when unset. The broker's host name is
    /// always checked against its certificate.
    #[arg(long = "kafka-ssl-ca", env = "YADTQ_KAFKA_SSL_CA")]
    pub ssl_ca: Option<PathBuf>,
}

fn password_from_env() -> Option<SecretString> {
    std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()).map(SecretString::from)
}

impl Default for KafkaSecurity {
    fn default() -> Self {
        Self {
            protocol: Protocol::Plaintext,
            sasl_mechanism: Mechanism::ScramSha512,
            sasl_username: None,
            sasl_password_file: None,
            sasl_password_env: None,
            ssl_ca: None,
        }
    }
}

impl KafkaSecurity {
    /// Plaintext, or `protocol` with SASL `username` and `password` and the
    /// CA file `ssl_ca`, for clients built in code (tests, tools).
    pub fn new(protocol: Protocol, sasl: Option<(Mechanism, &str, &str)>, ssl_ca: Option<&Path>) -> Self {
        let mut s = Self { protocol, ssl_ca: ssl_ca.map(Path::to_path_buf), ..Self::default() };
        if let Some((mechanism, user, password)) = sasl {
            s.sasl_mechanism = mechanism;
            s.sasl_username = Some(user.to_string());
            s.sasl_password_env = Some(SecretString::from(password.to_string()));
        }
        s
    }

    /// The settings from the environment alone (the `YADTQ_KAFKA_*`
    /// variables a gateway or worker reads), checked with
    /// [`KafkaSecurity::validate`]: for Kafka clients built outside the
    /// services, such as the tests' (the `test-support` feature).
    ///
    /// Errors when a variable has an invalid value or the settings are inconsistent.
    #[cfg(any(test, feature = "test-support"))]
    pub fn from_env() -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        struct FromEnv {
            #[command(flatten)]
            security: KafkaSecurity,
        }
        use clap::Parser;
        let security = FromEnv::try_parse_from(["yadtq"])?.security;
        security.validate()?;
        Ok(security)
    }

    /// Checks the settings against each other and the files they name.
    ///
    /// Errors, naming the flag and its environment variable, when: a SASL
    /// protocol lacks a user name or password, or has both password sources;
    /// a user name, password or CA is given for a protocol that would not use
    /// it (the connection would silently be less secure than configured); the
    /// CA or password file cannot be read, or the CA file holds no PEM
    /// certificate.
    pub fn validate(&self) -> anyhow::Result<()> {
        let p = self.protocol.as_str();
        if self.protocol.sasl() {
            anyhow::ensure!(
                self.sasl_username.as_deref().is_some_and(|u| !u.is_empty()),
                "--kafka-security-protocol {p} needs --kafka-sasl-username / YADTQ_KAFKA_SASL_USERNAME"
            );
            match (&self.sasl_password_env, &self.sasl_password_file) {
                (None, None) => anyhow::bail!(
                    "--kafka-security-protocol {p} needs a password: {PASSWORD_ENV} or \
                     --kafka-sasl-password-file / YADTQ_KAFKA_SASL_PASSWORD_FILE"
                ),
                (Some(_), Some(_)) => anyhow::bail!(
                    "both {PASSWORD_ENV} and --kafka-sasl-password-file / YADTQ_KAFKA_SASL_PASSWORD_FILE are set: \
                     give one"
                ),
                (None, Some(_)) => {
                    self.password()?;
                }
                (Some(_), None) => {}
            }
        } else {
            anyhow::ensure!(
                self.sasl_username.is_none() && self.sasl_password_env.is_none() && self.sasl_password_file.is_none(),
                "a Kafka SASL user name or password is set but --kafka-security-protocol / \
                 YADTQ_KAFKA_SECURITY_PROTOCOL is {p}, which sends none: use sasl_ssl"
            );
        }
        if let Some(ca) = &self.ssl_ca {
            anyhow::ensure!(
                self.protocol.tls(),
                "--kafka-ssl-ca / YADTQ_KAFKA_SSL_CA is set but --kafka-security-protocol / \
                 YADTQ_KAFKA_SECURITY_PROTOCOL is {p}, which does not use TLS: use ssl or sasl_ssl"
            );
            let pem = std::fs::read_to_string(ca).map_err(|e| {
                anyhow::anyhow!("--kafka-ssl-ca / YADTQ_KAFKA_SSL_CA: cannot read {}: {e}", ca.display())
            })?;
            anyhow::ensure!(
                pem.contains("-----BEGIN CERTIFICATE-----"),
                "--kafka-ssl-ca / YADTQ_KAFKA_SSL_CA: {} holds no PEM certificate",
                ca.display()
            );
        }
        if self.protocol == Protocol::SaslPlaintext {
            tracing::warn!(
                "--kafka-security-protocol sasl_plaintext: Kafka traffic (task arguments included) is not encrypted"
            );
        }
        Ok(())
    }

    /// The SASL password: the environment's, else the password file's first line.
    fn password(&self) -> anyhow::Result<Option<SecretString>> {
        if let Some(p) = &self.sasl_password_env {
            return Ok(Some(p.clone()));
        }
        let Some(file) = &self.sasl_password_file else { return Ok(None) };
        let text = std::fs::read_to_string(file).map_err(|e| {
            anyhow::anyhow!(
                "--kafka-sasl-password-file / YADTQ_KAFKA_SASL_PASSWORD_FILE: cannot read {}: {e}",
                file.display()
            )
        })?;
        let line = text.lines().next().unwrap_or_default();
        anyhow::ensure!(
            !line.is_empty(),
            "--kafka-sasl-password-file / YADTQ_KAFKA_SASL_PASSWORD_FILE: {} is empty",
            file.display()
        );
        Ok(Some(SecretString::from(line.to_string())))
    }

    /// Sets `security.protocol` and, as configured, the SASL and CA settings on `c`.
    /// A password file that can no longer be read (it was checked by
    /// [`KafkaSecurity::validate`]) leaves the password unset and logs why;
    /// the broker then refuses the client.
    pub fn apply(&self, c: &mut ClientConfig) {
        c.set("security.protocol", self.protocol.as_str());
        if self.protocol.sasl() {
            c.set("sasl.mechanism", self.sasl_mechanism.as_str());
            if let Some(user) = &self.sasl_username {
                c.set("sasl.username", user);
            }
            match self.password() {
                Ok(Some(p)) => {
                    c.set("sasl.password", p.expose_secret());
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "Kafka SASL password unavailable"),
            }
        }
        if self.protocol.tls() {
            if let Some(ca) = &self.ssl_ca {
                c.set("ssl.ca.location", ca.to_string_lossy());
            }
            // librdkafka's default, stated so that no older default or
            // pass-through leaves the host name unchecked by accident.
            c.set("ssl.endpoint.identification.algorithm", "https");
        }
    }
}

/// Errors librdkafka reported to a client, as (code, reason).
#[derive(Default, Clone)]
struct Reported(Arc<Mutex<Vec<(RDKafkaErrorCode, String)>>>);

impl ClientContext for Reported {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(code) = error.rdkafka_error_code() {
            self.0.lock().push((code, reason.to_string()));
        }
    }
}

impl ConsumerContext for Reported {}

/// Error codes that no retry fixes: the broker refused the credentials, or
/// the TLS handshake failed (the broker's certificate is not trusted or does
/// not name the host, or the broker does not speak TLS).
fn is_refusal(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL | RDKafkaErrorCode::SaslAuthenticationFailed
    )
}

/// What [`check_broker`] learnt when the broker did not refuse the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BrokerCheck {
    /// The broker answered a metadata request.
    Reachable,
    /// No answer within the bound (an outage, which yadtq waits out); the last error librdkafka reported.
    Unreachable(String),
}

/// Connects once with `config` (the process's client settings) and waits at
/// most `timeout` for the broker's metadata, returning early when every
/// broker is down.
///
/// Errors when the broker refuses the client's credentials or the TLS
/// handshake fails: the message gives librdkafka's reason and names the
/// settings to check. An unreachable broker is not an error
/// ([`BrokerCheck::Unreachable`]): yadtq accepts tasks while Kafka is down.
pub(crate) async fn check_broker(
    mut config: ClientConfig,
    bootstrap: &str,
    timeout: Duration,
) -> anyhow::Result<BrokerCheck> {
    let reported = Reported::default();
    // A consumer hands errors to its poll without a warning (a producer logs
    // them as ignored events). It never subscribes, so it joins no group.
    config.set("group.id", "yadtq-preflight");
    let client: BaseConsumer<Reported> = config.create_with_context(reported.clone())?;
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        loop {
            let step = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(500));
            let answered = client.fetch_metadata(None, step).is_ok();
            let _ = client.poll(Duration::ZERO); // serves the error callbacks
            let errors = reported.0.lock().clone();
            if let Some((code, reason)) = errors.iter().find(|(c, _)| is_refusal(*c)) {
                anyhow::bail!(
                    "cannot connect to Kafka at {bootstrap}, and no retry would help ({code:?}): {reason}. Check \
                     --kafka-security-protocol, --kafka-sasl-mechanism, --kafka-sasl-username, the password \
                     ({PASSWORD_ENV} or --kafka-sasl-password-file) and --kafka-ssl-ca (YADTQ_KAFKA_* variables)"
                );
            }
            if answered {
                return Ok(BrokerCheck::Reachable);
            }
            let last = errors.last().map(|(c, r)| format!("{c:?}: {r}")).unwrap_or_else(|| "no answer".into());
            if Instant::now() >= deadline || errors.iter().any(|(c, _)| *c == RDKafkaErrorCode::AllBrokersDown) {
                return Ok(BrokerCheck::Unreachable(last));
            }
        }
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        security: KafkaSecurity,
    }

    fn parse(args: &[&str]) -> KafkaSecurity {
        let mut all = vec!["t"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parses").security
    }

    fn with_password(args: &[&str]) -> KafkaSecurity {
        let mut s = parse(args);
        s.sasl_password_env = Some(SecretString::from("hunter2".to_string()));
        s
    }

    #[test]
    fn sasl_ssl_sets_librdkafkas_settings_and_debug_hides_the_password() {
        let ca = std::env::temp_dir().join(format!("yadtq-ca-{}.pem", std::process::id()));
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n").unwrap();
        let s = with_password(&[
            "--kafka-security-protocol",
            "SASL_SSL",
            "--kafka-sasl-mechanism",
            "scram-sha-256",
            "--kafka-sasl-username",
            "yadtq",
            "--kafka-ssl-ca",
            ca.to_str().unwrap(),
        ]);
        s.validate().expect("valid");
        let mut c = ClientConfig::new();
        s.apply(&mut c);
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(c.get("sasl.username"), Some("yadtq"));
        assert_eq!(c.get("sasl.password"), Some("hunter2"));
        assert_eq!(c.get("ssl.ca.location"), ca.to_str());
        assert_eq!(c.get("ssl.endpoint.identification.algorithm"), Some("https"));
        assert!(!format!("{s:?}").contains("hunter2"), "{s:?}");
        std::fs::remove_file(ca).ok();
    }

    #[test]
    fn plaintext_is_the_default_and_sets_no_credentials() {
        let s = parse(&[]);
        s.validate().expect("valid");
        let mut c = ClientConfig::new();
        s.apply(&mut c);
        assert_eq!(c.get("security.protocol"), Some("plaintext"));
        assert_eq!(c.get("sasl.password"), None);
        assert_eq!(c.get("ssl.ca.location"), None);
    }

    #[test]
    fn inconsistent_settings_are_refused_naming_the_setting() {
        let err = |s: KafkaSecurity| s.validate().expect_err("refused").to_string();
        let e = err(parse(&["--kafka-security-protocol", "sasl_ssl"]));
        assert!(e.contains("--kafka-sasl-username / YADTQ_KAFKA_SASL_USERNAME"), "{e}");
        let e = err(parse(&["--kafka-security-protocol", "sasl_ssl", "--kafka-sasl-username", "u"]));
        assert!(e.contains("YADTQ_KAFKA_SASL_PASSWORD"), "{e}");
        let e = err(with_password(&["--kafka-sasl-username", "u"]));
        assert!(e.contains("is plaintext, which sends none"), "{e}");
        let e = err(parse(&["--kafka-security-protocol", "ssl", "--kafka-ssl-ca", "/nonexistent/ca.pem"]));
        assert!(e.contains("--kafka-ssl-ca / YADTQ_KAFKA_SSL_CA: cannot read /nonexistent/ca.pem"), "{e}");
        let e = err(parse(&["--kafka-ssl-ca", "/etc/hostname"]));
        assert!(e.contains("does not use TLS"), "{e}");
        let e = err(parse(&["--kafka-security-protocol", "ssl", "--kafka-ssl-ca", "/etc/hostname"]));
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let e = err(parse(&[
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-username",
            "u",
            "--kafka-sasl-password-file",
            "/nonexistent/pw",
        ]));
        assert!(e.contains("--kafka-sasl-password-file / YADTQ_KAFKA_SASL_PASSWORD_FILE: cannot read"), "{e}");
        let bad = Cli::try_parse_from(["t", "--kafka-security-protocol", "tls"]);
        assert!(bad.is_err(), "an unknown protocol is a usage error");
    }

    #[test]
    fn the_password_file_gives_its_first_line() {
        let file = std::env::temp_dir().join(format!("yadtq-pw-{}", std::process::id()));
        std::fs::write(&file, "s3cret\n").unwrap();
        let s = parse(&[
            "--kafka-security-protocol",
            "sasl_plaintext",
            "--kafka-sasl-username",
            "u",
            "--kafka-sasl-password-file",
            file.to_str().unwrap(),
        ]);
        s.validate().expect("valid");
        let mut c = ClientConfig::new();
        s.apply(&mut c);
        assert_eq!(c.get("sasl.password"), Some("s3cret"));
        std::fs::remove_file(file).ok();
    }
}
