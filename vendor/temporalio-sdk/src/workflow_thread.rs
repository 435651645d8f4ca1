//! PATCHED (billing engine, see vendor/README.md): workflow code runs on a thread of its own,
//! watched by a runaway / deadlock detector.
//!
//! Upstream 1.1.1 polls every workflow future of a worker, the activity poller and the
//! completion processor inside one task (`TODO [rust-sdk-branch]: Deadlock detection`). One
//! workflow activation that never returns (a loop that never waits, a blocking call) therefore
//! stops every workflow *and* every activity of the worker, silently.
//!
//! Here:
//! - the workflow futures run on a dedicated thread ([`spawn`]) with its own single-threaded
//!   runtime; the worker's task keeps polling activities (local ones included) and reporting
//!   completions whatever workflow code does;
//! - each activation has a deadline ([`RunawayGuard`], `WorkerOptions::workflow_activation_deadline`,
//!   default 2 s, like the Python SDK's deadlock timeout). Workflow code that is still running
//!   when it passes is stopped at its next SDK command or routine pass (`workflow_future.rs`),
//!   and an activation that returns after it is not used: either way the workflow task fails
//!   with a clear message and the run is **quarantined** on this worker (its later attempts are
//!   failed at once, without running its code), for `runaway_quarantine`, doubling on repeats;
//! - code that never reaches the SDK again (a `loop {}`, a deadlock on a std mutex) cannot be
//!   stopped from outside in Rust. After twice the deadline the [`Router`] abandons the thread
//!   (it keeps spinning, but nothing is routed to it any more), fails or evicts every run that
//!   lived on it (core replays them on a fresh thread), quarantines the culprit and carries on
//!   with a new thread. After [`MAX_LOST_THREADS`] such losses the worker stops with a fatal
//!   error, so that a supervisor restarts the process.
//!
//! Every failed workflow task is logged at error level with its workflow id, run id and cause,
//! and counted ([`failed_workflow_tasks`]).

use crate::{
    workflow_executor::{TaskHandle, WorkflowExecutor},
    workflow_future::start_workflow,
    workflow_interceptors::WorkflowInterceptorConstructor,
    workflow_registry::WorkflowDefinitions,
};
use anyhow::{anyhow, bail};
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use std::{
    cell::RefCell,
    collections::HashMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use temporalio_common::{
    data_converters::DataConverter,
    protos::{
        coresdk::{
            workflow_activation::{WorkflowActivation, workflow_activation_job::Variant},
            workflow_completion::WorkflowActivationCompletion,
        },
        temporal::api::{common::v1::Payload, enums::v1::WorkflowTaskFailedCause},
    },
};
use temporalio_sdk_core::Worker as CoreWorker;
use temporalio_workflow::{InternalPatchActivationCallback, WorkflowResult, WorkflowTermination};
use tokio::sync::{
    Notify,
    mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel},
};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;

/// Workflow threads the worker may lose to code that never returns before it gives up.
pub(crate) const MAX_LOST_THREADS: u32 = 3;

/// Longest quarantine of one run, however often it ran away.
const MAX_QUARANTINE: Duration = Duration::from_secs(24 * 3600);

static FAILED_WORKFLOW_TASKS: AtomicU64 = AtomicU64::new(0);

/// How many workflow tasks this process has failed (any cause: runaway, nondeterminism, panic,
/// forced failure), since it started.
pub fn failed_workflow_tasks() -> u64 {
    FAILED_WORKFLOW_TASKS.load(Ordering::Relaxed)
}

/// Counts one failed workflow task and returns the new total.
pub(crate) fn count_failed_task() -> u64 {
    FAILED_WORKFLOW_TASKS.fetch_add(1, Ordering::Relaxed) + 1
}

