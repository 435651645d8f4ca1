//! What every billing binary needs the same way, in one small crate below them all, so that the
//! edge (`starter-api`) does not link the worker (and with it the gateway client and the
//! repository):
//!
//! - [`temporal`]: the Temporal connection settings (address, namespace, task queue, TLS, API
//!   key, payload keys) as clap arguments, and the client they connect;
//! - [`codec`]: payload encryption (AES-256-GCM under rotating key ids from
//!   `BILLING_PAYLOAD_KEYS`), the data converter that applies it, and the codec-server bodies;
//! - [`config`]: the run mode (production or dev) and the value parsers every binary's settings
//!   use (durations, lists), so each variable has one definition and one syntax;
//! - [`telemetry`]: tracing set-up, once per binary.

pub mod codec;
pub mod config;
pub mod telemetry;
pub mod temporal;
