//! Human output: aligned tables of tasks, attempts and workers.

use comfy_table::{presets, Table};
use serde_json::Value;

/// A borderless table with `header`, columns aligned, never wrapped.
fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(header.iter().copied());
    t
}

/// Prints `t` with its rows' trailing blanks removed.
fn print(t: &Table) {
    for line in t.to_string().lines() {
        // The preset pads every cell by one space: drop the margin it leaves.
        let line = line.strip_prefix(' ').unwrap_or(line);
        println!("{}", line.trim_end());
    }
}

/// A value as a cell: strings without quotes, null as `-`, other JSON compact.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time without its fraction (`2026-12-02T01:20:55Z`), `-` for null.
pub fn time(v: &Value) -> String {
    match v.as_str() {
        Some(t) => match (t.find('.'), t.find(['Z', '+'])) {
            (Some(dot), Some(zone)) if dot < zone => format!("{}{}", &t[..dot], &t[zone..]),
            _ => t.to_string(),
        },
        None => cell(v),
    }
}

/// `kind: message` of an error object, `-` for null.
pub fn error(v: &Value) -> String {
    match (v["kind"].as_str(), v["message"].as_str()) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        _ => cell(v),
    }
}

/// `41% message` of a progress object (whole percents), `-` for null.
pub fn progress(v: &Value) -> String {
    match v["percent"].as_f64() {
        Some(p) => format!("{p:.0}% {}", v["message"].as_str().unwrap_or_default()).trim_end().to_string(),
        None => cell(v),
    }
}

/// What a task came to: its result, its error, or its progress.
fn outcome(t: &Value) -> String {
    let s = if !t["error"].is_null() {
        error(&t["error"])
    } else if !t["result"].is_null() {
        cell(&t["result"])
    } else {
        progress(&t["progress"])
    };
    shorten(&s, 60)
}

/// `s` cut to `max` characters with an ellipsis.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max - 1).collect();
    format!("{cut}…")
}

/// One task, a field per line.
pub fn task(t: &Value) {
    let mut table = table(&["FIELD", "VALUE"]);
    let attempts = format!("{} of {}", cell(&t["attempts"]), t["max_retries"].as_i64().map_or(0, |m| m + 1));
    let rows: [(&str, String); 17] = [
        ("id", cell(&t["id"])),
        ("task", cell(&t["task"])),
        ("queue", cell(&t["queue"])),
        ("status", cell(&t["status"])),
        ("args", cell(&t["args"])),
        ("kwargs", cell(&t["kwargs"])),
        ("result", if t["result"].is_null() { "-".into() } else { t["result"].to_string() }),
        ("error", error(&t["error"])),
        ("progress", progress(&t["progress"])),
        ("attempts", attempts),
        ("timeout", format!("{} s", cell(&t["timeout"]))),
        ("worker", cell(&t["worker_id"])),
        ("created", time(&t["created_at"])),
        ("run at", time(&t["run_at"])),
        ("started", time(&t["started_at"])),
        ("finished", time(&t["finished_at"])),
        ("cancel requested", time(&t["cancel_requested_at"])),
    ];
    for (k, v) in rows {
        table.add_row([k.to_string(), v]);
    }
    print(&table);
}

/// A column of a listing: its header and how a row's cell is made from an item.
pub(crate) type Column = (&'static str, fn(&Value) -> String);

/// `items` as a table of `columns`, a row each.
pub(crate) fn listing(columns: &[Column], items: &[Value]) {
    let mut t = table(&columns.iter().map(|(header, _)| *header).collect::<Vec<_>>());
    for item in items {
        t.add_row(columns.iter().map(|(_, make)| make(item)));
    }
    print(&t);
}

/// Tasks, a row each.
pub fn tasks(tasks: &[Value]) {
    listing(
        &[
            ("ID", |t| cell(&t["id"])),
            ("TASK", |t| cell(&t["task"])),
            ("QUEUE", |t| cell(&t["queue"])),
            ("STATUS", |t| cell(&t["status"])),
            ("ATTEMPTS", |t| cell(&t["attempts"])),
            ("CREATED", |t| time(&t["created_at"])),
            ("OUTCOME", outcome),
        ],
        tasks,
    );
}

/// A task's attempts, a row each.
pub fn attempts(attempts: &[Value]) {
    listing(
        &[
            ("ATTEMPT", |a| cell(&a["attempt"])),
            ("WORKER", |a| cell(&a["worker_id"])),
            ("STARTED", |a| time(&a["started_at"])),
            ("FINISHED", |a| time(&a["finished_at"])),
            ("OUTCOME", |a| cell(&a["outcome"])),
            ("ERROR", |a| error(&a["error"])),
        ],
        attempts,
    );
}

/// Workers, a row each.
pub fn workers(workers: &[Value]) {
    listing(
        &[
            ("ID", |w| cell(&w["id"])),
            ("STATE", |w| cell(&w["state"])),
            ("ALIVE", |w| cell(&w["alive"])),
            ("HOST", |w| cell(&w["hostname"])),
            ("PID", |w| cell(&w["pid"])),
            ("QUEUES", |w| {
                w["queues"].as_array().map_or("-".into(), |q| q.iter().map(cell).collect::<Vec<_>>().join(","))
            }),
            ("CONCURRENCY", |w| cell(&w["concurrency"])),
            ("IN-FLIGHT", |w| cell(&w["in_flight"])),
            ("PROCESSED", |w| cell(&w["processed"])),
            ("FAILED", |w| cell(&w["failed"])),
            ("HEARTBEAT", |w| time(&w["last_heartbeat_at"])),
        ],
        workers,
    );
}

/// Counts by status, a row each, then the total.
pub fn summary(counts: &[(String, usize)]) {
    let mut t = table(&["STATUS", "TASKS"]);
    for (status, n) in counts {
        t.add_row([status.clone(), n.to_string()]);
    }
    t.add_row(["total".to_string(), counts.iter().map(|(_, n)| n).sum::<usize>().to_string()]);
    print(&t);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cells_read_as_a_person_would() {
        assert_eq!(cell(&json!("a")), "a");
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!([4, 5])), "[4,5]");
        assert_eq!(time(&json!("2026-12-02T01:20:55.123456Z")), "2026-12-02T01:20:55Z");
        assert_eq!(time(&json!("2026-12-02T01:20:55+00:00")), "2026-12-02T01:20:55+00:00");
        assert_eq!(error(&json!({"kind": "timeout", "message": "took 5 s"})), "timeout: took 5 s");
        assert_eq!(progress(&json!({"percent": 40.0, "message": ""})), "40%");
        assert_eq!(
            progress(&json!({"percent": 40.943897199999995, "message": "slept 1 of 2.5 s"})),
            "41% slept 1 of 2.5 s"
        );
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}
