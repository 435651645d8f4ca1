//! Temporal cancellation requests, handled on purpose.
//!
//! A cancellation request (the Web UI's "Request Cancellation" button, `temporal workflow
//! cancel`) cancels the run's root cancellation token, and by default every SDK timer, wait and
//! activity inherits that token: they all resolve at once as "cancelled". Left to the defaults,
//! the renewal loop re-planned after its cancelled timer, started a new timer that was cancelled
//! before it could wait, and looped forever inside one workflow activation; since the SDK runs
//! every workflow of a worker on one thread, one click stopped all billing (issue 11). A charge
//! in flight would also have been abandoned with its outcome unknown, and the waits of update
//! handlers would have answered early with a wrong answer.
//!
//! So nothing inherits the root token: every timer ([`crate::sleep::sleep`]), every wait
//! ([`until`]) and every step ([`crate::step::step`]) runs with a [`detached`] token, and the
//! workflow looks at the request itself, at its wait points only ([`requested`],
//! [`request`]). What a request means (README, "Operators"):
//! - before the first payment has started: the run ends, nothing charged;
//! - a step in flight (above all a charge or post3ds) is never interrupted: the request takes
//!   effect once its outcome is known;
//! - waiting for the bank's 3-D Secure answer: the invoice is voided, nothing is charged, the
//!   subscription is cancelled and the user told;
//! - a paid subscription (active, past due, suspended, cancel pending): cancel now, exactly as
//!   `CancelSubscription` with `immediately` (access revoked, the open invoice voided, notified,
//!   the database updated);
//! - a first payment that ends the subscription anyway (declined, expired) ends it that way.
//!
//! The run then closes as Canceled; queries keep answering `cancelled`.
//!
//! A wait that resolves as "cancelled" although nobody cancelled it would bring the spin back:
//! [`bug`] fails the workflow task instead (Temporal retries it; the history is untouched).

use futures::future::FusedFuture;
use futures::FutureExt;
use temporalio_sdk::{WaitConditionOptions, WorkflowContext, WorkflowResult};
use temporalio_workflow::WorkflowCancellationToken;

/// A token no workflow cancellation reaches: for timers, waits and steps (see the module docs).
pub(crate) fn detached() -> WorkflowCancellationToken {
    WorkflowCancellationToken::new()
}

/// Whether a Temporal cancellation request has reached this run.
pub(crate) fn requested<W>(ctx: &WorkflowContext<W>) -> bool {
    ctx.cancellation_token().is_cancelled()
}

/// Resolves when a Temporal cancellation request reaches this run (a `select!` branch).
pub(crate) fn request<W>(ctx: &WorkflowContext<W>) -> impl FusedFuture<Output = ()> + '_ {
    ctx.cancelled().map(|_| ())
}

/// Waits until `condition` holds on the workflow state; a cancellation request does not end the
/// wait (unlike `ctx.wait_condition`).
pub(crate) fn until<'a, W>(
    ctx: &'a WorkflowContext<W>,
    condition: impl FnMut(&W) -> bool + 'a,
) -> impl FusedFuture<Output = ()> + 'a {
    ctx.wait_condition_with_options(
        condition,
        WaitConditionOptions::builder()
            .cancellation_token(detached())
            .build(),
    )
    .map(|_| ())
}

/// An impossible wake-up (e.g. a timer nobody cancelled resolved as cancelled): re-planning now
/// would loop without waiting. Fails the workflow task with `what` instead, so the worker's log
/// and `TemporalReportedProblems` show it, Temporal retries the task, and the other workflows
/// keep running. Never returns.
pub(crate) async fn bug<W, T>(ctx: &WorkflowContext<W>, what: String) -> WorkflowResult<T> {
    ctx.force_task_fail(format!("billing workflow bug: {what}"));
    std::future::pending().await
}