/// The activation deadline and the quarantine of runs that exceeded it. Shared by the router
/// and every workflow thread.
pub(crate) struct RunawayGuard {
    deadline: Option<Duration>,
    quarantine: Duration,
    /// run id → (quarantined until, strikes).
    quarantined: parking_lot::Mutex<HashMap<String, (Instant, u32)>>,
}

impl RunawayGuard {
    /// `deadline` zero disables the detector.
    pub(crate) fn new(deadline: Duration, quarantine: Duration) -> Self {
        Self {
            deadline: (!deadline.is_zero()).then_some(deadline),
            quarantine,
            quarantined: Default::default(),
        }
    }

    /// How long one activation may run.
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// When the router gives up on a thread that is still inside one activation.
    fn hard_deadline(&self) -> Option<Duration> {
        self.deadline.map(|d| (d * 2).max(Duration::from_secs(1)))
    }

    /// Quarantines `run_id`; returns for how long.
    pub(crate) fn quarantine(&self, run_id: &str) -> Duration {
        let mut q = self.quarantined.lock();
        let strikes = q.get(run_id).map(|(_, s)| s + 1).unwrap_or(1);
        let period = self
            .quarantine
            .saturating_mul(1 << (strikes - 1).min(16))
            .min(MAX_QUARANTINE);
        q.insert(run_id.to_string(), (Instant::now() + period, strikes));
        period
    }

    /// Whether `run_id` is quarantined now.
    fn is_quarantined(&self, run_id: &str) -> bool {
        let q = self.quarantined.lock();
        q.get(run_id).is_some_and(|(until, _)| Instant::now() < *until)
    }

    /// The failure message of a run that exceeded the deadline.
    pub(crate) fn runaway_message(&self, elapsed: Duration, quarantine: Duration) -> String {
        format!(
            "[RUNAWAY] workflow activation ran for {} ms, over the {} ms deadline (runaway / \
             deadlock detector): workflow code that loops without waiting or blocks the thread. \
             The workflow task is failed and this run is quarantined on this worker for {} s; \
             fix the workflow code and redeploy",
            elapsed.as_millis(),
            self.deadline.unwrap_or_default().as_millis(),
            quarantine.as_secs()
        )
    }
}

/// What a workflow thread is executing right now, for the router's watchdog.
#[derive(Default)]
pub(crate) struct Busy {
    current: parking_lot::Mutex<Option<BusyWith>>,
}

#[derive(Clone)]
struct BusyWith {
    run_id: String,
    workflow_id: String,
    since: Instant,
}

impl Busy {
    pub(crate) fn enter(&self, run_id: &str, workflow_id: &str) {
        *self.current.lock() = Some(BusyWith {
            run_id: run_id.to_string(),
            workflow_id: workflow_id.to_string(),
            since: Instant::now(),
        });
    }

    pub(crate) fn leave(&self) {
        *self.current.lock() = None;
    }

    fn snapshot(&self) -> Option<BusyWith> {
        self.current.lock().clone()
    }
}

/// Everything a workflow thread needs to create workflow runs.
pub(crate) struct ThreadConfig {
    pub definitions: WorkflowDefinitions,
    pub detect_nondeterministic_futures: bool,
    pub patch_activation_callback: Option<InternalPatchActivationCallback>,
    pub namespace: String,
    pub task_queue: String,
    pub data_converter: DataConverter,
    pub workflow_interceptor_constructors: Vec<WorkflowInterceptorConstructor>,
    pub guard: Arc<RunawayGuard>,
    /// Runs cached by the current thread (`Worker::cached_workflows`).
    pub cached: Arc<AtomicUsize>,
}

/// What a workflow thread reports to the worker's task.
pub(crate) enum ThreadEvent {
    Completion(WorkflowActivationCompletion),
    /// The thread hit an inconsistency it cannot recover from.
    Fatal(anyhow::Error),
}

/// The worker's end of a workflow thread.
struct ThreadHandle {
    id: u32,
    /// Dropped to shut the thread down.
    activations: Option<UnboundedSender<WorkflowActivation>>,
    busy: Arc<Busy>,
}

