//! End-to-end harness: real Temporal dev server and Postgres (from `scripts/test.sh`), and per
//! test: a fresh database, the gateway emulator, the access/notification stand-ins and the
//! starter API on port 0, and a worker on a task queue of its own (in-process or as a process).

#![allow(dead_code)]

use billing_activities::gateway::GatewaySettings;
use billing_domain::messages::BillingConfig;
use billing_proto::billing::v1::{StartSubscriptionRequest, StartSubscriptionResponse};
use billing_stand_ins::{billing_client, BillingClient, RunningStandIns};
use billing_store::Store;
use billing_worker::WorkerSettings;
use gateway_emulator::RunningEmulator;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// The API's auth settings for the stand-ins' dev issuer (keys made in this test process).
pub fn dev_auth(stand_ins: &RunningStandIns) -> billing_starter_api::auth::AuthSettings {
    billing_starter_api::auth::AuthSettings {
        jwks: billing_starter_api::auth::JwksSource::Url(stand_ins.jwks_url()),
        issuer: billing_stand_ins::DEV_ISSUER.into(),
        audience: billing_stand_ins::DEV_AUDIENCE.into(),
    }
}

pub fn temporal_address() -> String {
    std::env::var("TEMPORAL_ADDRESS")
        .expect("TEMPORAL_ADDRESS is not set: run the tests with scripts/test.sh (it starts Temporal and PostgreSQL)")
}

pub struct Options {
    pub config: BillingConfig,
    pub start_timeout: Duration,
    /// Point the worker at this gateway URL instead of the emulator (e.g. a closed port).
    pub gateway_url: Option<String>,
    pub worker_in_process: bool,
    /// Sticky cache of the in-process worker.
    pub max_cached_workflows: usize,
    /// Registers more workflows on the in-process worker (test workflows next to the billing one).
    pub customize: Option<Customizer>,
    /// The gateway emulator's settings (default: `Settings::for_tests()`), e.g. a short
    /// idempotency window.
    pub emulator: Option<gateway_emulator::Settings>,
}

/// See [`Options::customize`]; applied at every (re)start of the in-process worker.
pub type Customizer = std::sync::Arc<
    dyn Fn(&mut temporalio_sdk::WorkerOptions) -> Result<(), billing_worker::WorkerError>
        + Send
        + Sync,
>;

impl Default for Options {
    fn default() -> Self {
        Self {
            config: BillingConfig {
                charge_attempt_timeout: Duration::from_secs(5),
                charge_retry_window: Duration::from_secs(20),
                retry_initial_interval: Duration::from_millis(200),
                retry_max_interval: Duration::from_secs(1),
                side_effect_timeout: Duration::from_secs(5),
                three_ds_expiry: Duration::from_secs(120),
                dunning: Default::default(),
                test_clock: true,
                renewals_per_run: 12,
                // Unknown outcomes are asked about again within a second, for a minute, before
                // the subscription is parked.
                reconcile_interval: Duration::from_millis(500),
                reconcile_max_interval: Duration::from_secs(2),
                reconcile_window: Duration::from_secs(60),
                test_fail_tasks_after_charge: Duration::ZERO,
                test_fail_tasks_after_charge_percent: 100,
            },
            start_timeout: Duration::from_secs(45),
            gateway_url: None,
            worker_in_process: true,
            max_cached_workflows: 100,
            customize: None,
            emulator: None,
        }
    }
}

pub struct Harness {
    pub emulator: RunningEmulator,
    pub stand_ins: RunningStandIns,
    pub store: Store,
    pub database_url: String,
    pub task_queue: String,
    /// Signed with an admin token of the stand-ins' dev issuer (acts on any subscription and
    /// moves test clocks); [`Harness::client_as`] for other callers.
    pub grpc: BillingClient,
    /// The gRPC channel to the API, for clients with other tokens.
    pub channel: Channel,
    pub http_base: String,
    /// Plain HTTP (the emulator's control API, the browser's debugging port).
    pub http: reqwest::Client,
    /// HTTP to the billing REST API with the admin token.
    pub api: reqwest::Client,
    pub admin_token: String,
    pub worker_settings: WorkerSettings,
    worker: Option<billing_worker::WorkerThread>,
    customize: Option<Customizer>,
    pub worker_process: Option<std::process::Child>,
    api_stop: Option<oneshot::Sender<()>>,
}

