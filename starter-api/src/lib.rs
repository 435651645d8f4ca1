//! The public edge of billing.
//!
//! - [`settings`]: every flag and environment variable (clap), and the workflows' `BillingConfig`.
//! - [`service`]: the use cases (start, get, list) over Temporal and Postgres, with typed errors.
//! - [`grpc`]: tonic `billing.v1.BillingService`, reflection and health; maps errors to statuses.
//! - [`rest`]: axum REST API + OpenAPI document + an offline docs page.
//! - [`auth`]: who is calling (bearer JWTs verified against the auth service's JWKS) and on
//!   whose behalf it may act.
//! - [`app`]: `App::build(settings)` → ports → `run_until_stopped(shutdown)`.

pub mod app;
pub mod auth;
pub mod grpc;
pub mod rest;
pub mod service;
pub mod settings;

pub use app::App;
pub use settings::Settings;
