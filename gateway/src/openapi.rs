//! The OpenAPI 3.1 document, generated from the handlers' annotations. The
//! committed copy is `openapi/openapi.json`; a test fails when it is stale
//! (regenerate with `cargo run -p yadtq-gateway -- openapi > openapi/openapi.json`).

use utoipa::{Modify, OpenApi};
use yadtq_core::names::TaskId;

use crate::routes::schedules;

/// The gateway's API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "yadtq", description = "Distributed task queue: submit tasks over HTTP, workers run them from Kafka, results in PostgreSQL."),
    servers((url = "http://127.0.0.1:8080", description = "The gateway's default listen address (`--listen`, `YADTQ_LISTEN`)")),
    paths(
        crate::routes::tasks::submit,
        crate::routes::batch::submit_batch,
        crate::routes::tasks::list,
        crate::routes::tasks::get,
        crate::routes::events::stream,
        crate::routes::control::attempts,
        crate::routes::control::cancel,
        crate::routes::control::retry,
        crate::routes::schedules::create,
        crate::routes::schedules::list,
        crate::routes::schedules::get,
        crate::routes::schedules::update,
        crate::routes::schedules::delete,
        crate::routes::schedules::trigger,
        crate::routes::schedules::backfill,
        crate::routes::limits::put,
        crate::routes::limits::list,
        crate::routes::limits::get,
        crate::routes::limits::delete,
        crate::routes::workers::list,
        crate::routes::queues::list,
        crate::routes::dead_letters::list,
        crate::routes::dead_letters::get,
        crate::routes::dead_letters::replay,
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::metrics::render,
        crate::routes::admin::create_key,
        crate::routes::admin::list_keys,
        crate::routes::admin::revoke_key,
        crate::routes::admin::audit,
        crate::routes::me::get,
        crate::routes::workflows::submit,
        crate::routes::workflows::list,
        crate::routes::workflows::get,
        crate::routes::workflows::cancel,
        crate::routes::workflows::wait,
        document,
    ),
    components(schemas(
        crate::submit::SubmitRequest,
        crate::routes::batch::BatchRequest,
        crate::routes::workflows::WorkflowRequest,
        crate::routes::workflows::WorkflowNodeRequest,
        crate::routes::workflows::Workflow,
        crate::routes::workflows::NodeState,
        crate::routes::workflows::WorkflowPage,
        crate::routes::workflows::WorkflowSummary,
        crate::routes::workflows::WorkflowCancelled,
        crate::routes::workflows::WaitRequest,
        crate::routes::workflows::WaitResponse,
        crate::routes::workflows::Until,
        yadtq_core::store::workflows::WorkflowStatus,
        yadtq_core::store::workflows::OnParentFailure,
        crate::routes::batch::BatchResponse,
        crate::routes::tasks::TaskPage,
        crate::routes::workers::WorkerPage,
        yadtq_core::model::Attempt,
        yadtq_core::model::Progress,
        crate::problem::Problem,
        crate::routes::health::Health,
        yadtq_core::model::Task,
        yadtq_core::model::TaskStatus,
        yadtq_core::model::TaskError,
        yadtq_core::model::Worker,
        yadtq_core::auth::Scope,
        yadtq_core::store::keys::ApiKey,
        yadtq_core::store::audit::AuditEntry,
        crate::routes::admin::CreateKey,
        yadtq_core::store::keys::CreatedKey,
        crate::routes::admin::AuditPage,
        crate::routes::me::Me,
        crate::routes::queues::Queues,
        crate::routes::queues::QueueOverview,
        crate::routes::queues::Minute,
        yadtq_core::inspect::DeadLetters,
        yadtq_core::inspect::DeadLetter,
        crate::routes::limits::PutLimit,
        crate::routes::limits::Limit,
        crate::routes::limits::LimitDetail,
        crate::routes::limits::LimitPage,
        crate::routes::limits::Bucket,
        yadtq_core::model::TaskLimitState,
        crate::routes::schedules::CreateSchedule,
        crate::routes::schedules::PatchSchedule,
        crate::routes::schedules::Backfill,
        crate::routes::schedules::Schedule,
        crate::routes::schedules::SchedulePage,
        crate::routes::schedules::TemplateView,
        crate::routes::schedules::TaskTemplate,
        crate::routes::schedules::FireView,
        crate::routes::schedules::FireResult,
        yadtq_core::schedule::spec::SpecInput,
        yadtq_core::schedule::plan::Overlap,
    )),
    modifiers(&BearerKeys),
    tags(
        (name = "tasks", description = "Submit and read tasks"),
        (name = "schedules", description = "Periodic tasks: one run per tick, with overlap, catch-up, backfill and time zones"),
        (name = "limits", description = "Named concurrency and rate limits per tenant, one bucket per key value"),
        (name = "workflows", description = "DAGs of tasks: results passed along, one wait for many tasks"),
        (name = "workers", description = "The worker roster"),
        (name = "queues", description = "Per-queue counts, throughput and lag"),
        (name = "dead-letters", description = "Records the workers could not read, and replaying the tasks they name"),
        (name = "health", description = "Liveness and readiness"),
        (name = "admin", description = "API keys and the audit log (the `admin` scope)"),
        (name = "meta", description = "This API description, and the caller's own key"),
    )
)]
pub struct ApiDoc;

