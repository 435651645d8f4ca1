//! Shared by the bench binaries: settings from env, the machine report, and a Temporal worker
//! on a thread of its own (a worker's run future is not `Send`).

#![allow(dead_code)]

use temporalio_sdk::{Runtime, Worker, WorkerOptions};

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The billing configuration the benches start subscriptions with: the starter API's, read from
/// the environment by its own definitions (`BILLING_RENEWALS_PER_RUN` …). A malformed value stops
/// the bench.
pub fn bench_billing_config() -> billing_domain::messages::BillingConfig {
    billing_starter_api::settings::BillingConfigArgs::from_env()
        .unwrap_or_else(|e| panic!("billing settings: {e}"))
}

/// The worker's tuning (sticky cache, pollers, sticky timeout and release, runaway detector) from
/// the environment, read by `billing-worker`'s own definitions; the benches give the same values
/// to their bare-workflow workers. A malformed value stops the bench.
pub fn bench_tuning() -> billing_worker::Tuning {
    billing_worker::Tuning::from_env().unwrap_or_else(|e| panic!("worker tuning: {e}"))
}

pub fn bench_max_cached() -> usize {
    bench_tuning().max_cached_workflows
}

pub fn bench_workflow_task_pollers() -> usize {
    bench_tuning().workflow_task_pollers
}

pub fn bench_sticky_timeout() -> Option<std::time::Duration> {
    bench_tuning().sticky_schedule_to_start
}

pub fn bench_sticky_release() -> bool {
    bench_tuning().sticky_release
}

pub fn bench_nonsticky_ratio() -> f32 {
    bench_tuning().nonsticky_poll_ratio
}

/// The first-payment request of a paid start (a card approved without 3-D Secure) for `user`.
pub fn paid_start_request(
    user: &str,
    tariff: String,
) -> billing_proto::billing::v1::StartSubscriptionRequest {
    billing_proto::billing::v1::StartSubscriptionRequest {
        user_id: user.to_string(),
        tariff_code: tariff,
        card_cryptogram: gateway_emulator::cryptogram::legacy(
            gateway_emulator::cards::NO_3DS_SUCCESS,
            12,
            2030,
        ),
        cardholder_name: "IVAN PETROV".into(),
        payer_ip: "203.0.113.7".into(),
        email: "bench@example.com".into(),
        client_request_id: format!("bench-{}", uuid::Uuid::new_v4().simple()),
    }
}

pub fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What every bench prints first: cores, CPU model, memory, kernel, load.
pub fn machine() -> Vec<(&'static str, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    vec![
        ("nproc", nproc),
        ("cpu", model),
        ("memory", mem),
        ("kernel", kernel),
        ("load average", loadavg()),
    ]
}

pub fn print_machine() {
    for (k, v) in machine() {
        println!("{k:<20} {v}");
    }
}

/// Machine, build profile, Temporal address and PostgreSQL durability: the context every figure
/// needs.
pub fn print_environment(temporal_address: &str) {
    print_machine();
    let profile = if cfg!(debug_assertions) {
        "debug (debug assertions on) — NOT representative"
    } else {
        "release (cargo bench profile, optimized)"
    };
    println!("build profile        {profile}");
    println!("temporal             {temporal_address}");
    let pg = match std::env::var("BENCH_PG_FAST").as_deref() {
        Ok("1") => "PG_FAST=1 (fsync=off, synchronous_commit=off, full_page_writes=off)",
        Ok("external") => "external (DATABASE_URL given)",
        _ => "durable settings (fsync on)",
    };
    println!("postgres             {pg}");
}

/// A worker with the options `build` returns, on its own thread with a 2-thread runtime (the
/// shape of `billing_worker::WorkerThread`).
pub struct BenchWorker {
    name: &'static str,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl BenchWorker {
    pub fn spawn(
        name: &'static str,
        temporal_address: String,
        build: impl FnOnce() -> anyhow::Result<WorkerOptions> + Send + 'static,
    ) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || -> anyhow::Result<()> {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let client =
                        billing_platform::temporal::connect_to(&temporal_address, "default")
                            .await?;
                    let runtime = Runtime::from_current_tokio(Default::default())
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    let mut worker = Worker::new(&runtime, client, build()?)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    let stop = worker.shutdown_handle();
                    tokio::spawn(async move {
                        let _ = rx.await;
                        stop();
                    });
                    worker.run().await.map_err(|e| anyhow::anyhow!("{e}"))
                })
            })
            .expect("bench worker thread");
        Self {
            name,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// Drains the worker and waits for it (blocking).
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Err(e)) => eprintln!("{} ended with: {e}", self.name),
                Err(_) => eprintln!("{} panicked", self.name),
                Ok(Ok(())) => {}
            }
        }
    }
}

/// The starter API (gRPC + REST) in this process on port 0, with auth on (the stand-ins' dev
/// issuer), and a gRPC client to it signed as the frontend's backend (`service`) and admin (the
/// test clock), as in production.
pub struct Api {
    pub grpc: billing_stand_ins::BillingClient,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Api {
    pub async fn start(
        temporal_address: &str,
        database_url: &str,
        task_queue: &str,
        billing: billing_domain::messages::BillingConfig,
        start_timeout: std::time::Duration,
        stand_ins: &billing_stand_ins::RunningStandIns,
    ) -> Self {
        let auth = billing_starter_api::auth::AuthSettings {
            jwks: billing_starter_api::auth::JwksSource::Url(stand_ins.jwks_url()),
            issuer: billing_stand_ins::DEV_ISSUER.into(),
            audience: billing_stand_ins::DEV_AUDIENCE.into(),
        };
        let token = stand_ins.issuer.mint(
            &uuid::Uuid::new_v4().to_string(),
            &["service", "admin"],
            std::time::Duration::from_secs(86_400),
        );
        let settings = billing_starter_api::Settings {
            start_timeout,
            ..billing_starter_api::Settings::local(
                temporal_address.to_string(),
                database_url.to_string(),
                task_queue.to_string(),
                billing,
                Some(auth),
            )
        };
        let app = billing_starter_api::App::build(settings)
            .await
            .expect("starter api");
        let grpc_addr = app.grpc_addr();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = app
                .run_until_stopped(async move {
                    let _ = rx.await;
                })
                .await;
        });
        let channel = tonic::transport::Channel::from_shared(format!("http://{grpc_addr}"))
            .expect("grpc url")
            .connect()
            .await
            .expect("grpc connect");
        let grpc = billing_stand_ins::billing_client(channel, Some(&token));
        Self { grpc, stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// StartSubscription for a new user on `tariff` with the approved no-3-DS test card; `Ok(user id)`
/// only for a `paid` answer.
pub async fn start_paid(
    grpc: &billing_stand_ins::BillingClient,
    tariff: String,
) -> Result<String, String> {
    use billing_proto::billing::v1::start_subscription_response::Outcome;
    let user = uuid::Uuid::new_v4().to_string();
    let req = paid_start_request(&user, tariff);
    match grpc
        .clone()
        .start_subscription(req)
        .await
        .map(|r| r.into_inner().outcome)
    {
        Ok(Some(Outcome::Paid(_))) => Ok(user),
        Ok(other) => Err(format!("{user}: expected paid, got {other:?}")),
        Err(e) => Err(format!("{user}: {e}")),
    }
}
