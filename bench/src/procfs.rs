//! Resident memory and CPU time of processes, from /proc.

use std::collections::HashMap;

/// VmRSS of `pid` in MiB (None when the process is gone).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_string())
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux in practice).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Busy and total jiffies of the whole machine (/proc/stat `cpu` line).
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The named process groups of a running stack: its gateway, this bench
/// process (the load generator) and its workers.
pub fn stack_groups(gateway: u32, workers: &[u32]) -> Vec<(&'static str, u32)> {
    let mut named = vec![("gateway", gateway), ("bench client (this process)", std::process::id())];
    named.extend(workers.iter().map(|&p| ("workers", p)));
    named
}

/// A snapshot of CPU time per process group: named pids plus every process
/// whose command is `postgres` (the server, all databases) or `java` (Kafka).
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    at: std::time::Instant,
    groups: HashMap<String, u64>,
    machine_busy: u64,
    per_pid: HashMap<u32, (String, u64)>,
}

impl CpuSnapshot {
    pub fn take(named: &[(&str, u32)]) -> Self {
        let mut per_pid = HashMap::new();
        for &(g, pid) in named {
            if let Some(t) = cpu_ticks(pid) {
                per_pid.insert(pid, (g.to_string(), t));
            }
        }
        for pid in all_pids() {
            if per_pid.contains_key(&pid) {
                continue;
            }
            let group = match comm(pid).as_deref() {
                Some("postgres") => "postgres",
                Some("java") => "kafka (java)",
                _ => continue,
            };
            if let Some(t) = cpu_ticks(pid) {
                per_pid.insert(pid, (group.to_string(), t));
            }
        }
        let mut groups = HashMap::new();
        for (g, t) in per_pid.values() {
            *groups.entry(g.clone()).or_insert(0) += t;
        }
        Self { at: std::time::Instant::now(), groups, machine_busy: machine_jiffies().0, per_pid }
    }

    /// CPU used per group between `self` and `later`, in percent of one core,
    /// plus "machine (all)" for every process. Processes that started after
    /// `self` count from zero; those that ended in between are lost.
    pub fn since(&self, later: &CpuSnapshot) -> Vec<(String, f64)> {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let hz = clk_tck();
        let mut used: HashMap<String, u64> = HashMap::new();
        for (pid, (g, t)) in &later.per_pid {
            let before = self.per_pid.get(pid).map(|(_, b)| *b).unwrap_or(0);
            *used.entry(g.clone()).or_insert(0) += t.saturating_sub(before);
        }
        let _ = &self.groups;
        let mut v: Vec<(String, f64)> = used.into_iter().map(|(g, t)| (g, t as f64 / hz / secs * 100.0)).collect();
        v.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
        let machine = (later.machine_busy - self.machine_busy) as f64 / hz / secs * 100.0;
        let named: f64 = v.iter().map(|(_, p)| p).sum();
        v.push(("other processes (not part of the benchmark)".into(), (machine - named).max(0.0)));
        v.push(("machine (all processes)".into(), machine));
        v
    }
}

/// Share of the machine's CPU (percent of all cores) busy over the next `secs`.
pub async fn machine_busy_pct(secs: f64) -> f64 {
    let (b0, t0) = machine_jiffies();
    tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
    let (b1, t1) = machine_jiffies();
    (b1 - b0) as f64 / ((t1 - t0).max(1)) as f64 * 100.0
}
