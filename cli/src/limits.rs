//! `yadtq limits ...`: named concurrency and rate limits (docs/limits.md):
//! put, get (with the buckets), list, delete.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::api::{Client, Result};
use crate::commands::{Output, Pager};
use crate::render::{self, cell};
use crate::schedules::Paging;

/// `yadtq limits`.
#[derive(Debug, Args)]
pub struct Limits {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The `limits` subcommands.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Declare a limit (create it, or replace it whole): --concurrency and/or --rate.
    Put(Put),
    /// Show a limit and a page of its buckets (running, held, releases in the rate window).
    Get {
        /// Limit name.
        name: String,
        /// Page flags (of the buckets).
        #[command(flatten)]
        paging: Paging,
    },
    /// List limits by name.
    List(Paging),
    /// Delete a limit: the tasks it held are released.
    Delete {
        /// Limit name.
        name: String,
    },
}

/// `yadtq limits put`.
#[derive(Debug, Args)]
pub struct Put {
    /// Limit name (1-64 of letters, digits, `-`, `_`).
    pub name: String,
    /// Tasks of one bucket running at once; 0 pauses the limit.
    #[arg(long, value_name = "N", required_unless_present = "rate")]
    pub concurrency: Option<i32>,
    /// At most COUNT releases of one bucket per SECONDS, written COUNT/SECONDS (e.g. 100/60).
    #[arg(long, value_name = "COUNT/SECONDS", value_parser = parse_rate)]
    pub rate: Option<(i64, f64)>,
    /// The bucket key: a JSON pointer into the task's arguments, e.g. /kwargs/customer_id.
    #[arg(long, value_name = "POINTER")]
    pub key: Option<String>,
    /// A task name that takes the limit without naming it (repeat for more).
    #[arg(long = "task", value_name = "NAME")]
    pub tasks: Vec<String>,
}

/// `COUNT/SECONDS`.
fn parse_rate(s: &str) -> std::result::Result<(i64, f64), String> {
    let (count, secs) = s.split_once('/').ok_or_else(|| format!("'{s}' is not COUNT/SECONDS (e.g. 100/60)"))?;
    let count = count.trim().parse().map_err(|_| format!("'{count}' is not a whole number of releases"))?;
    let secs = secs.trim().parse().map_err(|_| format!("'{secs}' is not a number of seconds"))?;
    Ok((count, secs))
}

impl Put {
    /// The `PUT /limits/{name}` body.
    pub fn body(&self) -> Value {
        let mut body = json!({"tasks": self.tasks});
        if let Some(c) = self.concurrency {
            body["concurrency"] = json!(c);
        }
        if let Some((count, per_seconds)) = self.rate {
            body["rate"] = json!({"count": count, "per_seconds": per_seconds});
        }
        if let Some(k) = &self.key {
            body["key"] = json!(k);
        }
        body
    }
}

/// `/limits/{name}`.
fn path(name: &str) -> String {
    crate::commands::id_path("/limits/", name, "")
}

/// Runs `yadtq limits ...`.
pub async fn run(client: &Client, out: Output, l: Limits) -> Result<()> {
    match l.action {
        Action::Put(p) => out.show(&client.put(&path(&p.name), &p.body()).await?, show),
        Action::Get { name, paging } => {
            let mut query: Vec<(&str, String)> = paging.limit.map(|l| ("limit", l.to_string())).into_iter().collect();
            query.extend(paging.cursor.clone().map(|c| ("cursor", c)));
            let a = client.get(&path(&name), &query).await?;
            out.show(&a, |v| {
                show(v);
                println!();
                buckets(v["buckets"].as_array().map_or(&[], Vec::as_slice));
            });
            if let (false, Some(next)) = (out.json, a.body["next_cursor"].as_str()) {
                eprintln!("(more buckets: add --cursor {next})");
            }
        }
        Action::List(p) => {
            let query = p.limit.map(|l| ("limit", l.to_string())).into_iter().collect();
            Pager { path: "/limits", key: "limits", query, cursor: p.cursor, all: p.all }
                .show(client, out, listing)
                .await?;
        }
        Action::Delete { name } => {
            client.delete(&path(&name)).await?;
            if !out.json {
                println!("deleted limit {name}");
            }
        }
    }
    Ok(())
}

fn rate(r: &Value) -> String {
    match (r["count"].as_i64(), r["per_seconds"].as_f64()) {
        (Some(c), Some(s)) => format!("{c}/{s}s"),
        _ => "-".into(),
    }
}

/// Limits, a row each.
fn listing(items: &[Value]) {
    render::listing(
        &[
            ("NAME", |l| cell(&l["name"])),
            ("CONCURRENCY", |l| cell(&l["concurrency"])),
            ("RATE", |l| rate(&l["rate"])),
            ("KEY", |l| cell(&l["key"])),
            ("TASKS", |l| {
                let t: Vec<&str> = l["tasks"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                if t.is_empty() {
                    "-".into()
                } else {
                    t.join(",")
                }
            }),
        ],
        items,
    );
}

fn show(l: &Value) {
    listing(std::slice::from_ref(l));
}

/// A limit's buckets, a row each.
fn buckets(items: &[Value]) {
    render::listing(
        &[
            ("BUCKET", |b| cell(&b["bucket"])),
            ("RUNNING", |b| cell(&b["running"])),
            ("HELD", |b| cell(&b["held"])),
            ("IN WINDOW", |b| cell(&b["releases_in_window"])),
        ],
        items,
    );
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use crate::cli::{Cli, Command};

    fn put(args: &[&str]) -> Result<serde_json::Value, clap::Error> {
        let cli = Cli::try_parse_from(["yadtq", "limits", "put"].iter().chain(args))?;
        let Command::Limits(l) = cli.command else { panic!("limits") };
        let super::Action::Put(p) = l.action else { panic!("put") };
        Ok(p.body())
    }

    #[test]
    fn put_builds_the_body() {
        assert_eq!(
            put(&["api", "--concurrency", "5", "--key", "/kwargs/customer_id"]).unwrap(),
            json!({"concurrency": 5, "key": "/kwargs/customer_id", "tasks": []})
        );
        assert_eq!(
            put(&["mail", "--rate", "100/60", "--task", "send_email", "--task", "digest"]).unwrap(),
            json!({"rate": {"count": 100, "per_seconds": 60.0}, "tasks": ["send_email", "digest"]})
        );
        assert!(put(&["x"]).is_err(), "--concurrency or --rate");
        assert!(put(&["x", "--rate", "100"]).is_err(), "COUNT/SECONDS");
    }

    #[test]
    fn submit_takes_limits() {
        let cli = Cli::parse_from(["yadtq", "submit", "echo", "hi", "--limit", "a", "--limit", "b"]);
        let Command::Submit(s) = cli.command else { panic!("submit") };
        assert_eq!(s.body()["limits"], json!(["a", "b"]));
        let cli = Cli::parse_from(["yadtq", "submit", "echo"]);
        let Command::Submit(s) = cli.command else { panic!("submit") };
        assert!(s.body().get("limits").is_none());
    }
}
