//! The billing worker as a library, so tests run it in-process on their own task queue.
//!
//! - [`settings`]: every flag and environment variable (clap), resolved into [`WorkerSettings`].
//! - [`run_worker`]: polls the task queue until the shutdown future resolves.
//! - [`WorkerThread`]: a worker on a thread of its own (tests and benches).
//! - [`sticky`]: releases an evicted subscription's sticky task queue (renewals arrive on the
//!   normal queue in one dispatch).
//!
//! The Temporal connection and telemetry come from `billing-platform`, shared with the API.

pub mod settings;
pub mod sticky;

pub use settings::{
    Tuning, WorkerArgs, WorkerSettings, DEFAULT_ACTIVATION_DEADLINE, DEFAULT_MAX_CACHED_WORKFLOWS,
    DEFAULT_NONSTICKY_POLL_RATIO, DEFAULT_RUNAWAY_QUARANTINE, DEFAULT_WORKFLOW_TASK_POLLERS,
};

use billing_activities::gateway::GatewayClient;
use billing_activities::peers::Peers;
use billing_activities::BillingActivities;
use billing_store::Store;
use billing_workflows::SubscriptionWorkflow;
use std::future::Future;
use std::time::Duration;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A setting is missing or malformed: the message names the variable.
    #[error("configuration: {0}")]
    Config(String),
    /// Temporal could not be reached: check TEMPORAL_ADDRESS and the TLS settings.
    #[error("temporal: {0}")]
    Temporal(String),
    #[error("database: {0}")]
    Store(#[from] billing_store::StoreError),
}

impl From<billing_platform::temporal::ConnectError> for WorkerError {
    fn from(e: billing_platform::temporal::ConnectError) -> Self {
        match e {
            billing_platform::temporal::ConnectError::Config(c) => WorkerError::Config(c.0),
            billing_platform::temporal::ConnectError::Unreachable(m) => WorkerError::Temporal(m),
        }
    }
}

/// Registers more workflows or activities on the worker before it starts (tests register
/// workflows of their own next to the billing ones).
pub type Customize = Box<dyn FnOnce(&mut WorkerOptions) -> Result<(), WorkerError> + Send>;

/// Runs the worker until `shutdown` resolves, then drains it gracefully.
pub async fn run_worker(
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    run_worker_with(settings, shutdown, None).await
}

/// [`run_worker`], with `customize` applied to the worker's options first.
pub async fn run_worker_with(
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    customize: Option<Customize>,
) -> Result<(), WorkerError> {
    let store = Store::connect(&settings.database_url, 20).await?;
    let gateway = GatewayClient::new(settings.gateway.clone())
        .map_err(|e| WorkerError::Config(e.to_string()))?;
    let peers = Peers::new(
        &settings.access_url,
        &settings.notification_url,
        Duration::from_secs(10),
    )
    .map_err(|e| WorkerError::Config(e.to_string()))?;
    let client = settings.temporal.connect().await?;
    let runtime = Runtime::from_current_tokio(Default::default())
        .map_err(|e| WorkerError::Temporal(e.to_string()))?;
    let mut interceptors = Vec::new();
    let t = &settings.tuning;
    if t.sticky_release && t.max_cached_workflows > 0 {
        let (constructor, resets) =
            sticky::sticky_release(client.clone(), settings.temporal.namespace.clone());
        interceptors.push(constructor);
        tokio::spawn(resets);
    }
    let mut options = WorkerOptions::new(settings.temporal.task_queue.clone())
        .register_workflow::<SubscriptionWorkflow>()
        .map_err(|e| WorkerError::Config(e.to_string()))?
        .register_activities(BillingActivities {
            store,
            gateway,
            peers,
        })
        .register_workflow_interceptors(interceptors)
        .max_cached_workflows(t.max_cached_workflows)
        .nonsticky_to_sticky_poll_ratio(t.nonsticky_poll_ratio)
        .workflow_task_poller_behavior(temporalio_sdk::runtime::PollerBehavior::SimpleMaximum(
            t.workflow_task_pollers,
        ))
        .maybe_sticky_queue_schedule_to_start_timeout(t.sticky_schedule_to_start)
        .workflow_activation_deadline(t.activation_deadline)
        .runaway_quarantine(t.runaway_quarantine)
        .build();
    if let Some(customize) = customize {
        customize(&mut options)?;
    }
    let mut worker =
        Worker::new(&runtime, client, options).map_err(|e| WorkerError::Temporal(e.to_string()))?;
    let stop = worker.shutdown_handle();
    tokio::spawn(async move {
        shutdown.await;
        stop();
    });
    tracing::info!(task_queue = %settings.temporal.task_queue, "worker polling");
    worker
        .run()
        .await
        .map_err(|e| WorkerError::Temporal(e.to_string()))
}

/// A worker running on a thread of its own (its run future is not `Send`, so it cannot be a
/// tokio task of the caller's runtime). Tests and benches use it.
pub struct WorkerThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), WorkerError>>>,
}

impl WorkerThread {
    pub fn spawn(settings: WorkerSettings) -> std::io::Result<Self> {
        Self::spawn_with(settings, None)
    }

    /// [`Self::spawn`] with [`run_worker_with`]'s `customize`.
    pub fn spawn_with(
        settings: WorkerSettings,
        customize: Option<Customize>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("billing-worker".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| WorkerError::Config(format!("tokio runtime: {e}")))?;
                rt.block_on(run_worker_with(
                    settings,
                    async move {
                        let _ = rx.await;
                    },
                    customize,
                ))
            })?;
        Ok(Self {
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Asks the worker to drain and waits for it (blocking; call from `spawn_blocking` in async code).
    pub fn stop(mut self) -> Result<(), WorkerError> {
        self.signal_stop();
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(WorkerError::Temporal("worker thread panicked".into())),
            None => Ok(()),
        }
    }

    fn signal_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
