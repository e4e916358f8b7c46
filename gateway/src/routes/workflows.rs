//! Workflows (docs/workflows.md): `POST /workflows`, `GET /workflows`,
//! `GET /workflows/{id}` (with long-poll), `POST /workflows/{id}/cancel`,
//! and the one wait for many tasks, `POST /tasks/wait`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use yadtq_core::auth::Scope;
use yadtq_core::model::{Task, TaskStatus};
use yadtq_core::names::{TaskId, TaskKey};
use yadtq_core::store::tasks;
use yadtq_core::store::workflows::{
    self, NewNode, NewWorkflow, NodeView, OnParentFailure, WorkflowInsert, WorkflowRow, WorkflowStatus,
};

use crate::auth::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::submit;

/// Longest a workflow id is, in characters.
const MAX_WORKFLOW_ID: usize = 64;
/// Longest a node ref is, in characters.
const MAX_REF: usize = 48;
/// Most ids in one `POST /tasks/wait`.
pub const MAX_WAIT_IDS: usize = 1000;
/// Seconds the gateway asks a client to wait while older processes run.
const GATE_RETRY_AFTER: u32 = 10;

/// Body of `POST /workflows`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "album-7", "tasks": [
    {"ref": "resize", "task": "echo", "args": ["img-1"]},
    {"ref": "album", "task": "echo", "depends_on": ["resize"]}]}))]
pub struct WorkflowRequest {
    /// Workflow id (1-64 of letters, digits, `._-`); submitting the same id
    /// and body again returns the same workflow (200), another body 409.
    /// Default: a server UUID.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub id: Option<String>,
    /// The nodes: each a task as `POST /tasks` takes it (without `id`,
    /// `task-id`, `countdown`, `eta` or `unique`) plus `ref`, `depends_on` and
    /// `on_parent_failure`.
    #[schema(value_type = Vec<WorkflowNodeRequest>, min_items = 1)]
    pub tasks: Vec<Box<RawValue>>,
}

/// One node of `POST /workflows`: a task (the fields of `POST /tasks`
/// but the ids, the schedule and `unique`) with its place in the graph.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the schema's; the route reads nodes field by field
pub struct WorkflowNodeRequest {
    /// The node's name within the workflow (1-48 of letters, digits, `_-`);
    /// its task id is `wf:<workflow id>:<ref>`.
    #[serde(rename = "ref")]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,48}$")]
    pub node_ref: String,
    /// Handler name: letters, digits and `._:-`, starting with a letter.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9._:-]{0,127}$")]
    pub task: String,
    /// Positional arguments.
    #[schema(value_type = Option<Vec<serde_json::Value>>)]
    pub args: Option<serde_json::Value>,
    /// Keyword arguments.
    #[schema(value_type = Option<HashMap<String, serde_json::Value>>)]
    pub kwargs: Option<serde_json::Value>,
    /// Queue (1-64 of letters, digits, `-`, `_`; default `default`).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub queue: Option<String>,
    /// Refs of the nodes that must finish first (each a `ref` of another
    /// node, at most once, with no cycle: else a 400 naming
    /// `tasks[i].depends_on[j]`).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// What the node does when a parent ends other than `success`: `cancel`
    /// (default; it ends `cancelled` with kind `parent_failed`, and so on
    /// down) or `run` (it runs and sees which parents failed).
    pub on_parent_failure: Option<OnParentFailure>,
    /// Retries after the first attempt (at most `YADTQ_MAX_RETRIES_LIMIT`, default 100).
    #[schema(minimum = 0, maximum = 100)]
    pub max_retries: Option<i32>,
    /// Per-attempt timeout in seconds (at most `YADTQ_MAX_TIMEOUT`, default 86400).
    #[schema(exclusive_minimum = 0, maximum = 86400)]
    pub timeout: Option<f64>,
    /// Retry backoff base, seconds (at most `YADTQ_MAX_TIMEOUT`).
    #[schema(minimum = 0, maximum = 86400)]
    pub retry_backoff_base: Option<f64>,
    /// Retry backoff cap, seconds: at least `retry_backoff_base`, at most `YADTQ_MAX_TIMEOUT`.
    #[schema(minimum = 0, maximum = 86400)]
    pub retry_backoff_cap: Option<f64>,
}

