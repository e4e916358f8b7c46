//! `yadtq schedules ...`: periodic tasks (docs/schedules.md): create, list,
//! show, pause, resume, trigger, backfill, delete, and the tasks a schedule fired.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::api::{Client, Result};
use crate::cli::{parse_arg, parse_kwargs};
use crate::commands::{Output, Pager};
use crate::render::{self, cell, time};

/// `yadtq schedules`.
#[derive(Debug, Args)]
pub struct Schedules {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// Page flags of a listing.
#[derive(Debug, Args)]
pub struct Paging {
    /// Page size, 1 to 500 (the gateway's default: 50).
    #[arg(long)]
    pub limit: Option<u16>,
    /// Start at this page (`next_cursor` of the previous one).
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Follow `next_cursor` to the last page.
    #[arg(long)]
    pub all: bool,
}

/// The `schedules` subcommands.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Create a schedule firing TASK with ARGS (`--cron` or `--every`).
    #[command(allow_negative_numbers = true)]
    Create(Create),
    /// List schedules, newest first.
    List(Paging),
    /// Show a schedule: its next fire times and what became of its last ticks.
    Get {
        /// Schedule id.
        id: String,
    },
    /// Pause a schedule: it fires nothing until resumed.
    Pause {
        /// Schedule id.
        id: String,
    },
    /// Resume a paused schedule (the paused ticks are not caught up).
    Resume {
        /// Schedule id.
        id: String,
    },
    /// Run the schedule's task once now, through its overlap policy.
    Trigger {
        /// Schedule id.
        id: String,
    },
    /// Run every tick of the schedule between --start and --end (at most 1000).
    Backfill {
        /// Schedule id.
        id: String,
        /// First time of the range (RFC 3339), included.
        #[arg(long)]
        start: String,
        /// Last time of the range (RFC 3339), included.
        #[arg(long)]
        end: String,
        /// Overlap policy for these runs (default: the schedule's).
        #[arg(long)]
        overlap: Option<String>,
    },
    /// Delete a schedule: it never fires again (its tasks stay).
    Delete {
        /// Schedule id.
        id: String,
    },
    /// List the tasks a schedule fired, newest first.
    Tasks {
        /// Schedule id.
        id: String,
        /// Page flags.
        #[command(flatten)]
        paging: Paging,
    },
}

/// `yadtq schedules create`.
#[derive(Debug, Args)]
pub struct Create {
    /// Schedule id (1-100 of letters, digits, `._:-`).
    pub id: String,
    /// Cron pattern: 5 fields, or 6 with seconds first (e.g. '*/5 * * * *').
    #[arg(long, required_unless_present = "every", conflicts_with = "every")]
    pub cron: Option<String>,
    /// Seconds between ticks (a grid from the Unix epoch).
    #[arg(long, value_name = "SECONDS")]
    pub every: Option<i64>,
    /// With --every: seconds after each multiple of it.
    #[arg(long, value_name = "SECONDS", requires = "every")]
    pub offset: Option<i64>,
    /// IANA time zone of the cron fields (default UTC).
    #[arg(long)]
    pub timezone: Option<String>,
    /// skip, buffer_one, buffer_all, cancel_other or allow_all (default skip).
    #[arg(long)]
    pub overlap: Option<String>,
    /// Seconds: after downtime, missed ticks older than this are skipped (default 60).
    #[arg(long, value_name = "SECONDS")]
    pub catchup_window: Option<f64>,
    /// Create it paused.
    #[arg(long)]
    pub paused: bool,
    /// Task name (a handler: echo, sleep, ...).
    pub task: String,
    /// Positional arguments: JSON when they parse, strings otherwise.
    #[arg(value_parser = parse_arg)]
    pub args: Vec<Value>,
    /// Keyword arguments as a JSON object.
    #[arg(long, value_name = "JSON", value_parser = parse_kwargs)]
    pub kwargs: Option<Value>,
    /// Queue (one the gateway declares).
    #[arg(long)]
    pub queue: Option<String>,
}

impl Create {
    /// The `POST /schedules` body.
    pub fn body(&self) -> Value {
        let spec = match (&self.cron, self.every) {
            (Some(cron), _) => json!({"cron": cron}),
            (None, every) => {
                let mut s = json!({"every": every});
                if let Some(offset) = self.offset {
                    s["offset"] = json!(offset);
                }
                s
            }
        };
        let mut task = Map::new();
        task.insert("task".into(), json!(self.task));
        task.insert("args".into(), json!(self.args));
        if let Some(k) = &self.kwargs {
            task.insert("kwargs".into(), k.clone());
        }
        if let Some(q) = &self.queue {
            task.insert("queue".into(), json!(q));
        }
        let mut body = json!({"id": self.id, "spec": spec, "task": task});
        let optional = [
            ("timezone", self.timezone.as_ref().map(|v| json!(v))),
            ("overlap", self.overlap.as_ref().map(|v| json!(v))),
            ("catchup_window", self.catchup_window.map(|v| json!(v))),
            ("paused", self.paused.then_some(json!(true))),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                body[k] = v;
            }
        }
        body
    }
}

/// `/schedules/{id}{rest}`.
fn path(id: &str, rest: &str) -> String {
    crate::commands::id_path("/schedules/", id, rest)
}