/// Starts workflow thread `id`; returns its handle and the stream of what it reports.
fn spawn(
    id: u32,
    cfg: Arc<ThreadConfig>,
) -> std::io::Result<(ThreadHandle, UnboundedReceiver<ThreadEvent>)> {
    let (activations_tx, activations_rx) = unbounded_channel();
    let (events_tx, events_rx) = unbounded_channel();
    let busy = Arc::new(Busy::default());
    let thread_busy = busy.clone();
    std::thread::Builder::new()
        .name(format!("temporal-workflows-{id}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = events_tx.send(ThreadEvent::Fatal(anyhow!(
                        "workflow thread runtime: {e}"
                    )));
                    return;
                }
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(
                &rt,
                thread_main(cfg, activations_rx, events_tx, thread_busy),
            );
        })?;
    Ok((
        ThreadHandle {
            id,
            activations: Some(activations_tx),
            busy,
        },
        events_rx,
    ))
}

struct WorkflowFutureHandle<F: Future> {
    join_handle: F,
    run_id: String,
}

/// The body of a workflow thread: what `Worker::run_inner` did for workflows upstream.
async fn thread_main(
    cfg: Arc<ThreadConfig>,
    mut activations: UnboundedReceiver<WorkflowActivation>,
    events: UnboundedSender<ThreadEvent>,
    busy: Arc<Busy>,
) {
    let shutdown_token = CancellationToken::new();
    let executor = WorkflowExecutor::new();
    let workflows: RefCell<HashMap<String, UnboundedSender<WorkflowActivation>>> =
        RefCell::new(HashMap::new());
    let removed = Notify::new();
    let (wf_future_tx, wf_future_rx) =
        unbounded_channel::<WorkflowFutureHandle<TaskHandle<WorkflowResult<Payload>>>>();
    let (completions_tx, mut completions_rx) = unbounded_channel::<WorkflowActivationCompletion>();

    let receive = async {
        while let Some(activation) = activations.recv().await {
            if let Some(handle) = handle_activation(
                &cfg,
                &workflows,
                &removed,
                shutdown_token.clone(),
                activation,
                &completions_tx,
                &executor,
                &busy,
            )
            .await?
                && wf_future_tx.send(handle).is_err()
            {
                bail!("workflow future joiner is gone");
            }
        }
        // Tell still-alive workflows to evict themselves, and let the other parts finish.
        shutdown_token.cancel();
        drop(wf_future_tx);
        drop(completions_tx);
        Ok::<_, anyhow::Error>(())
    };
    let joiner = async {
        UnboundedReceiverStream::new(wf_future_rx)
            .map(Ok::<_, anyhow::Error>)
            .try_for_each_concurrent(None, |WorkflowFutureHandle { join_handle, run_id }| {
                let workflows = &workflows;
                let removed = &removed;
                let cached = &cfg.cached;
                async move {
                    let result = join_handle
                        .await
                        .map_err(|e| anyhow!("workflow task dropped: {e}"))?;
                    // Eviction is the normal end of a cached run.
                    if let Err(e) = result
                        && !matches!(e, WorkflowTermination::Evicted)
                    {
                        bail!("workflow execution failed: {e}");
                    }
                    debug!(run_id=%run_id, "Removing workflow from cache");
                    if workflows.borrow_mut().remove(&run_id).is_some() {
                        // Saturating: a thread abandoned by the router may still drain later,
                        // after the count was reset for its successor.
                        let _ = cached.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                            Some(c.saturating_sub(1))
                        });
                    }
                    removed.notify_one();
                    Ok(())
                }
            })
            .await
    };
    let driver = async {
        tokio::select! {
            _ = executor.drive() => unreachable!("executor driver cannot finish"),
            _ = shutdown_token.cancelled() => {}
        }
        executor.shutdown().await;
        Ok::<_, anyhow::Error>(())
    };
    let forward = async {
        while let Some(c) = completions_rx.recv().await {
            // After the router gave up on this thread nobody listens: drop what it still says.
            let _ = events.send(ThreadEvent::Completion(c));
        }
        Ok::<_, anyhow::Error>(())
    };
    if let Err(e) = tokio::try_join!(receive, joiner, driver, forward) {
        let _ = events.send(ThreadEvent::Fatal(e));
    }
}