/// A node in a workflow answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeState {
    /// The node's ref.
    #[serde(rename = "ref")]
    pub node_ref: String,
    /// Its task id (`wf:<workflow id>:<ref>`): `GET /tasks/{id}` reads it.
    pub id: String,
    /// Its task's status.
    #[schema(schema_with = yadtq_core::model::task_status_or_other)]
    pub status: TaskStatus,
    /// Refs of its parents.
    pub depends_on: Vec<String>,
}

/// A workflow: its status, node counts by status and its nodes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Workflow {
    /// Workflow id.
    pub id: String,
    /// `running` until every node is terminal; then `failed` if a node
    /// failed, else `cancelled` if one was cancelled, else `success`.
    pub status: WorkflowStatus,
    /// Nodes by task status.
    pub counts: BTreeMap<String, i64>,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// The nodes, in the order submitted.
    pub nodes: Vec<NodeState>,
}

fn present(caller: &Caller, wf: WorkflowRow) -> Workflow {
    let status = wf.status();
    let counts = wf.counts();
    Workflow {
        id: wf.key.id_for(&caller.tenant).to_string(),
        status,
        counts,
        created_at: wf.created_at,
        nodes: wf
            .nodes
            .into_iter()
            .map(|NodeView { node_ref, id, status, depends_on }| NodeState {
                node_ref,
                id: id.id_for(&caller.tenant).to_string(),
                status,
                depends_on,
            })
            .collect(),
    }
}

