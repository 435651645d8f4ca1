//! The runaway / deadlock detector (vendor/README.md, "workflow thread"): one workflow whose
//! code never waits cannot stop the others. Two deliberately broken test workflows run on the
//! billing worker next to real subscriptions:
//! - `Spinner` re-plans a timer it cancels itself, forever (the shape of the bug behind a
//!   Temporal cancellation request, issue 11): stopped at the activation deadline, its task
//!   failed, the run quarantined;
//! - `Blocker` spins on the CPU without ever calling the SDK: its thread is abandoned after
//!   twice the deadline and a new one takes over.
//!
//! Meanwhile subscriptions keep being paid and renewed, and the worker's log names the culprit.
//!
//! Real Temporal, Postgres, gateway emulator, gRPC stand-ins.

mod common;

use common::*;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use temporalio_client::WorkflowStartOptions;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{CancellableFuture, TimerOptions, WorkflowContext, WorkflowResult};

/// Re-plans forever: starts a timer, cancels it, awaits it (already resolved), again.
#[workflow]
#[derive(Default)]
pub struct Spinner {
    _unused: bool,
}

#[workflow_methods]
impl Spinner {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        loop {
            let t = ctx.timer(TimerOptions::builder(Duration::from_secs(3600)).build());
            t.cancel();
            let _ = t.await;
        }
    }
}

/// Set at the end of a test so that the abandoned thread stops burning a core.
static RELEASE_BLOCKER: AtomicBool = AtomicBool::new(false);

/// Blocks its thread without calling the SDK (at most a minute, so a failed test ends).
#[workflow]
#[derive(Default)]
pub struct Blocker {
    _unused: bool,
}

#[workflow_methods]
impl Blocker {
    #[run]
    #[allow(clippy::disallowed_methods)] // deliberately non-deterministic: it is the culprit
    pub async fn run(_ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while !RELEASE_BLOCKER.load(Ordering::Relaxed) && std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        Ok(())
    }
}

/// Everything the process logs, for the assertions on the worker's log.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .try_init();
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        std::io::stderr().write_all(b)?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&log().lock().unwrap()).to_string()
}

async fn harness() -> Harness {
    log();
    let customize: Customizer = Arc::new(|w: &mut temporalio_sdk::WorkerOptions| {
        w.register_workflow::<Spinner>()
            .map_err(|e| billing_worker::WorkerError::Config(e.to_string()))?;
        w.register_workflow::<Blocker>()
            .map_err(|e| billing_worker::WorkerError::Config(e.to_string()))?;
        Ok(())
    });
    Harness::start(Options {
        customize: Some(customize),
        ..Options::default()
    })
    .await
}

/// The failure messages of the workflow tasks that failed in workflow `id`'s history.
async fn failed_task_messages(id: &str) -> Vec<String> {
    untyped_handle(id, None)
        .await
        .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .expect("history")
        .into_iter()
        .filter_map(|e| match e.attributes {
            Some(Attributes::WorkflowTaskFailedEventAttributes(a)) => {
                Some(a.failure.map(|f| f.message).unwrap_or_default())
            }
            _ => None,
        })
        .collect()
}

/// Waits (up to 30 s) for workflow `id`'s history to show a task failed by the detector.
async fn runaway_failure_of(id: &str) -> String {
    for _ in 0..300 {
        if let Some(m) = failed_task_messages(id)
            .await
            .into_iter()
            .find(|m| m.contains("[RUNAWAY]"))
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no runaway failure in {id}'s history: {:?}",
        failed_task_messages(id).await
    );
}

async fn status_of(id: &str) -> temporalio_client::WorkflowExecutionStatus {
    untyped_handle(id, None)
        .await
        .describe(temporalio_client::WorkflowDescribeOptions::default())
        .await
        .expect("describe")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spinning_workflow_is_stopped_and_billing_goes_on() {
    let h = harness().await;
    let before = a_new_subscription_is_paid(&h).await;
    let id = format!("spinner-{}", uuid::Uuid::new_v4().simple());
    let client = billing_platform::temporal::connect_to(&temporal_address(), "default")
        .await
        .expect("temporal");
    client
        .start_workflow(
            Spinner::run,
            (),
            WorkflowStartOptions::new(h.task_queue.clone(), id.clone()).build(),
        )
        .await
        .expect("start spinner");
    // While it spins and after it was stopped, subscriptions are paid.
    a_new_subscription_is_paid(&h).await;
    let message = runaway_failure_of(&id).await;
    assert!(message.contains("deadline"), "{message}");
    for _ in 0..3 {
        a_new_subscription_is_paid(&h).await;
    }
    // A subscription paid before the spin still renews.
    let v = advance(&h, &before, 40 * 86_400).await;
    assert_eq!((v.status.as_str(), v.renewals), ("active", 1), "{v:?}");
    // Stopped, not failed: the workflow is still running (its task fails until fixed code is
    // deployed), and the worker's log names it.
    assert_eq!(
        status_of(&id).await,
        temporalio_client::WorkflowExecutionStatus::Running
    );
    // Operators find it the way the README says.
    let problems = format!(
        "WorkflowId = '{id}' AND ExecutionStatus = 'Running' AND TemporalReportedProblems IN ('category=WorkflowTaskFailed', 'category=WorkflowTaskTimedOut')"
    );
    let mut flagged = false;
    for _ in 0..100 {
        if client
            .count_workflows(problems.clone(), Default::default())
            .await
            .expect("count")
            .count()
            > 0
        {
            flagged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(flagged, "not found by: {problems}");
    let logged = log_text();
    assert!(
        logged
            .lines()
            .any(|l| l.contains("workflow task failed") && l.contains(&id) && l.contains("ERROR")),
        "the worker's log does not show the failed task of {id}:\n{logged}"
    );
    assert!(temporalio_sdk::failed_workflow_tasks() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blocking_workflow_costs_one_thread_and_billing_goes_on() {
    let h = harness().await;
    // Cached on the first workflow thread when it gets blocked.
    let before = a_new_subscription_is_paid(&h).await;
    let id = format!("blocker-{}", uuid::Uuid::new_v4().simple());
    let client = billing_platform::temporal::connect_to(&temporal_address(), "default")
        .await
        .expect("temporal");
    client
        .start_workflow(
            Blocker::run,
            (),
            WorkflowStartOptions::new(h.task_queue.clone(), id.clone()).build(),
        )
        .await
        .expect("start blocker");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Started while the thread is blocked: answered once a new thread has taken over.
    a_new_subscription_is_paid(&h).await;
    let message = runaway_failure_of(&id).await;
    assert!(message.contains("deadline"), "{message}");
    a_new_subscription_is_paid(&h).await;
    // The subscription that lived on the lost thread answers and renews (replayed on the new one).
    let view = h.subscription_of(&before).await.expect("query");
    assert_eq!(view.status, "active");
    let v = advance(&h, &before, 40 * 86_400).await;
    assert_eq!((v.status.as_str(), v.renewals), ("active", 1), "{v:?}");
    assert_eq!(
        h.completed_charges().await,
        4,
        "3 first payments + 1 renewal, each once"
    );
    let logged = log_text();
    assert!(
        logged
            .lines()
            .any(|l| l.contains("abandoning the thread") && l.contains(&id)),
        "the worker's log does not show the blocked thread and {id}:\n{logged}"
    );
    RELEASE_BLOCKER.store(true, Ordering::Relaxed);
}