/// Creates the run for an `InitializeWorkflow` activation, then hands the activation to its run.
/// Returns the new run's future handle, if one was created.
#[allow(clippy::too_many_arguments)]
async fn handle_activation(
    cfg: &ThreadConfig,
    workflows: &RefCell<HashMap<String, UnboundedSender<WorkflowActivation>>>,
    removed: &Notify,
    shutdown_token: CancellationToken,
    mut activation: WorkflowActivation,
    completions_tx: &UnboundedSender<WorkflowActivationCompletion>,
    executor: &WorkflowExecutor,
    busy: &Arc<Busy>,
) -> Result<Option<WorkflowFutureHandle<TaskHandle<WorkflowResult<Payload>>>>, anyhow::Error> {
    let mut res = None;
    let run_id = activation.run_id.clone();

    if let Some(sw) = activation.jobs.iter_mut().find_map(|j| match j.variant {
        Some(Variant::InitializeWorkflow(ref mut sw)) => Some(sw),
        _ => None,
    }) {
        let workflow_type = sw.workflow_type.clone();
        let Some(factory) = cfg.definitions.get_workflow(&workflow_type) else {
            warn!("Workflow type {workflow_type} not found");
            completions_tx
                .send(WorkflowActivationCompletion::fail(
                    run_id,
                    format!("Workflow type {workflow_type} not found").into(),
                    Some(WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure),
                ))
                .map_err(|_| anyhow!("completion channel closed"))?;
            return Ok(None);
        };
        let (wff, activations) = match start_workflow(
            factory,
            cfg.namespace.clone(),
            cfg.task_queue.clone(),
            run_id.clone(),
            std::mem::take(sw),
            completions_tx.clone(),
            cfg.data_converter.clone(),
            cfg.detect_nondeterministic_futures,
            cfg.patch_activation_callback.clone(),
            cfg.workflow_interceptor_constructors.clone(),
            busy.clone(),
            cfg.guard.clone(),
        ) {
            Ok(result) => result,
            Err(e) => {
                warn!("Failed to create workflow {workflow_type}: {e}");
                completions_tx
                    .send(WorkflowActivationCompletion::fail(
                        run_id,
                        format!("Failed to create workflow: {e}").into(),
                        Some(WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure),
                    ))
                    .map_err(|_| anyhow!("completion channel closed"))?;
                return Ok(None);
            }
        };
        // The executor consumes self-wakes synchronously, so cooperative budget exhaustion
        // would otherwise re-poll the workflow forever without returning to Tokio.
        let wff = tokio::task::coop::unconstrained(wff);
        let jh = executor.spawn(async move {
            tokio::select! {
                r = wff.fuse() => r,
                _ = shutdown_token.cancelled() => {
                    Err(WorkflowTermination::Evicted)
                }
            }
        });
        res = Some(WorkflowFutureHandle {
            join_handle: jh,
            run_id: run_id.clone(),
        });
        // A new initialize activation may arrive before the last future of this run finished
        // evicting; wait until it is out of the map (a few polls).
        while workflows.borrow().contains_key(&run_id) {
            removed.notified().await;
        }
        workflows.borrow_mut().insert(run_id.clone(), activations);
        cfg.cached.fetch_add(1, Ordering::Relaxed);
    }

    if let Some(chan) = workflows.borrow_mut().get_mut(&run_id) {
        chan.send(activation)
            .map_err(|_| anyhow!("workflow {run_id} stopped taking activations"))?;
    } else if activation.is_only_eviction() {
        // A run whose start failed was never cached; core still asks us to evict it.
        completions_tx
            .send(WorkflowActivationCompletion::from_cmds(run_id, vec![]))
            .map_err(|_| anyhow!("completion channel closed"))?;
    } else {
        bail!("Got activation {activation:?} for unknown workflow {run_id}");
    }
    Ok(res)
}