/// Submit a workflow: a DAG of tasks.
///
/// Every node is an ordinary task with the id `wf:<workflow id>:<ref>`; the
/// nodes without parents start `queued`, the others `waiting` until all
/// their parents have finished (then `queued`, in the transaction that
/// records the last parent's outcome, or `cancelled` with kind
/// `parent_failed` when a parent did not succeed and the node says
/// `on_parent_failure: cancel`). A node's handler receives its parents'
/// results by ref.
#[utoipa::path(
    post, path = "/workflows", tag = "workflows", operation_id = "submitWorkflow",
    request_body = WorkflowRequest,
    responses(
        (status = 202, description = "Accepted", body = Workflow),
        (status = 200, description = "This id was submitted before with the same body: the workflow as it is", body = Workflow),
        (status = 400, description = "Invalid body; `field` names the node and field (`tasks[3].depends_on[0]` for an unknown ref, `tasks[2].ref` for a duplicate, a cycle named in the detail, `tasks[1].id` for an id of its own)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This workflow id was submitted before with a different body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "More nodes than `YADTQ_MAX_WORKFLOW_NODES` (10,000 by default; `field` is `tasks`), a body above `YADTQ_MAX_WORKFLOW_BODY_BYTES`, or a node's Kafka record larger than the broker accepts", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A node names a `queue` this gateway does not declare or a `task` outside its catalogue (`field` is e.g. `tasks[3].queue`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable, or a worker of an older release is alive (it would not fan in): the detail names the reason; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Submit)?;
    super::tasks::require_json(&headers)?;
    let body = super::tasks::read_body(body, state.cfg.max_workflow_body_bytes)?;
    let limits = &state.cfg.limits;
    submit::check_json(&body, limits)?;
    let req: WorkflowRequest = submit::parse(&body)?;
    let wf_id = match req.id {
        Some(id) => {
            let ok = !id.is_empty()
                && id.len() <= MAX_WORKFLOW_ID
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(ApiError::bad_request("id", "id must be 1-64 characters of letters, digits and ._-"));
            }
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    if req.tasks.is_empty() {
        return Err(ApiError::bad_request("tasks", "tasks must hold at least one node"));
    }
    if req.tasks.len() > state.cfg.max_workflow_nodes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} nodes exceed the workflow limit of {} (YADTQ_MAX_WORKFLOW_NODES)",
                req.tasks.len(),
                state.cfg.max_workflow_nodes
            ),
            Some("tasks"),
        ));
    }
    let parsed = req.tasks.iter().enumerate().map(|(i, raw)| node(i, raw)).collect::<Result<Vec<_>, _>>()?;
    let parents = graph(&parsed)?;
    let span = super::tasks::submit_span(&headers);
    let trace = yadtq_core::telemetry::TraceContext::of(&span);
    let mut nodes = Vec::with_capacity(parsed.len());
    let mut hashes = Vec::with_capacity(parsed.len() * 4);
    for (i, (p, parents)) in parsed.into_iter().zip(parents).enumerate() {
        let field = format!("tasks[{i}]");
        // The workflow id's and the ref's rules keep a node id within the task id's.
        let id = TaskId::parse(workflows::node_id(&wf_id, &p.node_ref))
            .map_err(|e| ApiError::bad_request(&format!("{field}.ref"), format!("node id {e}")))?;
        let mut task =
            submit::validate_item_or(p.task_body.as_bytes(), None, Some(id), limits).map_err(|e| e.within(&field))?;
        caller.require_queue(&task.queue, "queue").map_err(|e| e.within(&field))?;
        caller.adopt(&mut task);
        task.trace = trace.clone();
        submit::check_record_size(&task, &state.record_limit(&task), &field)?;
        hashes.push(p.node_ref.clone());
        hashes.push(task.request_hash.clone());
        hashes.push(p.depends_on.join(","));
        hashes.push(format!("{:?}", p.on_parent_failure));
        nodes.push(NewNode { task, node_ref: p.node_ref, parents, on_parent_failure: p.on_parent_failure });
    }
    if let Some(older) = gate(&state).await? {
        return Err(older);
    }
    let wf = NewWorkflow {
        key: workflow_key(&caller, &wf_id).ok_or_else(|| no_workflow(&wf_id))?,
        tenant: caller.tenant.clone(),
        request_hash: submit::hash(&hashes.iter().map(String::as_str).collect::<Vec<_>>()),
        nodes,
    };
    let code = match workflows::insert(&state.pool, &wf).await? {
        WorkflowInsert::Created(rows) => {
            let roots: Vec<&Task> = rows.iter().map(|r| &r.task).filter(|t| t.status == TaskStatus::Queued).collect();
            crate::publish::publish(&state, &roots).await;
            metrics::counter!(WORKFLOWS_SUBMITTED).increment(1);
            StatusCode::ACCEPTED
        }
        WorkflowInsert::Existing => StatusCode::OK,
        WorkflowInsert::Conflict => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("workflow id '{wf_id}' was already submitted with a different body"),
                Some("id"),
            ))
        }
    };
    let row = workflows::get(&state.pool, &wf.key).await?.ok_or_else(|| no_workflow(&wf_id))?;
    Ok((code, Json(present(&caller, row))).into_response())
}

/// Workflows accepted by this gateway (a counter; the leader's sampler
/// exports workflows by status).
pub const WORKFLOWS_SUBMITTED: &str = "yadtq_workflows_submitted_total";

/// 503 while a worker of an older release is alive: it would record its
/// nodes' outcomes without fanning in (design.md, "Mixed versions").
async fn gate(state: &AppState) -> Result<Option<ApiError>, ApiError> {
    let older =
        workflows::older_processes(&state.pool, state.cfg.common.dead_after, workflows::WORKFLOWS_LEVEL).await?;
    Ok((older > 0).then(|| {
        ApiError::unavailable(
            format!(
                "workflows are off during a rolling upgrade: {older} alive worker(s) run a release older than \
                 feature level {} (they would not release a node's children); retry once every worker is upgraded",
                workflows::WORKFLOWS_LEVEL
            ),
            GATE_RETRY_AFTER,
        )
    }))
}

