//! The billing worker as a library, so tests run it in-process on their own task queue.
//!
//! - [`WorkerSettings`]: typed settings from `BILLING_*`/`TEMPORAL_*` env vars.
//! - [`connect_temporal`]: a Temporal client (shared with the starter API).
//! - [`run_worker`]: polls the task queue until the shutdown future resolves.
//! - [`telemetry`]: tracing set-up, once per binary.
//! - [`sticky`]: releases an evicted subscription's sticky task queue (renewals arrive on the
//!   normal queue in one dispatch).

pub mod sticky;
pub mod telemetry;

use billing_activities::gateway::{GatewayClient, GatewaySettings};
use billing_activities::peers::Peers;
use billing_activities::BillingActivities;
use billing_store::Store;
use billing_workflows::SubscriptionWorkflow;
use secrecy::SecretString;
use std::future::Future;
use std::time::Duration;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A setting is missing or malformed: the message names the variable.
    #[error("configuration: {0}")]
    Config(String),
    /// Temporal could not be reached: check TEMPORAL_ADDRESS.
    #[error("temporal: {0}")]
    Temporal(String),
    #[error("database: {0}")]
    Store(#[from] billing_store::StoreError),
}

/// Worker settings. `Debug` never shows the gateway secret or the database password.
#[derive(Clone)]
pub struct WorkerSettings {
    pub temporal_address: String,
    pub namespace: String,
    pub task_queue: String,
    pub database_url: String,
    pub gateway: GatewaySettings,
    pub access_url: String,
    pub notification_url: String,
    /// Sticky cache size: bounds worker memory with many sleeping subscriptions.
    pub max_cached_workflows: usize,
    /// Concurrent workflow-task polls (`BILLING_WORKFLOW_TASK_POLLERS`, default
    /// [`DEFAULT_WORKFLOW_TASK_POLLERS`]); `None` = the SDK's default (5).
    pub workflow_task_pollers: Option<usize>,
    /// How long a workflow task may wait on this worker's sticky queue before the server moves it
    /// to the normal queue (`BILLING_STICKY_TIMEOUT_MS`); `None` = the SDK's default (10 s).
    pub sticky_schedule_to_start: Option<Duration>,
    /// Release an evicted subscription's sticky queue (`BILLING_STICKY_RELEASE`, default on; see
    /// [`sticky`]): its next task (usually a renewal) then goes to the normal queue.
    pub sticky_release: bool,
    /// Share of the workflow-task polls that serve the normal queue
    /// (`BILLING_NONSTICKY_POLL_RATIO`, default [`DEFAULT_NONSTICKY_POLL_RATIO`]).
    pub nonsticky_poll_ratio: f32,
    /// Runaway / deadlock detector (`BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS`, default
    /// [`DEFAULT_ACTIVATION_DEADLINE`]; zero disables it): a workflow activation still running
    /// after this long is stopped and its task failed; one that blocks the workflow thread for
    /// twice as long costs the worker that thread (vendor/README.md).
    pub activation_deadline: Duration,
    /// How long a run that ran past the deadline is not run again by this worker
    /// (`BILLING_RUNAWAY_QUARANTINE_SECS`, default [`DEFAULT_RUNAWAY_QUARANTINE`]; doubles on
    /// each repeat).
    pub runaway_quarantine: Duration,
}

impl std::fmt::Debug for WorkerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSettings")
            .field("temporal_address", &self.temporal_address)
            .field("namespace", &self.namespace)
            .field("task_queue", &self.task_queue)
            .field(
                "database_url",
                &billing_domain::mask::redact_url(&self.database_url),
            )
            .field("gateway", &self.gateway)
            .field("access_url", &self.access_url)
            .field("notification_url", &self.notification_url)
            .field("max_cached_workflows", &self.max_cached_workflows)
            .field("workflow_task_pollers", &self.workflow_task_pollers)
            .field("sticky_schedule_to_start", &self.sticky_schedule_to_start)
            .field("sticky_release", &self.sticky_release)
            .field("nonsticky_poll_ratio", &self.nonsticky_poll_ratio)
            .field("activation_deadline", &self.activation_deadline)
            .field("runaway_quarantine", &self.runaway_quarantine)
            .finish()
    }
}

/// Default sticky-cache size (`BILLING_MAX_CACHED_WORKFLOWS`). It bounds the worker's memory:
/// a cached subscription costs ≈ 145 KiB after its first payment plus ≈ 50 KiB per renewal in its
/// current run (the SDK keeps every state machine of a run), so with `renewals_per_run` 12 a
/// cached workflow can reach ≈ 750 KiB and 150 of them ≈ 110 MiB. Evicted subscriptions cost
/// nothing while they sleep; a renewal of one replays its run's history (BENCHMARKS.md).
pub const DEFAULT_MAX_CACHED_WORKFLOWS: usize = 150;

