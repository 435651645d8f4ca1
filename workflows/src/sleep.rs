//! Durable timers that do not keep an evicted workflow alive.
//!
//! SDK 1.1.1 registers each timer's cancel callback on the workflow's root cancellation token and
//! removes it only when the timer *fires*. A timer dropped before it fires (a sleeping
//! subscription evicted from the worker cache, or the timer losing a `select!`) leaves the
//! callback in the token; the callback holds a clone of the workflow context, and the context
//! owns the token: a reference cycle. Every subscription evicted while asleep stayed in the
//! worker's memory for good (about 15 KiB each; heaptrack showed the evicted contexts, see
//! BENCHMARKS.md "Worker memory").
//!
//! [`sleep`] gives the timer its own child token that lives exactly as long as the returned
//! [`Sleep`]: the callback sits in the child, the root keeps only a weak link to the child, so
//! dropping the `Sleep` frees everything. (The root keeps one small entry per timer, holding only
//! that weak link, until the run ends; a run continues as new after a bounded number of periods.)
//! Workflow cancellation still reaches the timer through the child. Which token a timer uses is
//! not part of the history: replay is unaffected. `workflows/tests/replay.rs` fails if a workflow
//! context outlives its eviction.

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
    /// The only strong reference to the timer's cancellation token.
    _scope: WorkflowCancellationToken,
}

/// Starts a durable timer of `duration`, shown in the Temporal UI as `summary`.
pub(crate) fn sleep<W>(ctx: &WorkflowContext<W>, duration: Duration, summary: String) -> Sleep<'_> {
    let scope = ctx.cancellation_token().child_token();
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
