//! Releases a subscription's sticky task queue when the worker evicts it from its cache.
//!
//! After each workflow task the server sends the workflow's next task to the *sticky* queue of
//! the worker that ran it, expecting the worker to still hold the workflow in memory. A billing
//! worker keeps only `max_cached_workflows` (150) of its many sleeping subscriptions in memory,
//! so by the time a subscription renews (a month later) it was evicted long ago. The SDK (1.1.1)
//! does not tell the server about evictions, so the renewal's task still goes to the sticky
//! queue: the worker receives only the newest events, must fetch the whole history in a second
//! call, and under a burst of renewals (many due at the same instant) the tasks that wait longer
//! than the sticky schedule-to-start timeout (10 s) time out and are dispatched a second time
//! through the normal queue. Each of these costs server work per renewal (BENCHMARKS.md,
//! "Renewals").
//!
//! `StickyRelease` is a workflow interceptor, one per cached run. When a run is dropped before
//! its workflow code returned (an eviction: cache full, worker shutdown, or an error) it asks for
//! `ResetStickyTaskQueue` of that run, which the server answers by sending the run's next task to
//! the normal queue with the whole history — one dispatch, no timeout. The calls run on a
//! background task, at most [`CONCURRENT_RESETS`] at a time; a failed call only means the next task
//! takes the sticky path, so failures are logged at debug level and dropped. Runs that completed,
//! failed or continued as new are not reset (they get no further task).

use futures::StreamExt;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::workflowservice::v1::ResetStickyTaskQueueRequest;
use temporalio_sdk::workflow_interceptors::{
    ExecuteWorkflowInput, ExecuteWorkflowResult, WorkflowInterceptor,
    WorkflowInterceptorConstructor, WorkflowInterceptorContext, WorkflowInterceptorFuture,
    WorkflowNext,
};
use temporalio_sdk::WorkflowContextView;
use tokio::sync::mpsc;

/// Reset calls in flight at once.
pub const CONCURRENT_RESETS: usize = 8;

/// Longest a reset call may take (the client retries transient errors inside it); a reset that
/// did not happen only costs the next task its sticky detour.
pub const RESET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Sticky queues released so far by this process (successful reset calls).
static RELEASED: AtomicU64 = AtomicU64::new(0);

/// How many sticky queues this process has released (for tests and diagnostics).
pub fn released() -> u64 {
    RELEASED.load(Ordering::Relaxed)
}

/// One run's interceptor: resets the run's stickiness when dropped while the run is still open.
struct StickyRelease {
    workflow_id: String,
    run_id: String,
    /// The run's workflow code returned (completed, failed or continued as new).
    returned: Cell<bool>,
    evicted: mpsc::UnboundedSender<WorkflowExecution>,
}

impl WorkflowInterceptor for StickyRelease {
    fn execute<'a>(
        &'a self,
        _ctx: WorkflowInterceptorContext,
        input: ExecuteWorkflowInput,
        next: WorkflowNext<
            'a,
            ExecuteWorkflowInput,
            WorkflowInterceptorFuture<'a, ExecuteWorkflowResult>,
        >,
    ) -> WorkflowInterceptorFuture<'a, ExecuteWorkflowResult> {
        WorkflowInterceptorFuture::new(async move {
            let result = next.run(input).await;
            self.returned.set(true);
            result
        })
    }
}

impl Drop for StickyRelease {
    fn drop(&mut self) {
        if self.returned.get() {
            return;
        }
        // The receiver is gone only when the worker is shutting down.
        let _ = self.evicted.send(WorkflowExecution {
            workflow_id: std::mem::take(&mut self.workflow_id),
            run_id: std::mem::take(&mut self.run_id),
        });
    }
}

/// The interceptor constructor to register on the worker, and the task that sends the resets
/// (spawn it on the worker's runtime; it ends when the worker's interceptors are gone).
pub fn sticky_release(
    client: Client,
    namespace: String,
) -> (
    WorkflowInterceptorConstructor,
    impl std::future::Future<Output = ()> + Send,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<WorkflowExecution>();
    let constructor =
        WorkflowInterceptorConstructor::new(move |ctx: &WorkflowContextView| StickyRelease {
            workflow_id: ctx.workflow_id().to_string(),
            run_id: ctx.run_id().to_string(),
            returned: Cell::new(false),
            evicted: tx.clone(),
        });
    let resets = async move {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
            .for_each_concurrent(CONCURRENT_RESETS, |execution| {
                let mut service = client.connection().workflow_service();
                let namespace = namespace.clone();
                async move {
                    let workflow_id = execution.workflow_id.clone();
                    let request = ResetStickyTaskQueueRequest {
                        namespace,
                        execution: Some(execution),
                    };
                    let call = service.reset_sticky_task_queue(tonic::Request::new(request));
                    match tokio::time::timeout(RESET_TIMEOUT, call).await {
                        Ok(Ok(_)) => {
                            RELEASED.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Err(status)) => {
                            tracing::debug!(%workflow_id, %status, "releasing the sticky queue of an evicted workflow failed");
                        }
                        Err(_) => {
                            tracing::debug!(%workflow_id, "releasing the sticky queue of an evicted workflow timed out");
                        }
                    }
                }
            })
            .await;
    };
    (constructor, resets)
}
