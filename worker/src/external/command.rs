//! `kind = "command"`: the configured program runs in its own process
//! group, with the task JSON on stdin and the JSON result on stdout.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use crate::handler::{HandlerError, TaskContext};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use super::{
    cancelled, check_timeout, error, excerpt, tag, task_json, CommandConfig, LoadError, ALWAYS_PASSED_ENV, ATTEMPT_ENV,
    BODY_EXCERPT_BYTES, MAX_STDERR_LIMIT, PARENTS_FILE_ENV, SCHEDULED_FOR_ENV, TASK_ID_ENV, TRACEPARENT_ENV,
    TRACESTATE_ENV,
};

/// Variables the worker sets for each attempt, which a handler's `env` or
/// `pass_env` cannot name.
const ATTEMPT_ENVS: [&str; 6] =
    [ATTEMPT_ENV, TASK_ID_ENV, SCHEDULED_FOR_ENV, TRACEPARENT_ENV, TRACESTATE_ENV, PARENTS_FILE_ENV];

/// A workflow node's parents written for its command ([`PARENTS_FILE_ENV`]),
/// removed when dropped (the command has ended, or could not start).
struct ParentsFile(std::path::PathBuf);

impl ParentsFile {
    /// Writes `parents` to a file of its own in the temporary directory.
    fn write(parents: &Value) -> Result<Self, HandlerError> {
        let path = std::env::temp_dir().join(format!("yadtq-parents-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, serde_json::to_vec(parents).expect("JSON values serialise"))
            .map_err(|e| error("command_failed", true, format!("cannot write the parents' file: {e} (retryable)")))?;
        Ok(Self(path))
    }
}

impl Drop for ParentsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A program serving one task name: run with the configured argv (no shell)
/// in its own process group, the task JSON on stdin, the JSON result on stdout.
#[derive(Debug)]
pub struct CommandHandler {
    argv: Vec<String>,
    /// `PATH` and the handler's `pass_env`: the names taken from the
    /// worker's environment at each call.
    passed: Vec<String>,
    env: BTreeMap<String, String>,
    pub(super) timeout: Option<Duration>,
    pub(super) max_stderr_bytes: usize,
    max_stdout_bytes: usize,
}

impl CommandHandler {
    pub(super) fn new(name: &str, cfg: CommandConfig) -> Result<Self, LoadError> {
        let err = |field: &str, message: String| LoadError::new(Some(name), Some(field), message);
        let Some(program) = cfg.argv.first() else {
            return Err(err(
                "argv",
                "is empty: it must name a program, e.g. argv = [\"/usr/bin/python3\", \"job.py\"]".into(),
            ));
        };
        if program.is_empty() {
            return Err(err("argv[0]", "is empty: it must name a program".into()));
        }
        if let Some(i) = cfg.argv.iter().position(|a| a.contains('\0')) {
            return Err(err(&format!("argv[{i}]"), "contains a NUL character".into()));
        }
        if program.contains('/') && !Path::new(program).exists() {
            return Err(err(
                "argv[0]",
                format!("`{program}` does not exist (relative paths are taken from the worker's working directory)"),
            ));
        }
        for (k, v) in &cfg.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(err(
                    &format!("env.{k}"),
                    "names must be non-empty without `=` or NUL; values without NUL".into(),
                ));
            }
        }
        for (i, k) in cfg.pass_env.iter().enumerate() {
            if k.is_empty() || k.contains(['=', '\0']) {
                return Err(err(&format!("pass_env[{i}]"), "names must be non-empty without `=` or NUL".into()));
            }
        }
        if let Some(k) = cfg.env.keys().chain(&cfg.pass_env).find(|k| ATTEMPT_ENVS.contains(&k.as_str())) {
            return Err(err(
                if cfg.pass_env.contains(k) { "pass_env" } else { "env" },
                format!("`{k}` is set by the worker for each attempt"),
            ));
        }
        let mut passed: Vec<String> = ALWAYS_PASSED_ENV.iter().map(|k| k.to_string()).collect();
        for k in &cfg.pass_env {
            if !passed.contains(k) {
                passed.push(k.clone());
            }
        }
        let timeout = cfg.timeout.map(|t| check_timeout(name, t)).transpose()?;
        if cfg.max_stderr_bytes > MAX_STDERR_LIMIT {
            return Err(err("max_stderr_bytes", format!("must be at most {MAX_STDERR_LIMIT}")));
        }
        if cfg.max_stdout_bytes == 0 {
            return Err(err("max_stdout_bytes", "must be at least 1".into()));
        }
        Ok(Self {
            argv: cfg.argv,
            passed,
            env: cfg.env,
            timeout,
            max_stderr_bytes: cfg.max_stderr_bytes,
            max_stdout_bytes: cfg.max_stdout_bytes,
        })
    }