/// API keys: an HTTP bearer scheme required by every operation (the
/// document's top-level `security`) except those that declare themselves
/// public (`security: [{}]`: health, readiness, this document, metrics).
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An API key (`yadtq_…`), from `yadtq-gateway keys create` or `POST /admin/keys`"))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
        openapi.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// Adds the 401 and 403 answers to every operation that needs a key (one
/// without its own `security`), rather than repeating them in each
/// annotation; an operation that describes its own 403 keeps it.
fn auth_responses(doc: &mut serde_json::Value) {
    let problem = |description: &str| {
        serde_json::json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        })
    };
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for op in paths.values_mut().filter_map(|item| item.as_object_mut()).flat_map(|item| item.values_mut()) {
        if op.get("security").is_some() {
            continue;
        }
        let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else { continue };
        responses.insert(
            "401".into(),
            problem("No API key (`Authorization: Bearer <key>`), or one that is unknown or revoked"),
        );
        responses.entry("403").or_insert_with(|| {
            problem("The key lacks the scope this operation needs (the detail names it), or may not use this queue")
        });
        responses.sort_keys();
    }
}

/// Serve this document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "getOpenapi", security(()), responses(
    (status = 200, description = "The OpenAPI 3.1 document (the committed `openapi/openapi.json`)", body = Object),
))]
pub async fn document() -> axum::Json<serde_json::Value> {
    axum::Json(full())
}

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn pretty() -> String {
    let mut s = serde_json::to_string_pretty(&full()).expect("openapi serialises");
    s.push('\n');
    s
}

/// The generated document with what utoipa cannot say: the event stream's
/// schema. For `text/event-stream`, an OpenAPI 3.1 `schema` describes one
/// event (the reading OpenAPI 3.2 makes explicit with `itemSchema`): its
/// `event` name and its `data`, one line of JSON whose own schema is `Task`
/// (`contentMediaType` / `contentSchema`, which utoipa's schema types lack).
pub fn full() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("openapi serialises");
    id_patterns(&mut doc);
    links_in_camel_case(&mut doc);
    auth_responses(&mut doc);
    crate::edge::document_refusals(&mut doc);
    submission_relations(&mut doc);
    let sse = &mut doc["paths"]["/tasks/{id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"];
    assert!(sse.is_object(), "the event stream's response is in the document");
    *sse = serde_json::json!({
        "schema": {
            "type": "object",
            "description": "One server-sent event.",
            "required": ["event", "data"],
            "properties": {
                "event": {
                    "type": "string",
                    "enum": ["status", "progress"],
                    "description": "`status` for the first event and each status change, `progress` for a progress report"
                },
                "data": {
                    "type": "string",
                    "description": "The task as `GET /tasks/{id}` returns it, as one line of JSON",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": "#/components/schemas/Task"}
                }
            }
        },
        "example": {
            "event": "status",
            "data": "{\"id\":\"order-42\",\"task\":\"multiply\",\"status\":\"queued\",...}"
        }
    });
    doc
}

