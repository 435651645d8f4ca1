//! Temporal workflow code. Deterministic: time comes from `ctx.workflow_time()`, ids are derived,
//! every side effect is an activity from `billing-activities`.
//!
//! - [`subscription`]: `SubscriptionWorkflow`, one per subscription (workflow id per account).
//! - [`search`]: the search attributes the Temporal UI filters on.
//! - `cancel`: what a Temporal cancellation request means; waits, timers and steps it must not
//!   interrupt.

// The SDK's own error types (ApplicationFailure, WorkflowTermination) are large; boxing them
// at every call would only add noise.
#![allow(clippy::result_large_err)]

pub mod billing;
mod cancel;
mod effects;
pub mod patches;
pub mod search;
mod sleep;
pub mod step;
pub mod subscription;

pub use subscription::SubscriptionWorkflow;

/// Default task queue of the billing worker.
pub const TASK_QUEUE: &str = "billing";
