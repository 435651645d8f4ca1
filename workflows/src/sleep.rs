//! Durable timers that do not keep an evicted workflow alive, and that no workflow cancellation
//! reaches.
//!
//! SDK 1.1.1 registers each timer's cancel callback on the timer's cancellation token (by default
//! the workflow's root token) and removes it only when the timer *fires*. A timer dropped before
//! it fires (a sleeping subscription evicted from the worker cache, or the timer losing a
//! `select!`) leaves the callback in the token; the callback holds a clone of the workflow
//! context, and the context owns the root token: a reference cycle. Every subscription evicted
//! while asleep stayed in the worker's memory for good (about 15 KiB each; heaptrack showed the
//! evicted contexts, see BENCHMARKS.md "Worker memory").
//!
//! [`sleep`] gives the timer a token of its own that lives exactly as long as the returned
//! [`Sleep`], so dropping the `Sleep` frees everything. The token is detached from the root
//! (`crate::cancel`): a Temporal cancellation request does not resolve the timer; the workflow
//! races [`crate::cancel::request`] where it means to react. Which token a timer uses is not part
//! of the history: replay is unaffected. `workflows/tests/replay.rs` fails if a workflow context
//! outlives its eviction.

use futures::future::FusedFuture;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use temporalio_sdk::{CancellableFuture, TimerOptions, TimerResult, WorkflowContext};
use temporalio_workflow::WorkflowCancellationToken;

/// A durable timer scoped to this value (see the module docs).
pub(crate) struct Sleep<'a> {
    timer: Pin<Box<dyn CancellableFuture<Output = TimerResult> + 'a>>,
    /// The only strong reference to the timer's cancellation token (detached from the root).
    _scope: WorkflowCancellationToken,
}

/// Starts a durable timer of `duration`, shown in the Temporal UI as `summary`.
pub(crate) fn sleep<W>(ctx: &WorkflowContext<W>, duration: Duration, summary: String) -> Sleep<'_> {
    let scope = crate::cancel::detached();
    let timer = ctx.timer(
        TimerOptions::builder(duration)
            .summary(summary)
            .cancellation_token(scope.clone())
            .build(),
    );
    Sleep {
        timer: Box::pin(timer),
        _scope: scope,
    }
}

impl Sleep<'_> {
    /// Cancels the timer (a `CancelTimer` command) if it has not fired.
    pub(crate) fn cancel(&self) {
        self.timer.cancel();
    }
}

impl Future for Sleep<'_> {
    type Output = TimerResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TimerResult> {
        self.timer.as_mut().poll(cx)
    }
}

impl FusedFuture for Sleep<'_> {
    fn is_terminated(&self) -> bool {
        self.timer.is_terminated()
    }
}