/// Every task id of the API (the `{id}` of `/tasks/{id}/…`, the
/// `Idempotency-Key` headers and the submission's `id` and `task-id`) gets
/// its pattern from [`TaskId::PATTERN`], and every schedule id (the `{id}`
/// of `/schedules/{id}/…`, `POST /schedules`' `id`, `GET /tasks?schedule=`)
/// from [`schedules::ID_PATTERN`], so the document says the rule the gateway
/// checks in one place (utoipa's `pattern` attribute takes only a literal).
fn id_patterns(doc: &mut serde_json::Value) {
    let task_id = serde_json::Value::from(TaskId::PATTERN);
    let schedule_id = serde_json::Value::from(schedules::ID_PATTERN);
    let limit_name = serde_json::Value::from(crate::routes::limits::NAME_PATTERN);
    let set = |schema: &mut serde_json::Value, pattern: &serde_json::Value, what: &str| {
        assert!(schema.is_object(), "{what} is in the document");
        schema["pattern"] = pattern.clone();
    };
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        for (method, op) in item.as_object_mut().expect("a path item").iter_mut() {
            for param in op.get_mut("parameters").and_then(serde_json::Value::as_array_mut).into_iter().flatten() {
                let named = |name: &str, at: &str| param["name"] == name && param["in"] == at;
                let pattern = if (named("id", "path") && path.starts_with("/tasks/{id}"))
                    || (named("Idempotency-Key", "header") && (path == "/tasks" || path == "/tasks/batch"))
                {
                    &task_id
                } else if named("name", "path") && path.starts_with("/limits/{name}") {
                    &limit_name
                } else if (named("id", "path") && path.starts_with("/schedules/{id}"))
                    || (named("schedule", "query") && path == "/tasks")
                {
                    &schedule_id
                } else {
                    continue;
                };
                let what = format!("{method} {path}'s {}", param["name"]);
                set(&mut param["schema"], pattern, &what);
            }
        }
    }
    for field in ["id", "task-id"] {
        let schema = &mut doc["components"]["schemas"]["SubmitRequest"]["properties"][field];
        set(schema, &task_id, &format!("SubmitRequest.{field}"));
    }
    set(&mut doc["components"]["schemas"]["CreateSchedule"]["properties"]["id"], &schedule_id, "CreateSchedule.id");
    set(&mut doc["components"]["schemas"]["WaitRequest"]["properties"]["ids"]["items"], &task_id, "WaitRequest.ids[]");
    // A node's parents are refs: the `ref` pattern, stated once in the attribute.
    let node = &mut doc["components"]["schemas"]["WorkflowNodeRequest"]["properties"];
    let node_ref = node["ref"]["pattern"].clone();
    assert!(node_ref.is_string(), "WorkflowNodeRequest.ref has a pattern");
    set(&mut node["depends_on"]["items"], &node_ref, "WorkflowNodeRequest.depends_on[]");
}

/// The rule between a submission's fields that JSON Schema can state, and
/// utoipa's derive cannot: `countdown` and `eta` are exclusive (the gateway
/// answers 400 naming `eta` when both are given, not null). As a `not` on
/// `SubmitRequest`, so generators of valid requests (schemathesis) keep it,
/// and it holds for each task of a batch too. The other relations (ids that
/// must agree across the `Idempotency-Key` header and the body, a backoff cap
/// at least its base, `eta` within `YADTQ_MAX_SCHEDULE_AHEAD` of the clock)
/// compare values or depend on the clock: the schema says them in words.
/// `PutLimit` needs `concurrency` or `rate` (non-null): a `not` of both
/// null or absent; a task's `limits` are `uniqueItems`.
fn submission_relations(doc: &mut serde_json::Value) {
    let submit = &mut doc["components"]["schemas"]["SubmitRequest"];
    assert!(submit.is_object(), "SubmitRequest is in the document");
    submit["not"] = serde_json::json!({
        "description": "`countdown` and `eta` are exclusive: give at most one of them (null counts as absent)",
        "required": ["countdown", "eta"],
        "properties": {"countdown": {"type": "number"}, "eta": {"type": "string"}}
    });
    // A name twice is a 400 naming `limits[j]`; utoipa has no `uniqueItems` attribute.
    let limits = &mut submit["properties"]["limits"];
    assert!(limits.is_object(), "SubmitRequest.limits is in the document");
    limits["uniqueItems"] = true.into();
    let limit = &mut doc["components"]["schemas"]["PutLimit"];
    assert!(limit.is_object(), "PutLimit is in the document");
    // A `not` rather than an `anyOf` of two `required`s: SDK generators
    // ignore it (an `anyOf` makes them a union of two body types).
    limit["not"] = serde_json::json!({
        "description": "at least one of `concurrency` and `rate` (null counts as absent)",
        "properties": {"concurrency": {"type": "null"}, "rate": {"type": "null"}}
    });
    limit["description"] = serde_json::json!(
        "Body of `PUT /limits/{name}`: the whole limit (absent fields are unset, not kept). \
         At least one of `concurrency` and `rate` (null counts as absent)."
    );
}

/// utoipa 5.5 writes a Link object's fields in snake case (`operation_id`);
/// OpenAPI names them `operationId`, `operationRef`, `requestBody`.
fn links_in_camel_case(doc: &mut serde_json::Value) {
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    let responses = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|r| r.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else { continue };
        for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
            for (from, to) in
                [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")]
            {
                if let Some(v) = link.shift_remove(from) {
                    link.insert(to.to_string(), v);
                }
            }
        }
    }
}
