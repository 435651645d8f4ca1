//! Types that cross the API → workflow → step boundary (serde JSON payloads in Temporal), split
//! by who exchanges them:
//!
//! - [`workflow`]: the workflow's input, configuration and carried state, and its update payloads;
//! - [`steps`]: requests and results of the steps (activities);
//! - [`api`]: what the edge and the workflow say to each other (answers, views, status names).
//!
//! Everything is re-exported here, so `billing_domain::messages::X` names any of them. Secrets in
//! them (cryptogram, card token, PaRes) are [`crate::secret`] types that never print.
//! Changing a field changes recorded histories: add fields with `#[serde(default)]`.

pub mod api;
pub mod steps;
pub mod workflow;

pub use api::*;
pub use steps::*;
pub use workflow::*;
