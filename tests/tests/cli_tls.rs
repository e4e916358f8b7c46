//! The `yadtq` CLI over HTTPS: a real nginx (Debian's, installed by
//! scripts/test.sh) terminates TLS in front of a gateway with a certificate
//! from a private CA the test makes (scripts/certs.sh, openssl). The CLI
//! trusts that CA with `--ca-cert` or `YADTQ_CA_CERT`; without it, it fails
//! and says that the gateway's certificate is not trusted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use yadtq_tests::{binary, free_port, wait_for, write_nginx_conf, Stack};

/// The nginx binary: `YADTQ_NGINX`, else the Debian path or `nginx` on PATH.
fn nginx_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("YADTQ_NGINX") {
        return Some(p.into());
    }
    ["/usr/sbin/nginx", "/usr/bin/nginx"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// nginx terminating TLS on a free loopback port in front of `upstream`
/// (`host:port`); stopped on drop.
struct TlsProxy {
    port: u16,
    child: Child,
}

impl TlsProxy {
    fn start(bin: &Path, dir: &Path, certs: &Path, upstream: &str) -> Self {
        let port = free_port();
        let http = format!(
            "    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {certs}/server.pem;
        ssl_certificate_key {certs}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
        }}
    }}",
            certs = certs.display(),
        );
        let conf = write_nginx_conf(dir, &http);
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        TlsProxy { port, child }
    }
}

impl Drop for TlsProxy {
    /// SIGTERM, so the master stops its workers before it exits.
    fn drop(&mut self) {
        yadtq_tests::terminate(&mut self.child, Duration::from_secs(10));
    }
}

/// Runs `yadtq args...` with `YADTQ_API_KEY` = `key` and `env` set, no
/// `YADTQ_CA_CERT` unless `env` sets it.
fn yadtq(key: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let out = Command::new(binary("yadtq"))
        .args(args)
        .env("YADTQ_API_KEY", key)
        .env_remove("YADTQ_URL")
        .env_remove("YADTQ_CA_CERT")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run yadtq");
    eprintln!(
        "$ yadtq {}\n{}{}[{}]",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status
    );
    out
}

#[tokio::test]
async fn the_cli_speaks_https_and_trusts_the_ca_it_is_given() {
    let Some(nginx) = nginx_binary() else {
        // scripts/test.sh installs it; a bare `cargo test` on a machine without it skips.
        eprintln!("skipped: no nginx binary (scripts/test.sh installs Debian's nginx-light)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    let made = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/certs.sh"))
        .arg("make")
        .env("YADTQ_CERTS_DIR", &certs)
        .status()
        .expect("run scripts/certs.sh");
    assert!(made.success(), "scripts/certs.sh make failed");
    let ca = certs.join("ca.pem");
    let ca = ca.to_str().expect("utf-8 path");

    let stack = Stack::new("cli_tls").await;
    let gw = stack.gateway(&[]).await;
    let a = gw.submit(&json!({"task": "echo", "id": "over-tls", "args": ["hi"]})).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let proxy = TlsProxy::start(&nginx, &dir.path().join("nginx"), &certs, gw.addr());
    let url = format!("https://127.0.0.1:{}", proxy.port);
    let key = stack.api_key.as_str();
    wait_for(Duration::from_secs(20), "nginx terminating TLS", || async {
        std::net::TcpStream::connect(("127.0.0.1", proxy.port)).is_ok()
    })
    .await;

    // Trusting the test's CA: the gateway's answer, as over plain HTTP.
    let out = yadtq(key, &[], &["--url", &url, "--ca-cert", ca, "get", "over-tls", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let task: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(task["id"], "over-tls");
    // The same through the environment.
    let out = yadtq(key, &[("YADTQ_URL", &url), ("YADTQ_CA_CERT", ca)], &["get", "over-tls", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Without it: the system's roots do not include the test's CA.
    let out = yadtq(key, &[], &["--url", &url, "get", "over-tls"]);
    assert_eq!(out.status.code(), Some(6), "unreachable: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&url), "names the URL: {err}");
    assert!(err.contains("certificate") && err.contains("UnknownIssuer"), "names the certificate problem: {err}");
    assert!(err.contains("--ca-cert"), "says what to do: {err}");

    // A CA file that is not one is refused before anything is sent.
    let bogus = dir.path().join("not-a-ca.pem");
    std::fs::write(&bogus, "hello").unwrap();
    let out = yadtq(key, &[], &["--url", &url, "--ca-cert", bogus.to_str().unwrap(), "get", "over-tls"]);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-a-ca.pem"));
}
