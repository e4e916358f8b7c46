//! The OpenAPI 3.1 document, generated from the handlers' annotations. The
//! committed copy is `openapi/openapi.json`; a test fails when it is stale
//! (regenerate with `cargo run -p yadtq-gateway -- openapi > openapi/openapi.json`).

use utoipa::{Modify, OpenApi};

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
        crate::routes::workers::list,
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::metrics::render,
        document,
    ),
    components(schemas(
        crate::submit::SubmitRequest,
        crate::routes::batch::BatchRequest,
        crate::routes::batch::BatchResponse,
        crate::routes::tasks::TaskPage,
        yadtq_core::model::Attempt,
        yadtq_core::model::Progress,
        crate::problem::Problem,
        crate::routes::health::Health,
        yadtq_core::model::Task,
        yadtq_core::model::TaskStatus,
        yadtq_core::model::TaskError,
        yadtq_core::model::Worker,
    )),
    modifiers(&Public),
    tags(
        (name = "tasks", description = "Submit and read tasks"),
        (name = "workers", description = "The worker roster"),
        (name = "health", description = "Liveness and readiness"),
        (name = "meta", description = "This API description"),
    )
)]
pub struct ApiDoc;

/// Declares the API public: `security: []` at the top level. The gateway has
/// no authentication yet, and saying so explicitly (rather than leaving
/// `security` out) tells generators and linters it is deliberate.
struct Public;

impl Modify for Public {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.security = Some(Vec::new());
    }
}

/// Serve this document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "getOpenapi", responses(
    (status = 200, description = "The OpenAPI 3.1 document (the committed `openapi/openapi.json`)", body = Object),
))]
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn pretty() -> String {
    let mut s = ApiDoc::openapi().to_pretty_json().expect("openapi serialises");
    s.push('\n');
    s
}