fn paging(p: &Paging, mut query: Vec<(&'static str, String)>) -> (Vec<(&'static str, String)>, Option<String>, bool) {
    query.extend(p.limit.map(|l| ("limit", l.to_string())));
    (query, p.cursor.clone(), p.all)
}

/// Runs `yadtq schedules ...`.
pub async fn run(client: &Client, out: Output, s: Schedules) -> Result<()> {
    match s.action {
        Action::Create(c) => {
            let a = client.post("/schedules", Some(&c.body())).await?;
            out.show(&a, show);
        }
        Action::List(p) => {
            let (query, cursor, all) = paging(&p, vec![]);
            Pager { path: "/schedules", key: "schedules", query, cursor, all }.show(client, out, listing).await?;
        }
        Action::Get { id } => out.show(&client.get(&path(&id, ""), &[]).await?, show),
        Action::Pause { id } => out.show(&client.patch(&path(&id, ""), &json!({"paused": true})).await?, show),
        Action::Resume { id } => out.show(&client.patch(&path(&id, ""), &json!({"paused": false})).await?, show),
        Action::Trigger { id } => out.show(&client.post(&path(&id, "/trigger"), None).await?, fired),
        Action::Backfill { id, start, end, overlap } => {
            let mut body = json!({"start": start, "end": end});
            if let Some(o) = overlap {
                body["overlap"] = json!(o);
            }
            out.show(&client.post(&path(&id, "/backfill"), Some(&body)).await?, fired);
        }
        Action::Delete { id } => {
            client.delete(&path(&id, "")).await?;
            if !out.json {
                println!("deleted schedule {id}");
            }
        }
        Action::Tasks { id, paging: p } => {
            let (query, cursor, all) = paging(&p, vec![("schedule", id)]);
            Pager { path: "/tasks", key: "tasks", query, cursor, all }.show(client, out, render::tasks).await?;
        }
    }
    Ok(())
}

fn spec(s: &Value) -> String {
    match (s["cron"].as_str(), s["every"].as_i64()) {
        (Some(cron), _) => format!("cron '{cron}'"),
        (None, Some(every)) => {
            format!("every {every}s{}", s["offset"].as_i64().map_or(String::new(), |o| format!(" +{o}s")))
        }
        _ => cell(s),
    }
}

/// Schedules, a row each.
fn listing(items: &[Value]) {
    render::listing(
        &[
            ("ID", |s| cell(&s["id"])),
            ("SPEC", |s| spec(&s["spec"])),
            ("ZONE", |s| cell(&s["timezone"])),
            ("TASK", |s| cell(&s["task"]["task"])),
            ("OVERLAP", |s| cell(&s["overlap"])),
            ("PAUSED", |s| cell(&s["paused"])),
            ("RUNS", |s| cell(&s["runs"])),
            ("SKIPPED", |s| cell(&s["skipped"])),
            ("NEXT", |s| time(&s["next_fire_times"][0])),
        ],
        items,
    );
}

/// One schedule, then its next fire times and latest fires.
fn show(s: &Value) {
    listing(std::slice::from_ref(s));
    let next: Vec<String> = s["next_fire_times"].as_array().into_iter().flatten().map(time).collect();
    println!("next fire times: {}", if next.is_empty() { "-".to_string() } else { next.join(", ") });
    if let Some(fires) = s["recent_fires"].as_array().filter(|f| !f.is_empty()) {
        println!();
        render::listing(
            &[
                ("TICK", |f| time(&f["tick"])),
                ("KIND", |f| cell(&f["kind"])),
                ("OUTCOME", |f| cell(&f["outcome"])),
                ("REASON", |f| cell(&f["reason"])),
                ("TICKS", |f| cell(&f["ticks"])),
                ("TASK", |f| cell(&f["task_id"])),
                ("STATUS", |f| cell(&f["task_status"])),
            ],
            fires,
        );
    }
}

/// What a trigger or a backfill did.
fn fired(r: &Value) {
    for id in r["fired"].as_array().into_iter().flatten() {
        println!("{}", cell(id));
    }
    eprintln!(
        "fired {}, skipped {}, buffered {}",
        r["fired"].as_array().map_or(0, Vec::len),
        cell(&r["skipped"]),
        cell(&r["buffered"])
    );
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn create_builds_the_post_body() {
        let cli = Cli::parse_from([
            "yadtq",
            "schedules",
            "create",
            "nightly",
            "--cron",
            "30 2 * * *",
            "--timezone",
            "Europe/Berlin",
            "echo",
            "report",
            "4",
            "--queue",
            "default",
        ]);
        let Command::Schedules(s) = cli.command else { panic!("schedules") };
        let super::Action::Create(c) = s.action else { panic!("create") };
        assert_eq!(
            c.body(),
            serde_json::json!({"id": "nightly", "spec": {"cron": "30 2 * * *"}, "timezone": "Europe/Berlin",
                               "task": {"task": "echo", "args": ["report", 4], "queue": "default"}})
        );
        let every =
            Cli::try_parse_from(["yadtq", "schedules", "create", "hb", "--every", "60", "--offset", "15", "echo"]);
        let Command::Schedules(s) = every.unwrap().command else { panic!("schedules") };
        let super::Action::Create(c) = s.action else { panic!("create") };
        assert_eq!(c.body()["spec"], serde_json::json!({"every": 60, "offset": 15}));
        assert!(Cli::try_parse_from(["yadtq", "schedules", "create", "x", "echo"]).is_err(), "--cron or --every");
    }
}
