//! `yadtq-bench`: benchmarks on the real stack (release binaries, fresh
//! database and Kafka namespace per scenario run), with Celery side by side.
//! Prints the machine and one Markdown table. See docs/benchmarks.md;
//! `scripts/bench.sh` starts the servers, builds and runs this.
//!
//! Exit status 1 when the report lists problems (a scenario that failed, a
//! figure printed n/a, an error count above 0), so a script or CI notices a
//! benchmark that measured nothing; what was left out on purpose (Celery not
//! configured, scenarios that need a stack of the bench's own) is listed as
//! skipped and does not count.

mod client;
mod machine;
mod procfs;
mod report;
mod scenarios;
mod stack;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use futures::FutureExt;

use report::Results;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// 1: POST /tasks closed loop (K clients) and fixed rate.
    Submit,
    /// 2 (+5): drain N queued echo tasks with W workers; footprint and CPU split.
    Drain,
    /// 3 (+5): submit N with workers running, wait for every result.
    E2e,
    /// 4: fixed task rate, submit→start / submit→finish.
    Rate,
    /// 6: SIGKILL a worker holding tasks, time until they run elsewhere.
    Recovery,
    /// 7: PostgreSQL alone: a task's insert, claim and outcome without HTTP or Kafka (a ceiling for 3).
    Pg,
    /// 8: GET /tasks on --listing-rows tasks per filter, and submits while 128 clients list.
    Listing,
    /// Scenarios 2 and 3 with Celery (needs --celery-python).
    Celery,
}

