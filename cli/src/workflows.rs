//! `yadtq workflows ...`: DAGs of tasks (docs/workflows.md): submit one from
//! a JSON file (and wait for it), list, show (and wait), cancel.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::api::{Answer, Client, Error, Result};
use crate::commands::{Output, Pager};
use crate::render::{self, cell, time};
use crate::schedules::Paging;

/// Longest long-poll the gateway takes (`?wait=`), in seconds.
const MAX_POLL: f64 = 60.0;

/// `yadtq workflows`.
#[derive(Debug, Args)]
pub struct Workflows {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The `workflows` subcommands.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Submit the workflow in FILE (a POST /workflows body: `{id?, tasks: [...]}`;
    /// `-` reads standard input); prints its nodes, and waits for it with --wait.
    Submit {
        /// The JSON file.
        file: PathBuf,
        /// Wait until the workflow is finished, at most SECONDS when given; exits
        /// non-zero when it failed or was cancelled.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<Option<f64>>,
    },
    /// List workflows, newest first.
    List(Paging),
    /// Show a workflow: its status, counts by status and nodes.
    Get {
        /// Workflow id.
        id: String,
        /// Wait until it is finished, at most SECONDS when given.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<Option<f64>>,
    },
    /// Cancel a workflow: nodes that have not run end cancelled, running ones are asked to stop.
    Cancel {
        /// Workflow id.
        id: String,
    },
}

/// Runs `yadtq workflows ...`.
pub async fn run(client: &Client, out: Output, w: Workflows) -> Result<()> {
    match w.action {
        Action::Submit { file, wait } => {
            let body = read(&file)?;
            let a = client.post("/workflows", Some(&body)).await?;
            if a.status == 200 && a.tries == 1 {
                eprintln!("workflow {} was submitted before with this body: showing it", cell(&a.body["id"]));
            }
            match wait {
                None => out.show(&a, show),
                Some(wait) => return waited(client, out, &cell(&a.body["id"]), wait).await,
            }
        }
        Action::List(p) => {
            let mut query = Vec::new();
            query.extend(p.limit.map(|l| ("limit", l.to_string())));
            Pager { path: "/workflows", key: "workflows", query, cursor: p.cursor, all: p.all }
                .show(client, out, listing)
                .await?;
        }
        Action::Get { id, wait: None } => out.show(&client.get(&path(&id, ""), &[]).await?, show),
        Action::Get { id, wait: Some(wait) } => return waited(client, out, &id, wait).await,
        Action::Cancel { id } => {
            let a = client.post(&path(&id, "/cancel"), None).await?;
            out.show(&a, |r| {
                show(&r["workflow"]);
                eprintln!("cancelled {}, cancel requested for {}", cell(&r["cancelled"]), cell(&r["requested"]));
            });
        }
    }
    Ok(())
}

/// `/workflows/{id}{rest}`.
fn path(id: &str, rest: &str) -> String {
    crate::commands::id_path("/workflows/", id, rest)
}

/// The POST /workflows body in `file` (`-`: standard input), checked to be JSON.
fn read(file: &PathBuf) -> Result<Value> {
    let name = file.display().to_string();
    let text = if name == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Error::Input(format!("cannot read standard input: {e}")))?
    } else {
        std::fs::read_to_string(file).map_err(|e| Error::Input(format!("cannot read {name}: {e}")))?
    };
    serde_json::from_str(&text).map_err(|e| Error::Input(format!("{name} is not JSON: {e}")))
}

/// Long-polls workflow `id` until it is finished or `wait` seconds (when
/// given) pass, shows it, and exits by its status.
async fn waited(client: &Client, out: Output, id: &str, wait: Option<f64>) -> Result<()> {
    let until = wait.map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let a = wait_workflow(client, id, until).await?;
    out.show(&a, show);
    match a.body["status"].as_str() {
        Some("success") => Ok(()),
        Some(s @ ("failed" | "cancelled")) => Err(Error::TaskFailed(format!("workflow {id} {s}"))),
        _ => Err(Error::WaitExpired(format!("workflow {id} is still running (the wait ended first)"))),
    }
}

async fn wait_workflow(client: &Client, id: &str, until: Option<Instant>) -> Result<Answer> {
    loop {
        let left = until.map_or(MAX_POLL, |d| d.saturating_duration_since(Instant::now()).as_secs_f64());
        let query: Vec<(&str, String)> =
            if left > 0.0 { vec![("wait", format!("{:.3}", left.min(MAX_POLL)))] } else { vec![] };
        let a = client.get(&path(id, ""), &query).await?;
        if a.body["status"] != "running" || left <= 0.0 {
            return Ok(a);
        }
    }
}

/// Counts by status, `success 3, waiting 1`.
fn counts(c: &Value) -> String {
    let parts: Vec<String> =
        c.as_object().into_iter().flatten().map(|(status, n)| format!("{status} {}", cell(n))).collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

/// Workflows, a row each.
fn listing(items: &[Value]) {
    render::listing(
        &[
            ("ID", |w| cell(&w["id"])),
            ("STATUS", |w| cell(&w["status"])),
            ("NODES", |w| counts(&w["counts"])),
            ("CREATED", |w| time(&w["created_at"])),
        ],
        items,
    );
}

/// One workflow, then its nodes.
fn show(w: &Value) {
    println!("workflow {}: {} ({})", cell(&w["id"]), cell(&w["status"]), counts(&w["counts"]));
    let nodes = w["nodes"].as_array().map_or(&[][..], Vec::as_slice);
    render::listing(
        &[
            ("REF", |n| cell(&n["ref"])),
            ("TASK ID", |n| cell(&n["id"])),
            ("STATUS", |n| cell(&n["status"])),
            ("DEPENDS ON", |n| {
                let refs: Vec<String> = n["depends_on"].as_array().into_iter().flatten().map(cell).collect();
                if refs.is_empty() {
                    "-".to_string()
                } else {
                    refs.join(",")
                }
            }),
        ],
        nodes,
    );
}