/// Default share of workflow-task polls on the normal (non-sticky) queue. The SDK's 0.2 suits
/// workers whose workflows stay cached; a billing worker's tasks mostly arrive on the normal
/// queue (new subscriptions, and renewals of evicted ones once their sticky queue is released).
pub const DEFAULT_NONSTICKY_POLL_RATIO: f32 = 0.5;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// A numeric setting that may be unset (or empty): `None`; otherwise a number of at least `min`.
fn optional_env<T>(name: &str, min: T) -> Result<Option<T>, WorkerError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => match v.parse::<T>() {
            Ok(n) if n >= min => Ok(Some(n)),
            _ => Err(WorkerError::Config(format!(
                "{name} must be an integer of at least {min}, got {v:?}"
            ))),
        },
        _ => Ok(None),
    }
}

/// Default deadline of one workflow activation (`BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS`). A
/// billing activation takes about a millisecond; 2 s is the Python SDK's deadlock timeout.
pub const DEFAULT_ACTIVATION_DEADLINE: Duration = Duration::from_secs(2);

/// Default quarantine of a run that ran past the deadline (`BILLING_RUNAWAY_QUARANTINE_SECS`).
pub const DEFAULT_RUNAWAY_QUARANTINE: Duration = Duration::from_secs(300);

/// `BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS` (0 disables the detector, otherwise at least 100).
pub fn activation_deadline_from_env() -> Result<Duration, WorkerError> {
    match optional_env::<u64>("BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS", 0)? {
        None => Ok(DEFAULT_ACTIVATION_DEADLINE),
        Some(0) => Ok(Duration::ZERO),
        Some(ms) if ms >= 100 => Ok(Duration::from_millis(ms)),
        Some(ms) => Err(WorkerError::Config(format!(
            "BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS must be 0 (off) or at least 100, got {ms}"
        ))),
    }
}

/// `BILLING_RUNAWAY_QUARANTINE_SECS` (at least 1).
pub fn runaway_quarantine_from_env() -> Result<Duration, WorkerError> {
    Ok(optional_env::<u64>("BILLING_RUNAWAY_QUARANTINE_SECS", 1)?
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_RUNAWAY_QUARANTINE))
}

/// `BILLING_MAX_CACHED_WORKFLOWS`, default [`DEFAULT_MAX_CACHED_WORKFLOWS`].
pub fn max_cached_workflows_from_env() -> Result<usize, WorkerError> {
    Ok(optional_env("BILLING_MAX_CACHED_WORKFLOWS", 0)?.unwrap_or(DEFAULT_MAX_CACHED_WORKFLOWS))
}

/// Default number of concurrent workflow-task polls (`BILLING_WORKFLOW_TASK_POLLERS`), half of
/// them on the normal queue ([`DEFAULT_NONSTICKY_POLL_RATIO`]). The SDK's 5 (one on the normal
/// queue) caps a burst of renewals well below what the server can serve: each poll waits for the
/// server to record the task as started and to read the subscription's history, so the renewal
/// rate is about pollers / that time (BENCHMARKS.md, "Renewals": 79 renewals/s with 5, 116 with
/// 16, 125 with 32 at N = 2,000 on 2 vCPUs). An idle poll is one open request on the worker's
/// connection.
pub const DEFAULT_WORKFLOW_TASK_POLLERS: usize = 32;

/// `BILLING_WORKFLOW_TASK_POLLERS` (at least 2), default [`DEFAULT_WORKFLOW_TASK_POLLERS`].
pub fn workflow_task_pollers_from_env() -> Result<usize, WorkerError> {
    Ok(optional_env("BILLING_WORKFLOW_TASK_POLLERS", 2)?.unwrap_or(DEFAULT_WORKFLOW_TASK_POLLERS))
}

/// `BILLING_STICKY_TIMEOUT_MS` (at least 1000); `None` = the SDK's default (10 s).
pub fn sticky_timeout_from_env() -> Result<Option<Duration>, WorkerError> {
    Ok(optional_env::<u64>("BILLING_STICKY_TIMEOUT_MS", 1000)?.map(Duration::from_millis))
}

/// `BILLING_STICKY_RELEASE`: `1`/`true` (default) or `0`/`false`.
pub fn sticky_release_from_env() -> Result<bool, WorkerError> {
    match std::env::var("BILLING_STICKY_RELEASE").ok().as_deref() {
        None | Some("") | Some("1") | Some("true") => Ok(true),
        Some("0") | Some("false") => Ok(false),
        Some(v) => Err(WorkerError::Config(format!(
            "BILLING_STICKY_RELEASE must be 1/true or 0/false, got {v:?}"
        ))),
    }
}

