//! Every side effect of billing, as thin Temporal activities over clients.
//!
//! - [`gateway`]: the CloudPayments HTTP client (plumbing and status mapping, typed wire model,
//!   domain conversions, exact decimal amounts).
//! - [`peers`]: gRPC clients of the access and notification services.
//! - [`activities`]: `BillingActivities`, the activity implementations the worker registers.

pub mod activities;
pub mod gateway;
pub mod peers;

pub use activities::BillingActivities;
