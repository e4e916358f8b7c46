//! The machine and the versions the figures were taken with.

use std::process::Command;

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok()?;
    let s = String::from_utf8_lossy(if o.stdout.is_empty() { &o.stderr } else { &o.stdout }).to_string();
    s.lines().next().map(|l| l.trim().to_string()).filter(|l| !l.is_empty())
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `(label, value)` lines describing the machine.
pub async fn describe(db: &sqlx::PgPool, celery: Option<&serde_json::Value>) -> Vec<(String, String)> {
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kib: f64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
        .unwrap_or_default();
    let pg: String = sqlx::query_scalar("SHOW server_version").fetch_one(db).await.unwrap_or_else(|_| "unknown".into());
    let pg_fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(db).await.unwrap_or_default();
    let pg_sc: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(db).await.unwrap_or_default();
    let kafka = std::env::var("YADTQ_BENCH_KAFKA_VERSION").unwrap_or_else(|_| "unknown".into());
    let mut v = vec![
        ("CPU".to_string(), format!("{cores} cores, {model}")),
        ("Memory".into(), format!("{:.1} GiB", mem_kib / 1024.0 / 1024.0)),
        ("Kernel".into(), format!("{} ({os})", read("/proc/sys/kernel/osrelease").trim())),
        ("rustc".into(), first_line("rustc", &["--version"]).unwrap_or_else(|| "unknown".into())),
        ("PostgreSQL".into(), format!("{pg} (fsync={pg_fsync}, synchronous_commit={pg_sc})")),
        ("Kafka".into(), format!("{kafka} (single node, KRaft)")),
    ];
    match celery {
        Some(c) => {
            let s = |k: &str| c[k].as_str().unwrap_or("unknown").to_string();
            v.push((
                "Celery".into(),
                format!(
                    "{} (kombu {}, billiard {}, redis-py {}, Python {})",
                    s("celery"),
                    s("kombu"),
                    s("billiard"),
                    s("redis_py"),
                    s("python")
                ),
            ));
            v.push(("Redis".into(), s("redis_server")));
        }
        None => {
            v.push(("Celery".into(), "not run".into()));
            v.push(("Redis".into(), "not run".into()));
        }
    }
    v
}
