//! The OpenAPI 3.1 document, generated from the handlers' annotations. The
//! committed copy is `openapi/openapi.json`; a test fails when it is stale
//! (regenerate with `cargo run -p yadtq-gateway -- openapi > openapi/openapi.json`).

use utoipa::OpenApi;

/// The gateway's API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "yadtq", description = "Distributed task queue: submit tasks over HTTP, workers run them from Kafka, results in PostgreSQL."),
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
    tags(
        (name = "tasks", description = "Submit and read tasks"),
        (name = "workers", description = "The worker roster"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn pretty() -> String {
    let mut s = ApiDoc::openapi().to_pretty_json().expect("openapi serialises");
    s.push('\n');
    s
}