/// A node as parsed: its graph fields and the task body without them.
struct ParsedNode {
    node_ref: String,
    depends_on: Vec<String>,
    on_parent_failure: OnParentFailure,
    /// The node's other fields as a JSON object, values as sent.
    task_body: String,
}

/// Splits node `i` into its graph fields and a `POST /tasks` body (values
/// kept as sent, so `args` and `kwargs` keep their text).
fn node(i: usize, raw: &RawValue) -> Result<ParsedNode, ApiError> {
    let field = |f: &str| format!("tasks[{i}].{f}");
    let mut fields: BTreeMap<String, Box<RawValue>> = serde_json::from_str(raw.get())
        .map_err(|_| ApiError::bad_request(&format!("tasks[{i}]"), "a node must be a JSON object"))?;
    for own in ["id", "task-id", "countdown", "eta", "unique"] {
        if fields.contains_key(own) {
            return Err(ApiError::bad_request(
                &field(own),
                format!(
                    "a node takes no {own}: its id is wf:<workflow id>:<ref>, its workflow id makes it \
                     idempotent, and it runs when its parents have finished"
                ),
            ));
        }
    }
    let node_ref: String = match fields.remove("ref") {
        None => return Err(ApiError::bad_request(&field("ref"), "ref is required: the node's name in the workflow")),
        Some(r) => {
            serde_json::from_str(r.get()).map_err(|_| ApiError::bad_request(&field("ref"), "ref must be a string"))?
        }
    };
    let ok = !node_ref.is_empty()
        && node_ref.len() <= MAX_REF
        && node_ref.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(ApiError::bad_request(&field("ref"), "ref must be 1-48 characters of letters, digits, _ and -"));
    }
    let depends_on: Vec<String> = match fields.remove("depends_on") {
        None => Vec::new(),
        Some(d) => serde_json::from_str(d.get())
            .map_err(|_| ApiError::bad_request(&field("depends_on"), "depends_on must be an array of refs"))?,
    };
    // null is absent, as the schema's optional field says.
    let on_parent_failure = match fields.remove("on_parent_failure") {
        None => OnParentFailure::default(),
        Some(p) => serde_json::from_str::<Option<OnParentFailure>>(p.get())
            .map_err(|_| {
                ApiError::bad_request(&field("on_parent_failure"), "on_parent_failure must be \"cancel\" or \"run\"")
            })?
            .unwrap_or_default(),
    };
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).expect("a string serialises"), v.get()))
        .collect();
    Ok(ParsedNode { node_ref, depends_on, on_parent_failure, task_body: format!("{{{}}}", parts.join(",")) })
}

/// Each node's parents as indexes: 400 naming the node for a duplicate
/// ref, an unknown or repeated parent, or a cycle (the detail names one).
fn graph(nodes: &[ParsedNode]) -> Result<Vec<Vec<usize>>, ApiError> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        if index.insert(&n.node_ref, i).is_some() {
            return Err(ApiError::bad_request(
                &format!("tasks[{i}].ref"),
                format!("ref '{}' is used twice", n.node_ref),
            ));
        }
    }
    let mut parents = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let mut mine: Vec<usize> = Vec::with_capacity(n.depends_on.len());
        for (j, p) in n.depends_on.iter().enumerate() {
            let field = format!("tasks[{i}].depends_on[{j}]");
            let Some(&at) = index.get(p.as_str()) else {
                return Err(ApiError::bad_request(&field, format!("no node has ref '{p}'")));
            };
            if mine.contains(&at) {
                return Err(ApiError::bad_request(&field, format!("'{p}' is listed twice")));
            }
            mine.push(at);
        }
        parents.push(mine);
    }
    if let Some(cycle) = find_cycle(&parents) {
        let names: Vec<&str> = cycle.iter().map(|&i| nodes[i].node_ref.as_str()).collect();
        let (child, parent) = (cycle[0], cycle[1]);
        let j = parents[child].iter().position(|&p| p == parent).expect("an edge of the cycle");
        return Err(ApiError::bad_request(
            &format!("tasks[{child}].depends_on[{j}]"),
            format!("the dependencies form a cycle: {}", names.join(" depends on ")),
        ));
    }
    Ok(parents)
}