    /// Runs the program once for `ctx`: writes the task JSON to its stdin and
    /// closes it, reads stdout in full and parses it as the JSON result.
    ///
    /// Its environment holds only `PATH` and the names of `pass_env` (from
    /// the worker's environment, when set there), the handler's `env` table,
    /// `YADTQ_ATTEMPT`, `YADTQ_TASK_ID`, `YADTQ_SCHEDULED_FOR` (for a task a
    /// schedule fired) and the attempt's `TRACEPARENT` (and `TRACESTATE`).
    ///
    /// The program runs in its own process group. When it exits, when its own
    /// `timeout` (seconds) passes, when `ctx.cancel` fires, or when this future
    /// is dropped (the worker's task timeout), every process left in the group
    /// is killed with SIGKILL; the program itself is reaped.
    ///
    /// Errors: `command_failed` for a non-zero exit or a death by signal
    /// (retryable, except exit code 2, which means "permanent"), with the
    /// last `max_stderr_bytes` of stderr in the message, or when the program
    /// cannot be started (permanent when it is missing or not executable);
    /// `invalid_result` (permanent) when exit 0 comes with stdout that is not
    /// JSON; `result_too_large` (permanent) for stdout above
    /// `max_stdout_bytes`; `timeout` (retryable) for the handler's own
    /// timeout; `cancelled` when `ctx.cancel` fires.
    pub async fn call(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let mut cmd = tokio::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        // An allowlist: PATH and the handler's `pass_env` from the worker's
        // environment (read now, as the worker has it), then its `env` table
        // and the attempt's own variables.
        cmd.env_clear();
        for k in &self.passed {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.envs(&self.env).env(ATTEMPT_ENV, ctx.attempt.to_string()).env(TASK_ID_ENV, &ctx.id);
        if let Some(tick) = ctx.scheduled_for() {
            cmd.env(SCHEDULED_FOR_ENV, tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        let _parents = match &ctx.parents {
            Some(p) => {
                let file = ParentsFile::write(p)?;
                cmd.env(PARENTS_FILE_ENV, &file.0);
                Some(file)
            }
            None => None,
        };
        if let Some(trace) = &ctx.trace {
            cmd.env(TRACEPARENT_ENV, &trace.traceparent);
            if !trace.tracestate.is_empty() {
                cmd.env(TRACESTATE_ENV, &trace.tracestate);
            }
        }
        let mut child = cmd.spawn().map_err(|e| {
            let retryable = !matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied);
            error("command_failed", retryable, format!("cannot start `{}`: {e} ({})", self.argv[0], tag(retryable)))
        })?;
        let pid = child.id().expect("a child just spawned has a pid");
        // With process_group(0) the group id is the child's pid.
        let group = ProcessGroup { pgid: Pid::from_raw(pid as i32), armed: AtomicBool::new(true) };

        let own_timeout = async {
            match self.timeout {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let stopped = tokio::select! {
            r = self.run(&mut child, &group, task_json(&ctx)) => Ok(r),
            _ = own_timeout => Err(error(
                "timeout",
                true,
                format!("command exceeded its handler timeout of {} s (retryable)", self.timeout.unwrap_or_default().as_secs_f64()),
            )),
            _ = ctx.cancel.cancelled() => Err(cancelled()),
        };
        match stopped {
            Ok(finished) => self.judge(finished?),
            Err(e) => {
                group.kill_and_disarm();
                let _ = child.wait().await;
                Err(e)
            }
        }
    }

    /// Feeds stdin, drains stdout and stderr, and waits for the program's exit;
    /// kills the rest of its group once it has exited (before reaping it, so
    /// the group id cannot have been reused).
    async fn run(&self, child: &mut Child, group: &ProcessGroup, input: Vec<u8>) -> Result<Finished, HandlerError> {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let pid = group.pgid;
        let exited = tokio::task::spawn_blocking(move || wait_exit_without_reaping(pid));
        let feed = async move {
            // The program may exit without reading its input: EPIPE is fine.
            let _ = stdin.write_all(&input).await;
            drop(stdin);
        };
        let leader = async {
            let _ = exited.await;
            group.kill_and_disarm();
        };
        let ((), out, err, ()) = tokio::join!(
            feed,
            read_capped(stdout, self.max_stdout_bytes, group),
            read_tail(stderr, self.max_stderr_bytes),
            leader
        );
        let status = child.wait().await.map_err(|e| {
            error("command_failed", true, format!("cannot wait for `{}`: {e} (retryable)", self.argv[0]))
        })?;
        Ok(Finished { status, stdout: out, stderr: err })
    }

    fn judge(&self, f: Finished) -> Result<Value, HandlerError> {
        let Some(stdout) = f.stdout else {
            return Err(error(
                "result_too_large",
                false,
                format!("stdout went past max_stdout_bytes ({} bytes); the command was killed", self.max_stdout_bytes),
            ));
        };
        let stderr = f.stderr.render();
        match f.status.code() {
            Some(0) => serde_json::from_slice(&stdout).map_err(|e| {
                error(
                    "invalid_result",
                    false,
                    format!(
                        "exit code 0 but stdout is not JSON ({e}): {}; stderr: {stderr}",
                        excerpt(&stdout, BODY_EXCERPT_BYTES)
                    ),
                )
            }),
            Some(code) => {
                let retryable = code != 2;
                Err(error(
                    "command_failed",
                    retryable,
                    format!("exit code {code} ({}); stderr: {stderr}", tag(retryable)),
                ))
            }
            None => {
                let signal = f.status.signal().unwrap_or_default();
                Err(error("command_failed", true, format!("killed by signal {signal} (retryable); stderr: {stderr}")))
            }
        }
    }
}

/// What a program left behind: exit status, stdout (None past the cap) and
/// the end of stderr.
struct Finished {
    status: ExitStatus,
    stdout: Option<Vec<u8>>,
    stderr: Tail,
}

/// Kills a process group with SIGKILL on drop, unless disarmed.
///
/// Disarmed once the group has been killed after its leader exited and before
/// the leader is reaped: after that the leader's pid (the group id) may be
/// reused, so no signal is sent to it any more.
struct ProcessGroup {
    pgid: Pid,
    armed: AtomicBool,
}

impl ProcessGroup {
    fn kill(&self) {
        if self.armed.load(Ordering::SeqCst) {
            // ESRCH (the group is gone already) is the only expected error.
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }

    fn kill_and_disarm(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Blocks until process `pid` has exited, leaving it a zombie (WNOWAIT) so its
/// pid, and so its group id, stays reserved until it is reaped.
fn wait_exit_without_reaping(pid: Pid) {
    while let Err(Errno::EINTR) = waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {}
}

/// Reads `r` to its end; `None` (after killing the group) once it goes past `max` bytes.
async fn read_capped(mut r: impl AsyncRead + Unpin, max: usize, group: &ProcessGroup) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return Some(buf),
            Ok(n) if buf.len() + n > max => {
                group.kill();
                return None;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The last bytes of a stream and how many came before them.
struct Tail {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Tail {
    fn render(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = text.trim_end();
        match (self.dropped, text.is_empty()) {
            (0, true) => "(empty)".into(),
            (0, false) => text.to_string(),
            (n, _) => format!("[{n} earlier bytes cut] {text}"),
        }
    }
}

/// Reads `r` to its end, keeping only the last `max` bytes.
async fn read_tail(mut r: impl AsyncRead + Unpin, max: usize) -> Tail {
    let mut tail = Tail { bytes: Vec::new(), dropped: 0 };
    let mut chunk = vec![0u8; 16 * 1024];
    let trim = |t: &mut Tail, keep: usize| {
        if t.bytes.len() > keep {
            let cut = t.bytes.len() - keep;
            t.bytes.drain(..cut);
            t.dropped += cut as u64;
        }
    };
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.bytes.extend_from_slice(&chunk[..n]);
                // Trim only past twice the cap, so the copying stays linear.
                if tail.bytes.len() > 2 * max {
                    trim(&mut tail, max);
                }
            }
        }
    }
    trim(&mut tail, max);
    tail
}

#[cfg(test)]
mod tests {
    use super::super::tests::ctx;
    use super::super::{ExternalHandler, HandlersFile};
    use super::*;
    use serde_json::json;

    fn command(toml_body: &str) -> ExternalHandler {
        let f = HandlersFile::parse(&format!("[handlers.job]\nkind = \"command\"\n{toml_body}")).unwrap();
        f.get("job").unwrap().clone()
    }

    /// Pids whose command line contains `marker`.
    fn processes_with(marker: &str) -> Vec<u32> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(pid);
            }
        }
        found
    }

    async fn wait_gone(marker: &str) {
        for _ in 0..50 {
            if processes_with(marker).is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("processes with `{marker}` survive: {:?}", processes_with(marker));
    }

    async fn wait_present(marker: &str, n: usize) {
        for _ in 0..50 {
            if processes_with(marker).len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {n} processes with `{marker}` started");
    }

    #[tokio::test]
    async fn a_command_gets_the_task_on_stdin_and_answers_on_stdout() {
        let h = command(
            "argv = [\"/bin/sh\", \"-c\", \"printf '{\\\"in\\\": '; cat; printf ', \\\"env\\\": \\\"%s%s\\\", \\\"token\\\": \\\"%s/%s\\\"}' \\\"$GREETING\\\" \\\"$DATABASE_URL\\\" \\\"$YADTQ_TASK_ID\\\" \\\"$YADTQ_ATTEMPT\\\"\"]\nenv = { GREETING = \"hi\" }",
        );
        let v = h.call(ctx(json!([1, "two"]))).await.unwrap();
        assert_eq!(
            v,
            json!({"in": {"id": "t-1", "task": "job", "args": [1, "two"], "kwargs": {"k": "v"}, "attempt": 1}, "env": "hi", "token": "t-1/1"})
        );
    }

    /// A task a schedule fired gets its tick on stdin and in the environment.
    #[tokio::test]
    async fn a_scheduled_task_gets_its_tick() {
        let h = command(
            "argv = [\"/bin/sh\", \"-c\", \"printf '{\\\"in\\\": '; cat; printf ', \\\"env\\\": \\\"%s\\\"}' \\\"$YADTQ_SCHEDULED_FOR\\\"\"]",
        );
        let mut c = ctx(json!([]));
        c.id = "acme/sched:nightly:1790000000".into();
        let v = h.call(c).await.unwrap();
        assert_eq!(v["in"]["scheduled_for"], "2026-09-21T14:13:20Z");
        assert_eq!(v["env"], "2026-09-21T14:13:20Z");
        let v = h.call(ctx(json!([]))).await.unwrap();
        assert!(v["in"].get("scheduled_for").is_none() && v["env"] == "", "{v}");
    }

    #[tokio::test]
    async fn command_failures_carry_stderr_and_the_exit_code_convention() {
        let e = command("argv = [\"/bin/sh\", \"-c\", \"echo bad input >&2; exit 1\"]").call(ctx(json!([]))).await;
        let e = e.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("command_failed", true));
        assert_eq!(e.message, "exit code 1 (retryable); stderr: bad input");

        let e = command("argv = [\"/bin/sh\", \"-c\", \"exit 2\"]").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!(
            (e.kind.as_str(), e.retryable, e.message.as_str()),
            ("command_failed", false, "exit code 2 (permanent); stderr: (empty)")
        );

        let e = command("argv = [\"/bin/sh\", \"-c\", \"echo not json\"]").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("invalid_result", false), "{e}");

        let e = command("argv = [\"/bin/sh\", \"-c\", \"kill -9 $$\"]").call(ctx(json!([]))).await.unwrap_err();
        assert!(e.message.starts_with("killed by signal 9"), "{e}");

        let e = command("argv = [\"no-such-program-yadtq\"]").call(ctx(json!([]))).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("command_failed", false), "{e}");

        let e = command(
            "argv = [\"/bin/sh\", \"-c\", \"head -c 5000 /dev/zero >&2; echo END >&2; exit 3\"]\nmax_stderr_bytes = 4",
        )
        .call(ctx(json!([])))
        .await
        .unwrap_err();
        assert_eq!(e.message, "exit code 3 (retryable); stderr: [5000 earlier bytes cut] END");

        let e = command("argv = [\"/bin/sh\", \"-c\", \"yes\"]\nmax_stdout_bytes = 100000").call(ctx(json!([]))).await;
        assert_eq!(e.unwrap_err().kind, "result_too_large");
    }

    #[tokio::test]
    async fn the_whole_group_dies_when_the_program_exits_or_times_out() {
        // The program exits at once, leaving a background child holding stdout.
        let marker = "sleep 301.11";
        let h = command(&format!("argv = [\"/bin/sh\", \"-c\", \"{marker} & echo 7\"]"));
        assert_eq!(h.call(ctx(json!([]))).await.unwrap(), json!(7));
        wait_gone(marker).await;

        // The handler's own timeout.
        let marker = "sleep 301.22";
        let h = command(&format!("argv = [\"/bin/sh\", \"-c\", \"{marker} & {marker}; :\"]\ntimeout = 0.5"));
        let e = h.call(ctx(json!([]))).await.unwrap_err();
        assert_eq!((e.kind.as_str(), e.retryable), ("timeout", true), "{e}");
        wait_gone(marker).await;
    }

    #[tokio::test]
    async fn dropping_or_cancelling_the_attempt_kills_the_whole_group() {
        // Dropped, as the worker's task timeout does.
        let marker = "sleep 301.33";
        let h = command(&format!("argv = [\"/bin/sh\", \"-c\", \"{marker} & {marker}; :\"]"));
        let r = tokio::time::timeout(Duration::from_millis(300), h.call(ctx(json!([])))).await;
        assert!(r.is_err(), "still running when dropped");
        wait_gone(marker).await;

        // Cancelled through the context.
        let marker = "sleep 301.44";
        let h = command(&format!("argv = [\"/bin/sh\", \"-c\", \"{marker} & {marker}; :\"]"));
        let c = ctx(json!([]));
        let cancel = c.cancel.clone();
        let run = tokio::spawn(async move { h.call(c).await });
        wait_present(marker, 2).await;
        cancel.cancel();
        assert_eq!(run.await.unwrap().unwrap_err().kind, "cancelled");
        wait_gone(marker).await;
    }
}
