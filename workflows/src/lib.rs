//! Temporal workflow code. Deterministic: time comes from `ctx.workflow_time()`, ids are derived,
//! every side effect is an activity from `billing-activities`.
//!
//! `SubscriptionWorkflow` owns one subscription's life (workflow id per account). Its modules
//! follow the state diagram of `shared/docs/design.md`, each importing only from those listed
//! after it:
//!
//! - `handlers`: the `#[workflow_methods]` block: `run`, updates with validators, the query;
//! - `first_payment`: start → invoice → charge by cryptogram → paid / declined / unavailable;
//! - `three_ds`: waiting for the bank's 3-D Secure answer (or expiry, or cancellation);
//! - `active`: the paid subscription's loop: sleep until due, act, re-plan, continue-as-new;
//! - `renewal`: what falls due: renewal, dunning retry, suspension, end;
//! - `charge`: the one place that moves money: charge, post3ds, reconcile, classification;
//! - `effects`: idempotent side effects: ledger, access, notifications, remembered answers;
//! - `attention`: parking in `needs_attention` what the workflow cannot resolve by itself;
//! - `step`: how a step runs (local activity, options), and a typed step failure;
//! - [`search`]: the search attributes the Temporal UI filters on, and their publication;
//! - [`patches`]: workflow code versions and the per-run baseline;
//! - `state`: the state of one run, its view, the clock;
//! - `dunning`: the pure plan of what falls due next (unit-tested);
//! - `sleep`, `cancel`: timers and waits no workflow cancellation reaches; what a Temporal
//!   cancellation request means;
//! - `testing`: test-only hooks (test clock on) for the chaos run.
//!
//! `tests/layering.rs` checks the order: the `mod` lines below list the modules top to bottom.

// The SDK's own error types (ApplicationFailure, WorkflowTermination) are large; boxing them
// at every call would only add noise.
#![allow(clippy::result_large_err)]

// Top to bottom: each module uses only those after it. One per group, so rustfmt keeps the order.
mod handlers;

mod first_payment;

mod three_ds;

mod active;

mod renewal;

mod charge;

mod effects;

mod attention;

mod step;

mod testing;

pub mod search;

pub mod patches;

mod state;

mod dunning;

mod sleep;

mod cancel;

pub use state::SubscriptionWorkflow;

/// Default task queue of the billing worker.
pub const TASK_QUEUE: &str = "billing";