impl Harness {
    pub async fn start(opts: Options) -> Harness {
        let _ = tracing_subscriber_init();
        let (database_url, store) = billing_test_support::fresh_db()
            .await
            .expect("fresh test database");
        store.seed_demo_tariffs().await.expect("seed tariffs");
        let emulator = gateway_emulator::spawn(
            opts.emulator
                .clone()
                .unwrap_or_else(gateway_emulator::Settings::for_tests),
        )
        .await
        .expect("emulator");
        let stand_ins = billing_stand_ins::spawn_local().await.expect("stand-ins");
        let task_queue = format!("billing-test-{}", uuid::Uuid::new_v4().simple());
        // `BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS=0` turns the runaway detector off (to see its
        // tests fail without it); the other tuning variables apply too.
        let tuning = billing_worker::Tuning::from_env().expect("worker tuning variables");
        let worker_settings = WorkerSettings {
            temporal: billing_platform::temporal::TemporalSettings::local(
                temporal_address(),
                task_queue.clone(),
            ),
            database_url: database_url.clone(),
            gateway: GatewaySettings {
                base_url: opts
                    .gateway_url
                    .clone()
                    .unwrap_or_else(|| emulator.base_url()),
                public_id: gateway_emulator::DEFAULT_PUBLIC_ID.into(),
                api_secret: gateway_emulator::DEFAULT_API_SECRET.to_string().into(),
                timeout: Duration::from_secs(10),
            },
            access_url: stand_ins.access_url(),
            notification_url: stand_ins.notification_url(),
            tuning: billing_worker::Tuning {
                max_cached_workflows: opts.max_cached_workflows,
                // The SDK's default: dozens of test workers share one dev server.
                workflow_task_pollers: 5,
                ..tuning
            },
        };
        let settings = billing_starter_api::Settings {
            start_timeout: opts.start_timeout,
            ..billing_starter_api::Settings::local(
                temporal_address(),
                database_url.clone(),
                task_queue.clone(),
                opts.config.clone(),
                Some(dev_auth(&stand_ins)),
            )
        };
        let app = billing_starter_api::App::build(settings)
            .await
            .expect("starter api");
        let grpc_addr = app.grpc_addr();
        let http_base = format!("http://{}", app.http_addr());
        let (api_tx, api_rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = api_rx.await;
        }));
        let channel = Channel::from_shared(format!("http://{grpc_addr}"))
            .expect("grpc url")
            .connect()
            .await
            .expect("grpc connect");
        let admin_token = stand_ins.issuer.mint(
            &uuid::Uuid::new_v4().to_string(),
            &["admin"],
            Duration::from_secs(86_400),
        );
        let grpc = billing_client(channel.clone(), Some(&admin_token));
        let api = reqwest::Client::builder()
            .default_headers(
                [(
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {admin_token}").parse().expect("header"),
                )]
                .into_iter()
                .collect(),
            )
            .build()
            .expect("http client");
        let mut h = Harness {
            emulator,
            stand_ins,
            store,
            database_url,
            task_queue,
            grpc,
            channel,
            http_base,
            http: reqwest::Client::new(),
            api,
            admin_token,
            worker_settings,
            worker: None,
            customize: opts.customize.clone(),
            worker_process: None,
            api_stop: Some(api_tx),
        };
        if opts.worker_in_process {
            h.start_worker();
        } else {
            h.spawn_worker_process();
        }
        h
    }

    /// A token of the dev issuer for `sub` with `roles`, valid for an hour.
    pub fn token(&self, sub: &str, roles: &[&str]) -> String {
        self.stand_ins
            .issuer
            .mint(sub, roles, Duration::from_secs(3600))
    }

    /// A gRPC client sending `token` (`None`: no token).
    pub fn client_as(&self, token: Option<&str>) -> BillingClient {
        billing_client(self.channel.clone(), token)
    }

    pub fn start_worker(&mut self) {
        let customize = self.customize.clone().map(|c| {
            Box::new(move |o: &mut temporalio_sdk::WorkerOptions| c(o)) as billing_worker::Customize
        });
        self.worker = Some(
            billing_worker::WorkerThread::spawn_with(self.worker_settings.clone(), customize)
                .expect("worker thread"),
        );
    }

    /// Runs the real `billing-worker` binary, so a test can kill it with SIGKILL.
    pub fn spawn_worker_process(&mut self) {
        let child = self.worker_command().spawn().expect("spawn billing-worker");
        self.worker_process = Some(child);
    }

    /// The command line of a `billing-worker` process serving this harness's task queue.
    pub fn worker_command(&self) -> std::process::Command {
        let s = &self.worker_settings;
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_billing-worker"));
        c.env("BILLING_MODE", "dev")
            .env("TEMPORAL_ADDRESS", &s.temporal.address)
            .env("BILLING_TASK_QUEUE", &s.temporal.task_queue)
            .env("DATABASE_URL", &s.database_url)
            .env("GATEWAY_URL", &s.gateway.base_url)
            .env("ACCESS_URL", &s.access_url)
            .env("NOTIFICATION_URL", &s.notification_url)
            .env("RUST_LOG", "warn");
        c
    }

    pub fn kill_worker_process(&mut self) {
        if let Some(mut c) = self.worker_process.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn stop_worker(&mut self) {
        if let Some(w) = self.worker.take() {
            let _ = tokio::task::spawn_blocking(move || w.stop()).await;
        }
    }

    pub async fn start_subscription(
        &self,
        req: StartSubscriptionRequest,
    ) -> Result<StartSubscriptionResponse, tonic::Status> {
        self.grpc
            .clone()
            .start_subscription(req)
            .await
            .map(|r| r.into_inner())
    }

    /// gRPC GetSubscription by user id.
    pub async fn subscription_of(
        &self,
        user: &str,
    ) -> Result<billing_proto::billing::v1::Subscription, tonic::Status> {
        self.grpc
            .clone()
            .get_subscription(billing_proto::billing::v1::GetSubscriptionRequest {
                user_id: user.to_string(),
                subscription_id: String::new(),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// gRPC `CancelSubscription` of `user`'s subscription, now (`immediately`).
    pub async fn cancel_now(
        &self,
        user: &str,
    ) -> Result<billing_proto::billing::v1::Subscription, tonic::Status> {
        self.grpc
            .clone()
            .cancel_subscription(billing_proto::billing::v1::CancelSubscriptionRequest {
                subscription: r(user),
                immediately: true,
            })
            .await
            .map(|r| r.into_inner())
    }

    /// GET `path` of the emulator (e.g. `/_emulator/health`) as JSON.
    pub async fn emulator_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.emulator.base_url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The emulator's ledger for one invoice.
    pub async fn ledger(&self, invoice_id: &str) -> Value {
        self.http
            .get(format!(
                "{}/_emulator/ledger/{invoice_id}",
                self.emulator.base_url()
            ))
            .send()
            .await
            .expect("ledger")
            .json()
            .await
            .expect("ledger json")
    }

    /// All completed charges the emulator holds, across invoices.
    pub async fn completed_charges(&self) -> i64 {
        let all: Value = self
            .http
            .get(format!("{}/_emulator/ledger", self.emulator.base_url()))
            .send()
            .await
            .expect("ledger")
            .json()
            .await
            .expect("ledger json");
        all.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["completed_count"].as_i64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The PaRes the emulator's ACS would post for `transaction_id` (`confirm` or `fail`).
    pub async fn pa_res(&self, transaction_id: i64, result: &str) -> String {
        let v: Value = self
            .http
            .get(format!(
                "{}/_emulator/3ds/{transaction_id}/pares?result={result}",
                self.emulator.base_url()
            ))
            .send()
            .await
            .expect("pares")
            .json()
            .await
            .expect("pares json");
        v["PaRes"].as_str().expect("PaRes").to_string()
    }

    /// Posts a form like a browser, without following redirects.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(url)
            .form(form)
            .send()
            .await
            .expect("form post")
    }

    /// Run ids of `user`'s workflow runs matching `filter` (a visibility query clause, or empty),
    /// newest first. Visibility lags behind the workflow, so this waits up to 10 s for at least
    /// `at_least` of them, then answers what it sees.
    pub async fn run_ids_where(&self, user: &str, filter: &str, at_least: usize) -> Vec<String> {
        use futures::StreamExt;
        let client = billing_platform::temporal::connect_to(&temporal_address(), "default")
            .await
            .expect("temporal");
        let account = billing_domain::AccountId::parse(user).unwrap();
        let mut query = format!("WorkflowId = '{}'", account.workflow_id());
        if !filter.is_empty() {
            query = format!("{query} AND {filter}");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut ids = Vec::new();
            let mut runs = client.list_workflows(
                query.clone(),
                temporalio_client::WorkflowListOptions::default(),
            );
            while let Some(r) = runs.next().await {
                ids.push(r.expect("list workflows").run_id().to_string());
            }
            if ids.len() >= at_least || std::time::Instant::now() > deadline {
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How many runs of `user`'s workflow ended by continuing as new (waits for `at_least`, see
    /// [`Self::run_ids_where`]).
    pub async fn continued_runs(&self, user: &str, at_least: usize) -> usize {
        self.run_ids_where(user, "ExecutionStatus = 'ContinuedAsNew'", at_least)
            .await
            .len()
    }

    /// The history events of `user`'s workflow run `run_id` (the latest run when `None`).
    pub async fn history_events(
        &self,
        user: &str,
        run_id: Option<String>,
    ) -> Vec<temporalio_common::protos::temporal::api::history::v1::HistoryEvent> {
        let account = billing_domain::AccountId::parse(user).unwrap();
        untyped_handle(&account.workflow_id(), run_id)
            .await
            .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default())
            .into_events()
            .await
            .expect("history")
    }

    /// Patch ids (`ctx.patched`) recorded as markers in the history of `user`'s workflow run
    /// `run_id` (the latest run when `None`), in order.
    pub async fn patch_markers(&self, user: &str, run_id: Option<String>) -> Vec<String> {
        use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
        self.history_events(user, run_id)
            .await
            .iter()
            .filter_map(|e| match &e.attributes {
                Some(Attributes::MarkerRecordedEventAttributes(m))
                    if m.marker_name == "core_patch" =>
                {
                    let data = &m.details.get("patch-data")?.payloads.first()?.data;
                    let v: Value = serde_json::from_slice(data).ok()?;
                    Some(v["id"].as_str()?.to_string())
                }
                _ => None,
            })
            .collect()
    }

    /// The kind of task queue (sticky or normal) each workflow task of `user`'s latest run was
    /// scheduled on, in order.
    pub async fn workflow_task_queue_kinds(
        &self,
        user: &str,
    ) -> Vec<temporalio_common::protos::temporal::api::enums::v1::TaskQueueKind> {
        use temporalio_common::protos::temporal::api::enums::v1::TaskQueueKind;
        use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
        self.history_events(user, None)
            .await
            .iter()
            .filter_map(|e| match &e.attributes {
                Some(Attributes::WorkflowTaskScheduledEventAttributes(a)) => Some(
                    a.task_queue
                        .as_ref()
                        .and_then(|q| TaskQueueKind::try_from(q.kind).ok())
                        .unwrap_or(TaskQueueKind::Unspecified),
                ),
                _ => None,
            })
            .collect()
    }

    /// With `RECORD_HISTORIES=1`, saves the latest run's history of `user`'s workflow as a replay
    /// fixture in `workflows/tests/histories/NAME.json` (see workflows/tests/replay.rs).
    pub async fn record_history(&self, user: &str, name: &str) {
        if std::env::var("RECORD_HISTORIES").is_err() {
            return;
        }
        let client = billing_platform::temporal::connect_to(&temporal_address(), "default")
            .await
            .expect("temporal");
        let account = billing_domain::AccountId::parse(user).unwrap();
        let handle = client
            .get_workflow_handle::<billing_workflows::SubscriptionWorkflow>(account.workflow_id());
        let json = handle
            .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default())
            .to_json()
            .await
            .expect("history json");
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/tests/histories");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.json")), json).unwrap();
    }

    /// A handle on `user`'s subscription workflow (its latest run).
    pub async fn workflow_handle(
        &self,
        user: &str,
    ) -> temporalio_client::WorkflowHandle<
        temporalio_client::Client,
        billing_workflows::SubscriptionWorkflow,
    > {
        let client = billing_platform::temporal::connect_to(&temporal_address(), "default")
            .await
            .expect("temporal");
        let account = billing_domain::AccountId::parse(user).unwrap();
        client.get_workflow_handle::<billing_workflows::SubscriptionWorkflow>(account.workflow_id())
    }

    /// Sends a Temporal cancellation request to `user`'s workflow: what the Web UI's "Request
    /// Cancellation" button and `temporal workflow cancel` do.
    pub async fn request_temporal_cancellation(&self, user: &str) {
        self.workflow_handle(user)
            .await
            .cancel(
                temporalio_client::WorkflowCancelOptions::builder()
                    .reason("operator clicked Request Cancellation")
                    .build(),
            )
            .await
            .expect("cancel request");
    }

    /// The Temporal execution status of `user`'s latest run once it has closed; panics if it is
    /// still running after `within`.
    pub async fn closed_status(
        &self,
        user: &str,
        within: Duration,
    ) -> temporalio_client::WorkflowExecutionStatus {
        use temporalio_client::WorkflowExecutionStatus;
        let handle = self.workflow_handle(user).await;
        let deadline = std::time::Instant::now() + within;
        loop {
            let status = handle
                .describe(temporalio_client::WorkflowDescribeOptions::default())
                .await
                .expect("describe")
                .status();
            if status != WorkflowExecutionStatus::Running {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "workflow of {user} still running after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn add_fault(&self, rule: Value) {
        let r = self
            .http
            .post(format!("{}/_emulator/faults", self.emulator.base_url()))
            .json(&rule)
            .send()
            .await
            .expect("fault");
        assert!(
            r.status().is_success(),
            "fault rejected: {}",
            r.text().await.unwrap_or_default()
        );
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.kill_worker_process();
        self.worker.take();
        if let Some(tx) = self.api_stop.take() {
            let _ = tx.send(());
        }
    }
}

fn tracing_subscriber_init() -> Result<(), ()> {
    billing_platform::telemetry::init("warn");
    Ok(())
}

/// A reference to `user`'s subscription, as gRPC requests take it.
pub fn r(user: &str) -> Option<billing_proto::billing::v1::SubscriptionRef> {
    Some(billing_proto::billing::v1::SubscriptionRef {
        subscription_id: String::new(),
        user_id: user.to_string(),
    })
}

/// Starts `user`'s subscription with `card` and expects it paid.
pub async fn start_paid(h: &Harness, user: &str, card: &str) -> billing_proto::billing::v1::Paid {
    use billing_proto::billing::v1::start_subscription_response::Outcome;
    match h
        .start_subscription(start_request(user, card, &format!("req-{user}")))
        .await
        .expect("start")
        .outcome
    {
        Some(Outcome::Paid(p)) => p,
        other => panic!("expected paid, got {other:?}"),
    }
}

/// Moves `user`'s test clock forward and returns the settled view.
pub async fn advance(
    h: &Harness,
    user: &str,
    seconds: u64,
) -> billing_proto::billing::v1::Subscription {
    h.grpc
        .clone()
        .advance_test_clock(billing_proto::billing::v1::AdvanceTestClockRequest {
            subscription: r(user),
            seconds,
        })
        .await
        .expect("advance")
        .into_inner()
}

pub fn secs(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map(|t| t.seconds).unwrap_or(0)
}

/// The kinds of the notifications `user` got, in order.
pub fn kinds(h: &Harness, user: &str) -> Vec<billing_proto::notification::v1::EventKind> {
    h.stand_ins
        .recorder
        .events_for(user)
        .iter()
        .map(|e| billing_proto::notification::v1::EventKind::try_from(e.kind).unwrap())
        .collect()
}

/// gRPC `Confirm3ds` with `pa_res` for gateway transaction `transaction_id`.
pub async fn confirm_3ds(
    h: &Harness,
    transaction_id: i64,
    pa_res: String,
) -> Result<billing_proto::billing::v1::StartSubscriptionResponse, tonic::Status> {
    h.grpc
        .clone()
        .confirm3ds(billing_proto::billing::v1::Confirm3dsRequest {
            transaction_id,
            pa_res,
        })
        .await
        .map(|r| r.into_inner())
}

/// The worker still bills people: a new user's subscription is paid in the usual time (about a
/// second; 20 s leaves room for a loaded CI machine, a stuck worker never answers). Returns the
/// user.
pub async fn a_new_subscription_is_paid(h: &Harness) -> String {
    use billing_proto::billing::v1::start_subscription_response::Outcome;
    let user = new_user();
    let started = tokio::time::timeout(
        Duration::from_secs(20),
        h.start_subscription(start_request(
            &user,
            gateway_emulator::cards::MC_NO_3DS_SUCCESS,
            &format!("req-{user}"),
        )),
    )
    .await
    .expect("a new subscription was not answered within 20 s: the worker is stuck")
    .expect("start");
    assert!(
        matches!(started.outcome, Some(Outcome::Paid(_))),
        "{started:?}"
    );
    user
}

/// A handle on any workflow by id (its latest run).
pub async fn untyped_handle(
    workflow_id: &str,
    run_id: Option<String>,
) -> temporalio_client::WorkflowHandle<temporalio_client::Client, temporalio_client::UntypedWorkflow>
{
    let client = billing_platform::temporal::connect_to(&temporal_address(), "default")
        .await
        .expect("temporal");
    let info = temporalio_client::WorkflowExecutionInfo::builder()
        .namespace("default")
        .workflow_id(workflow_id.to_string())
        .maybe_run_id(run_id)
        .build();
    temporalio_client::WorkflowHandle::new(client, info)
}

pub fn new_user() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A start request for `card` (a legacy-shaped cryptogram, as the checkout script would send).
pub fn start_request(user: &str, card: &str, request_id: &str) -> StartSubscriptionRequest {
    StartSubscriptionRequest {
        user_id: user.to_string(),
        tariff_code: "basic-monthly".into(),
        card_cryptogram: gateway_emulator::cryptogram::legacy(card, 12, 2030),
        cardholder_name: "IVAN PETROV".into(),
        payer_ip: "203.0.113.7".into(),
        email: "ivan@example.com".into(),
        client_request_id: request_id.to_string(),
    }
}