struct RunSlot {
    /// The kind of the run's outstanding activation, if any (`Some(true)`: an eviction).
    pending: Option<bool>,
}

/// The worker's side: routes activations to the current workflow thread, answers those it must
/// not run, and replaces a thread that workflow code blocked (see the module docs).
pub(crate) struct Router {
    cfg: Arc<ThreadConfig>,
    current: ThreadHandle,
    /// Runs living on the current thread (core sends a run one activation at a time).
    runs: HashMap<String, RunSlot>,
    /// Workflow id of each run the router has seen start (for logs), until it is evicted.
    workflow_ids: HashMap<String, String>,
    /// To the completion processor; `None` once the worker has drained.
    completions: Option<UnboundedSender<WorkflowActivationCompletion>>,
    lost_threads: u32,
}

impl Router {
    /// Starts the first workflow thread.
    pub(crate) fn start(
        cfg: Arc<ThreadConfig>,
        completions: UnboundedSender<WorkflowActivationCompletion>,
    ) -> std::io::Result<(Self, UnboundedReceiver<ThreadEvent>)> {
        let (current, events) = spawn(0, cfg.clone())?;
        Ok((
            Self {
                cfg,
                current,
                runs: HashMap::new(),
                workflow_ids: HashMap::new(),
                completions: Some(completions),
                lost_threads: 0,
            },
            events,
        ))
    }

    fn answer(&self, completion: WorkflowActivationCompletion) {
        if let Some(c) = &self.completions {
            let _ = c.send(completion);
        }
    }

    /// Answers an activation with a failure, without running any workflow code. Core evicts the
    /// run afterwards (and the server retries its task).
    pub(crate) fn fail(&self, run_id: String, message: String) {
        let workflow_id = self.workflow_ids.get(&run_id).map(String::as_str);
        error!(
            workflow_id = workflow_id.unwrap_or("?"),
            run_id = %run_id,
            failed_workflow_tasks = count_failed_task(),
            "workflow task failed: {message}"
        );
        self.answer(WorkflowActivationCompletion::fail(
            run_id,
            message.into(),
            Some(WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure),
        ));
    }

    /// Hands `activation` to the workflow thread, or answers it here.
    pub(crate) fn route(&mut self, activation: WorkflowActivation) {
        let run_id = activation.run_id.clone();
        let eviction = activation.is_only_eviction();
        let init = activation.jobs.iter().find_map(|j| match &j.variant {
            Some(Variant::InitializeWorkflow(i)) => Some(i.workflow_id.clone()),
            _ => None,
        });
        if let Some(workflow_id) = &init {
            self.workflow_ids.insert(run_id.clone(), workflow_id.clone());
        }
        let init = init.is_some();
        let known = self.runs.contains_key(&run_id);
        if !eviction && self.cfg.guard.is_quarantined(&run_id) {
            self.fail(
                run_id,
                "[RUNAWAY] this run is quarantined on this worker after its workflow code ran \
                 past the activation deadline; its code is not run until the quarantine ends"
                    .into(),
            );
            return;
        }
        if !known && !init {
            if eviction {
                // Not on the current thread (never started, or lived on a replaced thread).
                self.workflow_ids.remove(&run_id);
                self.answer(WorkflowActivationCompletion::from_cmds(run_id, vec![]));
            } else {
                // Core still thinks it is cached, but it lived on a replaced thread: fail the
                // activation so that core evicts it and replays it from history.
                self.fail(
                    run_id,
                    "the run's workflow thread was replaced; it is replayed on a new one".into(),
                );
            }
            return;
        }
        let Some(tx) = &self.current.activations else {
            return;
        };
        if tx.send(activation).is_err() {
            // The thread ended; its fatal error (if any) reaches the pump.
            return;
        }
        self.runs.insert(
            run_id,
            RunSlot {
                pending: Some(eviction),
            },
        );
    }