/// Benchmarks of yadtq (and Celery) on this machine.
#[derive(Debug, Clone, Parser)]
#[command(version)]
// A flag given twice takes its last value, so a preset (`scripts/bench.sh
// --smoke`) can be followed by the caller's own flags.
#[command(args_override_self = true)]
pub struct Args {
    /// Runs per scenario; the table shows min / median / max over them.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Scenarios to run (comma separated; given twice, the last list counts).
    #[arg(
        long,
        value_delimiter = ',',
        action = clap::ArgAction::Set,
        default_value = "submit,drain,e2e,rate,recovery,pg,listing,celery"
    )]
    pub scenarios: Vec<Scenario>,
    /// Concurrent HTTP clients (scenario 1, and for submitting in 2 and 3).
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds of each submit measurement (closed loop and fixed rate).
    #[arg(long, default_value_t = 10.0)]
    pub submit_secs: f64,
    /// Requests per second of the fixed-rate submit measurement.
    #[arg(long, default_value_t = 2000.0)]
    pub submit_rate: f64,
    /// Tasks per request of the batch submit measurement (when the gateway has `/tasks/batch`).
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Tasks queued before the workers start (scenario 2).
    #[arg(long, default_value_t = 5000)]
    pub drain_tasks: usize,
    /// Worker processes (scenarios 2, 3, 4; Celery worker nodes).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Concurrency of each worker (Celery: prefork processes per node).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Tasks run through a throwaway stack before the first measurement, so the
    /// broker's JVM has compiled its hot paths (0: no warm-up). Without it the
    /// first run of every scenario is the slowest.
    #[arg(long, default_value_t = 10_000)]
    pub warmup_tasks: usize,
    /// Tasks of the end-to-end scenario (3).
    #[arg(long, default_value_t = 2000)]
    pub e2e_tasks: usize,
    /// Tasks of the PostgreSQL-alone scenario (7), rounded up to a multiple of 128 (8 loops × 16).
    #[arg(long, default_value_t = 20_000)]
    pub pg_tasks: usize,
    /// Tasks per second of the fixed-rate latency scenario (4).
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Seconds of the fixed-rate latency scenario (4).
    #[arg(long, default_value_t = 10.0)]
    pub rate_secs: f64,
    /// `sleep 0.1` tasks of the long-poll measurement (scenario 4), one at a time.
    #[arg(long, default_value_t = 50)]
    pub long_polls: usize,
    /// `sleep 30` tasks in flight when a worker is killed (scenario 6; split over two workers).
    #[arg(long, default_value_t = 8)]
    pub recovery_tasks: usize,
    /// Tasks loaded before the listing scenario (8).
    #[arg(long, default_value_t = 1_000_000)]
    pub listing_rows: usize,
    /// Requests per filter timed in the listing scenario (8), one at a time.
    #[arg(long, default_value_t = 200)]
    pub listing_requests: usize,
    /// Clients listing back to back while submits are measured (scenario 8).
    #[arg(long, default_value_t = 128)]
    pub listing_clients: usize,
    /// Limits scenarios 2 and 3 run under, each variant in every run (so
    /// their ratios come from one run): `none`, `global` (one bucket), `keyed`
    /// (1,000 buckets); never reached, applied through a `tasks` list.
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, default_value = "none")]
    pub limits: Vec<scenarios::limits::LimitVariant>,
    /// Python with celery and redis installed (scripts/bench.sh makes a venv).
    #[arg(long, env = "YADTQ_BENCH_PYTHON")]
    pub celery_python: Option<PathBuf>,
    /// The Celery script (default bench/celery/celery_bench.py).
    #[arg(long, env = "YADTQ_BENCH_CELERY_SCRIPT")]
    pub celery_script: Option<PathBuf>,
    /// Redis for Celery (its database is flushed).
    #[arg(long, env = "YADTQ_BENCH_REDIS")]
    pub redis_url: Option<String>,
    /// Extra environment for the gateway and worker processes, `NAME=VALUE`
    /// (repeatable), e.g. `--env YADTQ_PREFETCH=32` to try a setting.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub service_env: Vec<String>,
    /// Also write every figure (all runs) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let a = Args::parse();
    let started = Instant::now();
    let load_before = loadavg();
    if let Some((url, key)) = stack::external_gateway()? {
        return external(&a, &url, &key).await;
    }
    let admin = sqlx::PgPool::connect(
        &std::env::var("DATABASE_URL")
            .map_err(|_| anyhow::anyhow!("DATABASE_URL is not set (scripts/bench.sh sets it)"))?,
    )
    .await?;
    let want = |s: Scenario| a.scenarios.contains(&s);
    let celery_on = want(Scenario::Celery) && scenarios::celery::configured(&a).is_some();
    let celery_versions = if celery_on { scenarios::celery::versions(&a).await } else { None };
    let machine = machine::describe(&admin, celery_versions.as_ref()).await;

    let busy_before = procfs::machine_busy_pct(3.0).await;
    if busy_before > 15.0 {
        eprintln!("[bench] WARNING: the machine is {busy_before:.0}% busy before the benchmark; figures will be low and noisy");
    }
    let (mut yadtq, mut celery) = (Results::default(), Results::default());
    let mut problems = Vec::new();
    if a.warmup_tasks > 0 {
        let t = Instant::now();
        eprintln!("[bench] warm-up: {} tasks through a throwaway stack (not measured) …", a.warmup_tasks);
        match caught(scenarios::e2e::warm_up_stack(&a)).await {
            Ok(()) => eprintln!("[bench]   done in {:.1} s", t.elapsed().as_secs_f64()),
            Err(e) => problems.push(format!("warm-up: {e:#}")),
        }
    }
    for run in 1..=a.runs {
        macro_rules! step {
            ($s:expr, $name:expr, $f:expr) => {
                if want($s) {
                    let t = Instant::now();
                    eprintln!("[bench] run {run}/{}: {} …", a.runs, $name);
                    match caught($f).await {
                        Ok(()) => eprintln!("[bench]   done in {:.1} s", t.elapsed().as_secs_f64()),
                        Err(e) => {
                            eprintln!("[bench]   FAILED: {e:#}");
                            problems.push(format!("run {run}, {}: {e:#}", $name));
                        }
                    }
                }
            };
        }
        step!(Scenario::Submit, "submit", scenarios::submit::run(&a, &mut yadtq));
        for &v in &a.limits {
            step!(Scenario::Drain, format!("drain{}", v.suffix()), scenarios::drain::run(&a, &mut yadtq, v));
        }
        for &v in &a.limits {
            step!(Scenario::E2e, format!("end to end{}", v.suffix()), scenarios::e2e::run(&a, &mut yadtq, v));
        }
        step!(Scenario::Rate, "fixed rate", scenarios::rate::run(&a, &mut yadtq));
        step!(Scenario::Recovery, "recovery", scenarios::recovery::run(&a, &mut yadtq));
        step!(Scenario::Pg, "PostgreSQL alone", scenarios::pg_path::run(&a, &mut yadtq));
        step!(Scenario::Listing, "listing", scenarios::listing::run(&a, &mut yadtq));
        if celery_on {
            if want(Scenario::Drain) {
                step!(Scenario::Celery, "celery drain", scenarios::celery::drain(&a, &mut celery));
            }
            if want(Scenario::E2e) {
                step!(Scenario::Celery, "celery end to end", scenarios::celery::e2e(&a, &mut celery));
            }
        }
    }
    // Not configured is a choice (YADTQ_BENCH_NO_CELERY=1, or yadtq-bench run
    // without --celery-python), not a failure: the comparison is optional.
    let mut skipped = Vec::new();
    if want(Scenario::Celery) && !celery_on {
        skipped.push(
            "Celery: not configured (no --celery-python / YADTQ_BENCH_PYTHON; scripts/bench.sh sets it unless \
             YADTQ_BENCH_NO_CELERY=1)"
                .to_string(),
        );
    }
    problems.extend(yadtq.problems("yadtq"));
    problems.extend(celery.problems("Celery"));

    println!("## yadtq benchmark\n");
    for (k, v) in &machine {
        println!("- **{k}**: {v}");
    }
    println!(
        "- **Parameters**: {} runs; {} clients; workers {}×{} (Celery: {} prefork nodes × {}); {}; default liveness timings; \
         CPU busy before start: {busy_before:.0}% of all cores; load average before / after: {} / {}",
        a.runs,
        a.clients,
        a.workers,
        a.concurrency,
        a.workers,
        a.concurrency,
        build_description(),
        load_before,
        loadavg()
    );
    println!();
    print!("{}", report::table(&yadtq, &celery, a.runs));
    println!(
        "\nmin / median / max are over {} runs (recovery: over every rescued task of every run; n = samples). \
         yadtq/Celery compares medians: above 1 means yadtq has the larger figure (better for /s, worse for ms and s).",
        a.runs
    );
    finish(&a, &problems, &skipped, started, || {
        serde_json::json!({
            "machine": machine.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "yadtq": yadtq.to_json(), "celery": celery.to_json(),
            "problems": problems, "skipped": skipped,
        })
    })
}

