//! The CloudPayments client, split as hyperswitch splits a connector:
//! - `client`: HTTP plumbing (base URL, Basic auth, timeout, `X-Request-ID`, the mapping of
//!   every HTTP status, reading the envelope);
//! - `wire`: one request and one response type per call, the envelope, the Transaction and
//!   3-D Secure models;
//! - `json`: reading the gateway's JSON exactly (numbers as their decimal text, keys matched
//!   ignoring case);
//! - `transformers`: domain ↔ wire conversions, amounts as exact decimals of the currency, and
//!   the response shapes turned into results or [`GatewayError`]s.
//!
//! Amounts become decimal major units only here, and never pass through floating point.

mod client;
mod json;
mod transformers;
mod wire;

pub use client::{GatewayClient, GatewaySettings};

use billing_domain::messages::GatewayTransaction;
use std::time::Duration;

/// Gateway call errors. Declines are data (`Declined`), not transport failures.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The bank declined: final for this attempt; the transaction is attached.
    #[error("declined with reason code {}", .0.reason_code)]
    Declined(Box<GatewayTransaction>),
    /// The gateway refused the request as wrong (`Success:false` + `Message`, or a 4xx):
    /// nothing was processed; fix the request, retrying the same request cannot help.
    #[error("gateway rejected the request: {0}")]
    Rejected(String),
    /// The outcome is unknown: 5xx, 408, a timeout, a connection error or cut, an unreadable or
    /// contradictory answer. Retry with the same `X-Request-ID`, or ask `/payments/find`.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
    /// HTTP 429: too many requests in flight on the terminal. Refused before processing, so not
    /// an attempt; retry later (with the same `X-Request-ID`), after `retry_after` if given.
    #[error(
        "{path}: rate limited by the gateway (HTTP 429){}",
        .retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default()
    )]
    RateLimited {
        path: &'static str,
        retry_after: Option<Duration>,
    },
    /// 401/403 (407 from a proxy): our terminal credentials or permissions are wrong. Refused
    /// before processing; an operator must fix the configuration.
    #[error("gateway refused our credentials (HTTP {status})")]
    Unauthorized { status: u16 },
}