    /// Book-keeping for a completion the current thread sent, then passes it on.
    pub(crate) fn forward(&mut self, completion: WorkflowActivationCompletion) {
        if let Some(slot) = self.runs.get_mut(&completion.run_id)
            && slot.pending.take() == Some(true)
        {
            self.runs.remove(&completion.run_id);
            self.workflow_ids.remove(&completion.run_id);
        }
        self.answer(completion);
    }

    /// Shuts the workflow thread down (the worker is draining).
    pub(crate) fn close(&mut self) {
        self.current.activations = None;
    }

    /// Stops reporting completions (after the last one was forwarded).
    pub(crate) fn finish(&mut self) {
        self.completions = None;
    }

    /// How often the pump should call [`Self::check`]; `None` = never.
    pub(crate) fn watch_interval(&self) -> Option<Duration> {
        self.cfg
            .guard
            .hard_deadline()
            .map(|d| (d / 8).max(Duration::from_millis(20)))
    }

    /// The watchdog: if the current thread has been inside one activation for longer than the
    /// hard deadline, replaces it and returns the new thread's event stream.
    pub(crate) fn check(
        &mut self,
        core: &CoreWorker,
    ) -> Result<Option<UnboundedReceiver<ThreadEvent>>, anyhow::Error> {
        let Some(hard) = self.cfg.guard.hard_deadline() else {
            return Ok(None);
        };
        let Some(stuck) = self.current.busy.snapshot() else {
            return Ok(None);
        };
        let elapsed = stuck.since.elapsed();
        if elapsed < hard || self.current.activations.is_none() {
            return Ok(None);
        }
        let quarantine = self.cfg.guard.quarantine(&stuck.run_id);
        let message = self.cfg.guard.runaway_message(elapsed, quarantine);
        self.lost_threads += 1;
        error!(
            workflow_id = %stuck.workflow_id,
            run_id = %stuck.run_id,
            elapsed_ms = elapsed.as_millis() as u64,
            lost_threads = self.lost_threads,
            "workflow code has blocked workflow thread {} and does not return: abandoning the \
             thread, replaying its other runs on a new one",
            self.current.id
        );
        if self.lost_threads > MAX_LOST_THREADS {
            bail!(
                "{} workflow threads were blocked by workflow code that never returns (last: \
                 workflow {} run {}); the worker stops so that it can be restarted",
                self.lost_threads,
                stuck.workflow_id,
                stuck.run_id
            );
        }
        let (next, events) = spawn(self.current.id + 1, self.cfg.clone())
            .map_err(|e| anyhow!("starting a new workflow thread: {e}"))?;
        // Dropping the old handle closes its activation channel; the old thread's runs are
        // failed (those waiting for an answer) or evicted (the others) so that core replays them.
        drop(std::mem::replace(&mut self.current, next));
        self.cfg.cached.store(0, Ordering::Relaxed);
        for (run_id, slot) in std::mem::take(&mut self.runs) {
            match slot.pending {
                Some(true) => {
                    self.workflow_ids.remove(&run_id);
                    self.answer(WorkflowActivationCompletion::from_cmds(run_id, vec![]));
                }
                Some(false) if run_id == stuck.run_id => self.fail(run_id, message.clone()),
                Some(false) => self.fail(
                    run_id,
                    format!(
                        "workflow thread replaced: workflow {} blocked it; this run is replayed",
                        stuck.workflow_id
                    ),
                ),
                None => core.request_workflow_eviction(&run_id),
            }
        }
        Ok(Some(events))
    }
}