/// Which binaries were measured, for the parameters line: "release build",
/// or the directory when `YADTQ_BIN_DIR` names another (the debug smoke run).
fn build_description() -> String {
    let dir = stack::bin_dir();
    if dir.file_name().is_some_and(|n| n == "release") {
        "release build".into()
    } else {
        format!("binaries of {} (not a release build: figures are not comparable)", dir.display())
    }
}

/// The exit status of a report: 0 without problems, 1 with any.
fn exit_status(problems: &[String]) -> u8 {
    u8::from(!problems.is_empty())
}

/// Ends a report: its problems and what was skipped on purpose, the total
/// time since `started`, and the figures (`doc`) written as JSON to `--json`
/// when given. Returns the exit status ([`exit_status`]).
fn finish(
    a: &Args,
    problems: &[String],
    skipped: &[String],
    started: Instant,
    doc: impl FnOnce() -> serde_json::Value,
) -> anyhow::Result<ExitCode> {
    if !skipped.is_empty() {
        println!("\nSkipped (on purpose, not problems):");
        for s in skipped {
            println!("- {s}");
        }
    }
    if !problems.is_empty() {
        println!("\nProblems:");
        for p in problems {
            println!("- {p}");
        }
    }
    println!("\n(total time {:.0} s)", started.elapsed().as_secs_f64());
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&doc())?)?;
    }
    let status = exit_status(problems);
    if status != 0 {
        eprintln!("[bench] {} problem(s), listed at the end of the report: exit status {status}", problems.len());
    }
    Ok(ExitCode::from(status))
}

