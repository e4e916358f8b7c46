//! The yadtq HTTP gateway as a library: [`run`] serves the API as the
//! `yadtq-gateway serve` command does, [`router`] is the API itself (every
//! route and layer, for in-process use and tests), [`openapi::pretty`] the
//! OpenAPI document and [`keys`] the `keys` subcommands.

mod auth;
pub mod config;
mod edge;
mod inserter;
pub mod keys;
mod marker;
mod notify;
pub mod openapi;
mod problem;
mod publish;
mod routes;
mod server;
mod state;
mod submit;
mod ui;

pub use config::GatewayConfig;
pub use routes::router;
pub use server::run;
pub use state::AppState;
