//! Every side effect of billing, as thin Temporal activities over clients.
//!
//! - [`gateway`]: the CloudPayments HTTP client (wire types, error classification, decimal edge).
//! - [`peers`]: gRPC clients of the access and notification services.
//! - [`activities`]: `BillingActivities`, the activity implementations the worker registers.

pub mod activities;
pub mod gateway;
pub mod peers;

pub use activities::BillingActivities;