/// `BILLING_NONSTICKY_POLL_RATIO`: a number in (0, 1], default [`DEFAULT_NONSTICKY_POLL_RATIO`].
pub fn nonsticky_poll_ratio_from_env() -> Result<f32, WorkerError> {
    match std::env::var("BILLING_NONSTICKY_POLL_RATIO")
        .ok()
        .as_deref()
    {
        None | Some("") => Ok(DEFAULT_NONSTICKY_POLL_RATIO),
        Some(v) => match v.parse::<f32>() {
            Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
            _ => Err(WorkerError::Config(format!(
                "BILLING_NONSTICKY_POLL_RATIO must be a number above 0 and at most 1, got {v:?}"
            ))),
        },
    }
}

impl WorkerSettings {
    /// Reads the environment; defaults fit the local stack (see README).
    pub fn from_env() -> Result<Self, WorkerError> {
        Ok(Self {
            temporal_address: env_or("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            namespace: env_or("TEMPORAL_NAMESPACE", "default"),
            task_queue: env_or("BILLING_TASK_QUEUE", billing_workflows::TASK_QUEUE),
            database_url: std::env::var("DATABASE_URL")
                .map_err(|_| WorkerError::Config("DATABASE_URL is required".into()))?,
            gateway: GatewaySettings {
                base_url: env_or("GATEWAY_URL", "http://127.0.0.1:8090"),
                public_id: env_or("GATEWAY_PUBLIC_ID", "pk_test_emulator"),
                api_secret: SecretString::from(env_or("GATEWAY_API_SECRET", "emulator_secret")),
                timeout: Duration::from_millis(
                    env_or("GATEWAY_TIMEOUT_MS", "20000").parse().map_err(|_| {
                        WorkerError::Config("GATEWAY_TIMEOUT_MS must be an integer".into())
                    })?,
                ),
            },
            access_url: env_or("ACCESS_URL", "http://127.0.0.1:50061"),
            notification_url: env_or("NOTIFICATION_URL", "http://127.0.0.1:50062"),
            max_cached_workflows: max_cached_workflows_from_env()?,
            workflow_task_pollers: Some(workflow_task_pollers_from_env()?),
            sticky_schedule_to_start: sticky_timeout_from_env()?,
            sticky_release: sticky_release_from_env()?,
            nonsticky_poll_ratio: nonsticky_poll_ratio_from_env()?,
            activation_deadline: activation_deadline_from_env()?,
            runaway_quarantine: runaway_quarantine_from_env()?,
        })
    }
}

/// Connects a Temporal client. `address` is `host:port` or a URL.
pub async fn connect_temporal(address: &str, namespace: &str) -> Result<Client, WorkerError> {
    let url = if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    let target = url::Url::parse(&url)
        .map_err(|e| WorkerError::Config(format!("TEMPORAL_ADDRESS `{address}`: {e}")))?;
    let conn_opts = ConnectionOptions::new(target)
        .identity(format!("billing@{}", std::process::id()))
        .build();
    let connection = Connection::connect(conn_opts)
        .await
        .map_err(|e| WorkerError::Temporal(format!("connecting to {address}: {e}")))?;
    Client::new(connection, ClientOptions::new(namespace).build())
        .map_err(|e| WorkerError::Temporal(e.to_string()))
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
    let client = connect_temporal(&settings.temporal_address, &settings.namespace).await?;
    let runtime = Runtime::from_current_tokio(Default::default())
        .map_err(|e| WorkerError::Temporal(e.to_string()))?;
    let mut interceptors = Vec::new();
    if settings.sticky_release && settings.max_cached_workflows > 0 {
        let (constructor, resets) =
            sticky::sticky_release(client.clone(), settings.namespace.clone());
        interceptors.push(constructor);
        tokio::spawn(resets);
    }
    let mut options = WorkerOptions::new(settings.task_queue.clone())
        .register_workflow::<SubscriptionWorkflow>()
        .map_err(|e| WorkerError::Config(e.to_string()))?
        .register_activities(BillingActivities {
            store,
            gateway,
            peers,
        })
        .register_workflow_interceptors(interceptors)
        .max_cached_workflows(settings.max_cached_workflows)
        .nonsticky_to_sticky_poll_ratio(settings.nonsticky_poll_ratio)
        .maybe_workflow_task_poller_behavior(
            settings
                .workflow_task_pollers
                .map(temporalio_sdk::runtime::PollerBehavior::SimpleMaximum),
        )
        .maybe_sticky_queue_schedule_to_start_timeout(settings.sticky_schedule_to_start)
        .workflow_activation_deadline(settings.activation_deadline)
        .runaway_quarantine(settings.runaway_quarantine)
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
    tracing::info!(task_queue = %settings.task_queue, "worker polling");
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
