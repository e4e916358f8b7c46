//! Shared library of yadtq: the task model, the Kafka envelope, configuration,
//! the PostgreSQL data layer and the maintenance services (leader, rescuer,
//! publisher) that every gateway and worker process runs.
//!
//! `docs/architecture.md` says which guarantees these types keep and how (the
//! design it implements, `shared/design.md`, lives outside this repository).

pub mod auth;
pub mod batch;
pub mod config;
pub mod envelope;
#[cfg(any(test, feature = "test-support"))]
pub mod fuzzing;
pub mod inspect;
pub mod kafka;
pub mod kafka_security;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod names;
pub mod periodic;
pub mod publish;
pub mod queues;
pub mod schedule;
pub mod store;
pub mod telemetry;
pub mod tenants;
pub mod validate;

/// Version string recorded in the `workers` table and reported by the services.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
