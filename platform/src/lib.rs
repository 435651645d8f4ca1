//! What every billing binary needs the same way, in one small crate below them all, so that the
//! edge (`starter-api`) does not link the worker (and with it the gateway client and the
//! repository):
//!
//! - [`temporal`]: the Temporal connection settings (address, namespace, task queue, TLS, API
//!   key) as clap arguments, and the client they connect;
//! - [`config`]: the run mode (production or dev) and the value parsers every binary's settings
//!   use (durations, lists), so each variable has one definition and one syntax;
//! - [`telemetry`]: tracing set-up, once per binary.

pub mod config;
pub mod telemetry;
pub mod temporal;