/// The benchmark against the user's gateway (`YADTQ_URL`, `YADTQ_API_KEY`):
/// only scenario 1, the one that needs no stack of its own (the others start
/// and kill workers and read the database); the rest are listed as skipped.
async fn external(a: &Args, url: &str, key: &str) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut yadtq = Results::default();
    let (mut problems, mut skipped) = (Vec::new(), Vec::new());
    for s in &a.scenarios {
        if *s != Scenario::Submit {
            let name = s.to_possible_value().map_or_else(|| format!("{s:?}"), |v| v.get_name().to_string());
            skipped.push(format!("{name}: not run against YADTQ_URL (it needs a stack of the bench's own)"));
        }
    }
    if a.scenarios.contains(&Scenario::Submit) {
        for run in 1..=a.runs {
            eprintln!("[bench] run {run}/{}: submit against {url} …", a.runs);
            if let Err(e) = scenarios::submit::run_external(a, url, key, &mut yadtq).await {
                eprintln!("[bench]   FAILED: {e:#}");
                problems.push(format!("run {run}, submit: {e:#}"));
            }
        }
    }
    println!("## yadtq benchmark against {url}\n");
    println!("- **Parameters**: {} runs; {} clients; load average at the end: {}", a.runs, a.clients, loadavg());
    println!();
    print!("{}", report::table(&yadtq, &Results::default(), a.runs));
    problems.extend(yadtq.problems("yadtq"));
    finish(
        a,
        &problems,
        &skipped,
        started,
        || serde_json::json!({"gateway": url, "yadtq": yadtq.to_json(), "problems": problems, "skipped": skipped}),
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs one step, turning a panic into its error. The harness's launcher
/// panics when a service does not come up (as tests want); here that fails the
/// step, which is listed under "Problems", not the whole run. The step's
/// processes are killed as its values drop.
async fn caught(step: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    std::panic::AssertUnwindSafe(step).catch_unwind().await.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        Err(anyhow::anyhow!("panicked: {message}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use report::Unit;

    #[test]
    fn a_report_with_problems_exits_non_zero() {
        let mut r = Results::default();
        r.add("4 long-poll", "answer after finish p50", Unit::Ms, f64::NAN);
        assert_eq!(exit_status(&r.problems("yadtq")), 1);
        let mut r = Results::default();
        r.add("1 submit", "accepted", Unit::PerSec, 0.0);
        r.errors("1 submit", "errors", 20_000.0);
        assert_eq!(exit_status(&r.problems("yadtq")), 1);
        let mut r = Results::default();
        r.add("1 submit", "accepted", Unit::PerSec, 2000.0);
        r.errors("1 submit", "errors", 0.0);
        r.skip("1 submit batch", "accepted", "skipped: no batch endpoint");
        assert_eq!(exit_status(&r.problems("yadtq")), 0);
    }

    #[test]
    fn a_preset_can_be_overridden_by_a_later_flag() {
        let a = Args::try_parse_from([
            "yadtq-bench",
            "--runs",
            "1",
            "--scenarios",
            "submit,drain",
            "--env",
            "A=1",
            "--runs",
            "2",
            "--scenarios",
            "pg",
            "--env",
            "B=2",
        ])
        .unwrap();
        assert_eq!((a.runs, a.scenarios.as_slice()), (2, [Scenario::Pg].as_slice()));
        // --env stays repeatable: both settings are kept.
        assert_eq!(a.service_env, ["A=1", "B=2"]);
        let a = Args::try_parse_from(["yadtq-bench", "--scenarios", "submit,drain"]).unwrap();
        assert_eq!(a.scenarios, [Scenario::Submit, Scenario::Drain]);
    }
}