/// A cycle of the graph (`parents[i]`: node `i`'s parents) as nodes, each
/// depending on the next, the first repeated at the end; `None` for a DAG.
/// Iterative depth-first search (a 10,000-node chain must not overflow the stack).
fn find_cycle(parents: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; parents.len()];
    for start in 0..parents.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // (node, next parent to visit)
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Open;
        while let Some(&mut (n, ref mut next)) = stack.last_mut() {
            if let Some(&p) = parents[n].get(*next) {
                *next += 1;
                match mark[p] {
                    Mark::New => {
                        mark[p] = Mark::Open;
                        stack.push((p, 0));
                    }
                    Mark::Open => {
                        let from = stack.iter().position(|&(x, _)| x == p).expect("open nodes are on the stack");
                        let mut cycle: Vec<usize> = stack[from..].iter().map(|&(x, _)| x).collect();
                        cycle.push(p);
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[n] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

/// The stored key of the caller's workflow `id` (made as a task id's is);
/// `None` for an id no workflow can have.
fn workflow_key(caller: &Caller, id: &str) -> Option<TaskKey> {
    TaskId::parse(id).ok().map(|id| caller.task_key(&id))
}

/// The 404 for the caller's workflow `id`.
fn no_workflow(id: &str) -> ApiError {
    ApiError::not_found(format!("no workflow with id '{id}'"))
}

/// Query of `GET /workflows/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WorkflowQuery {
    /// Long-poll: wait up to this many seconds (max 60) for the workflow to
    /// be terminal; answers as soon as it is, or as it is at the deadline.
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<f64>,
}

/// Read a workflow: status, counts by status, nodes.
#[utoipa::path(
    get, path = "/workflows/{id}", tag = "workflows", operation_id = "getWorkflow",
    params(("id" = String, Path, description = "Workflow id"), WorkflowQuery),
    responses(
        (status = 200, description = "The workflow", body = Workflow),
        (status = 400, description = "Invalid `wait`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable, or (with `wait`) the gateway holds its most long-polls; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<WorkflowQuery>, QueryRejection>,
) -> Result<Json<Workflow>, ApiError> {
    caller.require(Scope::Read)?;
    let q = super::paging::query(query, &["wait"])?;
    let wait = seconds("wait", q.wait.unwrap_or(0.0))?;
    let key = workflow_key(&caller, &id).ok_or_else(|| no_workflow(&id))?;
    let read = || async { workflows::get(&state.pool, &key).await?.ok_or_else(|| no_workflow(&id)) };
    let mut wf = read().await?;
    if wait > Duration::ZERO && wf.status() == WorkflowStatus::Running {
        let _place = state.edge.waiter()?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut poll = Poll::default();
        // The cheap check while it runs; the whole workflow once at the end.
        while poll.sleep(deadline).await {
            if workflows::running(&state.pool, &key).await? != Some(true) {
                break;
            }
        }
        wf = read().await?;
    }
    Ok(Json(present(&caller, wf)))
}

/// A `wait` or `timeout` of 0 to 60 seconds, or a 400 naming `field`.
fn seconds(field: &str, s: f64) -> Result<Duration, ApiError> {
    if !(0.0..=super::tasks::MAX_WAIT).contains(&s) {
        return Err(ApiError::bad_request(field, format!("{field} must be 0 to {} seconds", super::tasks::MAX_WAIT)));
    }
    Ok(Duration::from_secs_f64(s))
}

/// The pace of a long-poll's reads: 50 ms at first, growing to 500 ms, so a
/// short wait answers fast and a long one costs few statements.
#[derive(Default)]
struct Poll {
    reads: u32,
}

impl Poll {
    /// Sleeps until the next read, or returns false at the deadline.
    async fn sleep(&mut self, deadline: tokio::time::Instant) -> bool {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        self.reads += 1;
        let pause = Duration::from_millis((50 * u64::from(self.reads)).min(500));
        tokio::time::sleep_until((now + pause).min(deadline)).await;
        true
    }
}

/// Query of `GET /workflows`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (digits).
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// A workflow in a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowSummary {
    /// Workflow id.
    pub id: String,
    /// As in `GET /workflows/{id}`.
    pub status: WorkflowStatus,
    /// Nodes by task status.
    pub counts: BTreeMap<String, i64>,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
}

/// A page of workflows, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowPage {
    /// The workflows.
    pub workflows: Vec<WorkflowSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// List the tenant's workflows, newest first.
#[utoipa::path(
    get, path = "/workflows", tag = "workflows", operation_id = "listWorkflows", params(ListQuery),
    responses(
        (status = 200, description = "A page of workflows", body = WorkflowPage),
        (status = 400, description = "Invalid `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<WorkflowPage>, ApiError> {
    caller.require(Scope::Read)?;
    let q = super::paging::query(query, &["limit", "cursor"])?;
    let limit = super::paging::limit(q.limit)?;
    let before = super::paging::cursor(q.cursor.as_deref())?;
    let rows = workflows::list(&state.pool, &caller.tenant, limit, before).await?;
    let next = if rows.len() as i64 == limit { rows.last().map(|r| r.seq.to_string()) } else { None };
    let workflows = rows
        .into_iter()
        .map(|r| WorkflowSummary {
            id: r.key.id_for(&caller.tenant).to_string(),
            status: r.status(),
            counts: r.counts,
            created_at: r.created_at,
        })
        .collect();
    Ok(Json(WorkflowPage { workflows, next_cursor: next }))
}

/// What `POST /workflows/{id}/cancel` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowCancelled {
    /// Nodes cancelled at once (they had not started).
    pub cancelled: u64,
    /// Running nodes whose cancel was requested (their workers abort them).
    pub requested: u64,
    /// The workflow now.
    pub workflow: Workflow,
}

/// Cancel a workflow: nodes that have not run end `cancelled`, running ones
/// get a cancel request; finished nodes stay as they are.
#[utoipa::path(
    post, path = "/workflows/{id}/cancel", tag = "workflows", operation_id = "cancelWorkflow",
    params(("id" = String, Path, description = "Workflow id")),
    responses(
        (status = 200, description = "Cancelled (also when it was finished already)", body = WorkflowCancelled),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WorkflowCancelled>, ApiError> {
    caller.require(Scope::Operate)?;
    let key = workflow_key(&caller, &id).ok_or_else(|| no_workflow(&id))?;
    let done = workflows::cancel(&state.pool, &key).await?.ok_or_else(|| no_workflow(&id))?;
    let wf = workflows::get(&state.pool, &key).await?.ok_or_else(|| no_workflow(&id))?;
    Ok(Json(WorkflowCancelled { cancelled: done.cancelled, requested: done.requested, workflow: present(&caller, wf) }))
}

/// Until when `POST /tasks/wait` waits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Until {
    /// Every task terminal.
    #[default]
    All,
    /// At least one task terminal.
    Any,
}

/// Body of `POST /tasks/wait`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitRequest {
    /// Task ids (1 to 1,000).
    #[schema(min_items = 1, max_items = 1000)]
    pub ids: Vec<String>,
    /// `all` (default) or `any`.
    #[serde(default)]
    pub until: Until,
    /// Seconds to wait at most, 0 to 60 (default 30).
    #[schema(minimum = 0, maximum = 60)]
    pub timeout: Option<f64>,
}

/// What `POST /tasks/wait` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitResponse {
    /// Whether the condition holds (false: the timeout passed first).
    pub done: bool,
    /// Every task's current state, in the order of `ids`.
    pub tasks: Vec<Task>,
}

/// Wait for many tasks at once: answers when all (or any) of them are
/// terminal, or with their current states when `timeout` passes.
#[utoipa::path(
    post, path = "/tasks/wait", tag = "tasks", operation_id = "waitTasks",
    request_body = WaitRequest,
    responses(
        (status = 200, description = "The tasks, in the order given; `done` says whether the condition holds", body = WaitResponse),
        (status = 400, description = "Invalid body: no ids, more than 1,000 (`ids`), a malformed id (`ids[3]`), a timeout out of range", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "An id names no task (`field` is e.g. `ids[3]`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL unavailable, or the gateway holds its most long-polls; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn wait(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WaitResponse>, ApiError> {
    caller.require(Scope::Read)?;
    super::tasks::require_json(&headers)?;
    let body = super::tasks::read_body(body, state.cfg.limits.max_body_bytes)?;
    submit::check_json(&body, &state.cfg.limits)?;
    let req: WaitRequest = submit::parse(&body)?;
    if req.ids.is_empty() || req.ids.len() > MAX_WAIT_IDS {
        return Err(ApiError::bad_request("ids", format!("ids must hold 1 to {MAX_WAIT_IDS} task ids")));
    }
    let keys = req
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            TaskId::parse(id.as_str())
                .map(|id| caller.task_key(&id))
                .map_err(|e| ApiError::bad_request(&format!("ids[{i}]"), format!("task id {e}")))
        })
        .collect::<Result<Vec<TaskKey>, ApiError>>()?;
    let timeout = seconds("timeout", req.timeout.unwrap_or(30.0))?;
    let read = || async {
        let rows = tasks::get_many(&state.pool, &keys).await?;
        // An id given twice reads once and answers twice.
        let by_key: HashMap<TaskKey, Task> = rows
            .into_iter()
            .filter(|r| caller.sees_queue(&r.task.queue))
            .map(|r| (r.task.key.clone(), r.task))
            .collect();
        keys.iter()
            .enumerate()
            .map(|(i, k)| {
                by_key.get(k).cloned().ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("no task with id '{}'", req.ids[i]),
                        Some(&format!("ids[{i}]")),
                    )
                })
            })
            .collect::<Result<Vec<Task>, ApiError>>()
    };
    let holds = |ts: &[Task]| match req.until {
        Until::All => ts.iter().all(|t| t.status.is_terminal()),
        Until::Any => ts.iter().any(|t| t.status.is_terminal()),
    };
    let mut found = read().await?;
    let mut done = holds(&found);
    if !done && timeout > Duration::ZERO {
        let _place = state.edge.waiter()?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut poll = Poll::default();
        while !done && poll.sleep(deadline).await {
            found = read().await?;
            done = holds(&found);
        }
    }
    Ok(Json(WaitResponse { done, tasks: found.into_iter().map(|t| caller.present(t)).collect() }))
}

#[cfg(test)]
mod tests {
    use super::{node, OnParentFailure};
    use serde_json::value::RawValue;

    fn parsed(body: &str) -> Result<OnParentFailure, String> {
        let raw = RawValue::from_string(body.to_string()).unwrap();
        node(0, &raw).map(|n| n.on_parent_failure).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn a_null_on_parent_failure_is_the_default_and_a_bad_one_is_a_400() {
        let node = |opf: &str| format!(r#"{{"ref": "a", "task": "echo", "on_parent_failure": {opf}}}"#);
        assert_eq!(parsed(&node("null")), Ok(OnParentFailure::default()));
        assert_eq!(parsed(&node(r#""run""#)), Ok(OnParentFailure::Run));
        assert!(parsed(&node(r#""never""#)).unwrap_err().contains("tasks[0].on_parent_failure"));
    }
}
