//! Renewal throughput benchmark (issue 5, "Performance").
//!
//! For each N in `BENCH_RENEWAL_NS` (default `1000,2000,5000`), against one Temporal server:
//!
//! - **bare engine rate**: N `BareWorkflow`s (defined here, a worker of their own) each sleep on
//!   a durable timer until one common instant T, then run ONE no-op activity and complete.
//!   Rate = N / (time from T until the N-th activity ran).
//! - **renewal rate**: N real subscriptions (StartSubscription over gRPC, first payment paid)
//!   whose first renewal falls due at one common instant T. Each subscription gets a test tariff
//!   with a period of `k` seconds (unit "second"), `k` chosen at its start so that
//!   anchor + k = T (the anchor is the start's workflow time in whole seconds), so all N
//!   renewals are driven by real durable timers firing within ~1 s of T. The renewal is done when
//!   the notification stand-in received its `RenewalSucceeded` (the last side effect).
//!   Rate = N / (time from T until the N-th distinct subscription's RenewalSucceeded).
//!
//! Both run with the same worker settings (`max_cached_workflows`, the production default unless set)
//! and a fresh task queue per phase. Also reported: CPU seconds consumed by the Temporal server,
//! PostgreSQL and this process (API + worker + emulator + stand-ins) from T to the last
//! completion, per renewal; and a sample of histories decomposed (events, workflow tasks,
//! activities per renewal, dispatch latency), to explain the ratio.
//!
//! Target (at N = `BENCH_RENEWAL_TARGET_N`, default 2000): renewal rate >= 0.5 x bare rate.
//!
//! Environment: TEMPORAL_ADDRESS, DATABASE_URL (scripts/bench.sh sets them);
//! BENCH_RENEWAL_NS, BENCH_RENEWAL_TARGET_N, BENCH_CREATE_CONCURRENCY (default 32),
//! BILLING_MAX_CACHED_WORKFLOWS (default: the worker's, 150), BENCH_MARGIN_FACTOR (default 2.0: idle margin
//! between the end of creation and T, as a fraction of the creation time, so that the
//! latest-created subscriptions' second renewal (at T + k_min) does not overlap the measured one),
//! BENCH_HISTORY_SAMPLE (default 12).

mod support;
use support::*;

use billing_activities::gateway::GatewaySettings;
use billing_domain::messages::TariffSnapshot;
use billing_domain::{BillingPeriod, Currency, Money, PeriodUnit, TariffCode};
use billing_proto::notification::v1::EventKind;
use billing_stand_ins::RunningStandIns;
use billing_store::Store;
use billing_worker::WorkerSettings;
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use temporalio_client::{
    Client, UntypedWorkflow, WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHandle,
    WorkflowListOptions, WorkflowStartOptions, WorkflowTerminateOptions,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

// ------------------------------------------------------------------------------------- bare

/// Indices of bare workflows whose activity ran (distinct; retries would not double count).
static BARE_DONE: LazyLock<Mutex<HashSet<u64>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

pub struct BareActivities;

#[activities]
impl BareActivities {
    /// Does nothing but note that it ran: the bare rate measures the engine, not the work.
    #[activity]
    pub async fn touch(_ctx: ActivityContext, idx: u64) -> Result<u64, ActivityError> {
        BARE_DONE.lock().unwrap().insert(idx);
        Ok(idx)
    }
}

/// The engine's bare rate: a durable timer until `due_ms` (Unix ms), then one activity.
#[workflow]
#[derive(Default)]
pub struct BareWorkflow {
    _unused: bool,
}

#[workflow_methods]
impl BareWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: (u64, u64)) -> WorkflowResult<()> {
        let (due_ms, idx) = input;
        let now_ms = ctx
            .workflow_time()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        if due_ms > now_ms {
            let _ = ctx.timer(Duration::from_millis(due_ms - now_ms)).await;
        }
        ctx.execute_activity(
            BareActivities::touch,
            idx,
            ActivityOptions::start_to_close_timeout(Duration::from_secs(30)),
        )
        .await?;
        Ok(())
    }
}

/// The bare worker, with the same sticky cache as the billing worker under test.
fn bare_worker(temporal_address: String, task_queue: String, max_cached: usize) -> BenchWorker {
    BenchWorker::spawn("bare-worker", temporal_address, move || {
        Ok(WorkerOptions::new(task_queue)
            .register_workflow::<BareWorkflow>()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .register_activities(BareActivities)
            .max_cached_workflows(max_cached)
            .nonsticky_to_sticky_poll_ratio(bench_nonsticky_ratio())
            .workflow_task_poller_behavior(temporalio_sdk::runtime::PollerBehavior::SimpleMaximum(
                bench_workflow_task_pollers(),
            ))
            .maybe_sticky_queue_schedule_to_start_timeout(bench_sticky_timeout())
            .build())
    })
}

// ------------------------------------------------------------------------------------- helpers

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// CPU seconds (user + system) of a process, from /proc/PID/stat.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 (1-based).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The processes whose CPU time we account: the Temporal server listening on `temporal_port`, the
/// PostgreSQL postmaster on `pg_port` and its children (backends, walwriter, ...), this process.
#[derive(Clone, Default)]
struct Procs {
    temporal: Vec<u32>,
    pg_master: Option<u32>,
}

impl Procs {
    fn find(temporal_port: &str, pg_port: &str) -> Procs {
        let mut p = Procs::default();
        for pid in all_pids() {
            let c = cmdline(pid);
            let has = |a: &str, b: &str| c.windows(2).any(|w| w[0] == a && w[1] == b);
            if c.iter().any(|a| a == "start-dev") && has("--port", temporal_port) {
                p.temporal.push(pid);
            }
            if c.first().is_some_and(|a| a.ends_with("/postgres")) && has("-p", pg_port) {
                p.pg_master = Some(pid);
            }
        }
        p
    }

    /// (temporal, postgres, this process) CPU seconds.
    fn sample(&self) -> (f64, f64, f64) {
        let t = self.temporal.iter().map(|p| cpu_secs(*p)).sum();
        let pg = match self.pg_master {
            Some(m) => all_pids()
                .into_iter()
                .filter(|p| *p == m || ppid(*p) == Some(m))
                .map(cpu_secs)
                .sum(),
            None => 0.0,
        };
        (t, pg, cpu_secs(std::process::id()))
    }
}

fn port_of(url_or_addr: &str) -> String {
    let s = url_or_addr.rsplit('@').next().unwrap_or(url_or_addr);
    let s = s
        .split('/')
        .find(|p| p.contains(':') && !p.ends_with(':'))
        .unwrap_or(s);
    s.rsplit(':')
        .next()
        .unwrap_or("")
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("")
        .to_string()
}

/// Completion times (seconds after T) as completions are observed.
#[derive(Default, Debug, Clone)]
struct Progress {
    /// Seconds after T at which the i-th completion was seen (polled every 20 ms).
    at: Vec<f64>,
}

impl Progress {
    fn quantile(&self, q: f64) -> f64 {
        if self.at.is_empty() {
            return f64::NAN;
        }
        let i = ((q * self.at.len() as f64).ceil() as usize).clamp(1, self.at.len()) - 1;
        self.at[i]
    }
}

#[derive(Debug, Clone, Default)]
struct PhaseResult {
    n: usize,
    completed: usize,
    create_rate: f64,
    progress: Progress,
    /// CPU seconds from T to the last completion: temporal, postgres, bench process.
    cpu: (f64, f64, f64),
    /// Due instants spread (seconds, max - min), renewals only.
    due_spread: f64,
    late_starts: usize,
    wall: f64,
    load_during: String,
    problems: Vec<String>,
}

impl PhaseResult {
    /// N / (time from T to the last completion).
    fn rate(&self) -> f64 {
        self.completed as f64 / self.progress.at.last().copied().unwrap_or(f64::NAN)
    }
    /// Steady-state rate between the 10th and 90th percentile completions.
    fn mid_rate(&self) -> f64 {
        0.8 * self.completed as f64 / (self.progress.quantile(0.9) - self.progress.quantile(0.1))
    }
}

/// Polls `done()` every 20 ms from now until `n` completions or `timeout`, recording when each
/// completion was first seen, in seconds after `t_due` (an Instant).
async fn watch(
    t_due: Instant,
    n: usize,
    timeout: Duration,
    mut done: impl FnMut() -> usize,
) -> Progress {
    let mut p = Progress::default();
    let mut last = 0usize;
    while last < n && t_due.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = done();
        if now > last {
            let t = Instant::now()
                .saturating_duration_since(t_due)
                .as_secs_f64();
            for _ in last..now {
                p.at.push(t);
            }
            last = now;
        }
    }
    p
}

/// Sleeps until `t` (an Instant), printing nothing.
async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
}

async fn terminate_all(client: &Client, ids: Vec<String>) {
    futures::stream::iter(ids)
        .for_each_concurrent(64, |id| {
            let client = client.clone();
            async move {
                let h = client.get_workflow_handle::<UntypedWorkflow>(id);
                let _ = h
                    .terminate(
                        WorkflowTerminateOptions::builder()
                            .reason("benchmark over".to_string())
                            .build(),
                    )
                    .await;
            }
        })
        .await;
}

// ------------------------------------------------------------------------------------- histories

/// Per-workflow decomposition of the measured part of a history: from the last TimerFired (the
/// due instant) to the end of the run or the end of the measured work.
#[derive(Default, Debug, Clone)]
struct Shape {
    events: f64,
    wfts: f64,
    activities: f64,
    /// ms: WorkflowTaskScheduled -> Started, summed.
    wft_dispatch: f64,
    /// ms: WorkflowTaskStarted -> Completed, summed.
    wft_run: f64,
    /// ms: ActivityTaskScheduled -> Started, summed.
    act_dispatch: f64,
    /// ms: ActivityTaskStarted -> Completed, summed.
    act_run: f64,
    /// ms: TimerFired -> last event of the run.
    span: f64,
    /// ms: the timer's due time (TimerStarted + start_to_fire) -> TimerFired.
    timer_lag: f64,
    /// Workflow tasks scheduled on a sticky queue (the rest went to the normal queue).
    sticky_wfts: f64,
}

fn ms(e: &HistoryEvent) -> f64 {
    e.event_time
        .as_ref()
        .map(|t| t.seconds as f64 * 1e3 + t.nanos as f64 / 1e6)
        .unwrap_or(0.0)
}

fn shape(events: &[HistoryEvent]) -> Option<Shape> {
    use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
    let fired = events
        .iter()
        .rposition(|e| e.event_type() == EventType::TimerFired)?;
    let timer_started = events[..fired]
        .iter()
        .rposition(|e| e.event_type() == EventType::TimerStarted);
    let mut s = Shape::default();
    if let Some(ts) = timer_started {
        if let Some(Attributes::TimerStartedEventAttributes(a)) = &events[ts].attributes {
            let fire = a
                .start_to_fire_timeout
                .as_ref()
                .map(|d| d.seconds as f64 * 1e3 + d.nanos as f64 / 1e6)
                .unwrap_or(0.0);
            s.timer_lag = ms(&events[fired]) - (ms(&events[ts]) + fire);
        }
    }
    let t0 = ms(&events[fired]);
    let by_id: HashMap<i64, &HistoryEvent> = events.iter().map(|e| (e.event_id, e)).collect();
    let tail = &events[fired + 1..];
    s.events = tail.len() as f64;
    for e in tail {
        match (e.event_type(), &e.attributes) {
            (
                EventType::WorkflowTaskScheduled,
                Some(Attributes::WorkflowTaskScheduledEventAttributes(a)),
            ) => {
                let sticky =
                    temporalio_common::protos::temporal::api::enums::v1::TaskQueueKind::Sticky
                        as i32;
                if a.task_queue.as_ref().is_some_and(|q| q.kind == sticky) {
                    s.sticky_wfts += 1.0;
                }
            }
            (
                EventType::WorkflowTaskStarted,
                Some(Attributes::WorkflowTaskStartedEventAttributes(a)),
            ) => {
                if let Some(sch) = by_id.get(&a.scheduled_event_id) {
                    s.wft_dispatch += ms(e) - ms(sch);
                }
            }
            (
                EventType::WorkflowTaskCompleted,
                Some(Attributes::WorkflowTaskCompletedEventAttributes(a)),
            ) => {
                s.wfts += 1.0;
                if let Some(st) = by_id.get(&a.started_event_id) {
                    s.wft_run += ms(e) - ms(st);
                }
            }
            (EventType::ActivityTaskScheduled, _) => s.activities += 1.0,
            (
                EventType::ActivityTaskStarted,
                Some(Attributes::ActivityTaskStartedEventAttributes(a)),
            ) => {
                if let Some(sch) = by_id.get(&a.scheduled_event_id) {
                    s.act_dispatch += ms(e) - ms(sch);
                }
            }
            (
                EventType::ActivityTaskCompleted,
                Some(Attributes::ActivityTaskCompletedEventAttributes(a)),
            ) => {
                if let Some(st) = by_id.get(&a.started_event_id) {
                    s.act_run += ms(e) - ms(st);
                }
            }
            _ => {}
        }
    }
    s.span = tail.last().map(|e| ms(e) - t0).unwrap_or(0.0);
    Some(s)
}

/// Mean shape over a sample. For subscriptions, the run that renewed is the one that continued
/// as new if there is one (found through visibility, then fetched by run id), else the current
/// run (runs continue as new only after `renewals_per_run` renewals).
async fn sample_shapes(
    client: &Client,
    ids: &[String],
    sample: usize,
    renewed_run: bool,
) -> Option<(usize, Shape)> {
    if sample == 0 || ids.is_empty() {
        return None;
    }
    let step = (ids.len() / sample).max(1);
    let mut all = Vec::new();
    for id in ids.iter().step_by(step).take(sample) {
        let mut run_id = None;
        if renewed_run {
            let mut runs = client.list_workflows(
                format!("WorkflowId = '{id}'"),
                WorkflowListOptions::default(),
            );
            while let Some(Ok(w)) = runs.next().await {
                if format!("{:?}", w.status()).contains("ContinuedAsNew") {
                    run_id = Some(w.run_id().to_string());
                    break;
                }
            }
            // No continued run: the renewal happened in the current run (renewals_per_run > 1).
        }
        let info = WorkflowExecutionInfo::builder()
            .namespace("default")
            .workflow_id(id.clone())
            .maybe_run_id(run_id)
            .build();
        let h: WorkflowHandle<Client, UntypedWorkflow> = WorkflowHandle::new(client.clone(), info);
        match h
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .into_events()
            .await
        {
            Ok(ev) => {
                if let Some(s) = shape(&ev) {
                    all.push(s);
                }
            }
            Err(e) => eprintln!("history of {id}: {e}"),
        }
    }
    if all.is_empty() {
        return None;
    }
    let k = all.len() as f64;
    let mut m = Shape::default();
    for s in &all {
        m.events += s.events / k;
        m.wfts += s.wfts / k;
        m.sticky_wfts += s.sticky_wfts / k;
        m.activities += s.activities / k;
        m.wft_dispatch += s.wft_dispatch / k;
        m.wft_run += s.wft_run / k;
        m.act_dispatch += s.act_dispatch / k;
        m.act_run += s.act_run / k;
        m.span += s.span / k;
        m.timer_lag += s.timer_lag / k;
    }
    Some((all.len(), m))
}

fn print_shape(label: &str, samples: usize, s: &Shape) {
    println!(
        "    {label:<9} ({samples} sampled): {:.1} events, {:.1} workflow tasks ({:.1} on a sticky queue), {:.1} activities after TimerFired; \
         timer fired {:.0} ms late; TimerFired -> end {:.0} ms = WFT dispatch {:.0} + WFT run {:.0} + activity dispatch {:.0} + activity run {:.0} + rest {:.0}",
        s.events,
        s.wfts,
        s.sticky_wfts,
        s.activities,
        s.timer_lag,
        s.span,
        s.wft_dispatch,
        s.wft_run,
        s.act_dispatch,
        s.act_run,
        s.span - s.wft_dispatch - s.wft_run - s.act_dispatch - s.act_run
    );
}

// ------------------------------------------------------------------------------------- phases

struct Shared {
    temporal_address: String,
    temporal: Client,
    database_url: String,
    store: Store,
    emulator_url: String,
    stand_ins: RunningStandIns,
    max_cached: usize,
    concurrency: usize,
    margin_factor: f64,
    history_sample: usize,
    procs: Procs,
    /// Tariff codes already in the database (one per period length in seconds).
    tariffs: tokio::sync::Mutex<HashSet<u32>>,
}

fn wf_id_of(user: &str) -> String {
    billing_domain::AccountId::parse(user)
        .expect("uuid account")
        .workflow_id()
}

async fn bare_phase(sh: &Shared, n: usize, phase: u64) -> (PhaseResult, Option<(usize, Shape)>) {
    let tq = format!("bench-bare-{}", uuid::Uuid::new_v4().simple());
    let worker = bare_worker(sh.temporal_address.clone(), tq.clone(), sh.max_cached);
    let base = phase * 1_000_000;
    let mut r = PhaseResult {
        n,
        ..Default::default()
    };
    let start = |idx: u64, due_ms: u64| {
        let client = sh.temporal.clone();
        let tq = tq.clone();
        async move {
            let id = format!("bench-bare-{idx}-{}", uuid::Uuid::new_v4().simple());
            let opts = WorkflowStartOptions::new(tq, id.clone()).build();
            client
                .start_workflow(BareWorkflow::run, (due_ms, idx), opts)
                .await
                .map(|_| id)
                .map_err(|e| e.to_string())
        }
    };
    // Calibrate the start rate with 100 far-future workflows (terminated afterwards).
    let t0 = Instant::now();
    let far = unix_ms() + 3_600_000;
    let calib: Vec<_> = futures::stream::iter(0..100u64)
        .map(|i| start(base + 900_000 + i, far))
        .buffer_unordered(sh.concurrency)
        .collect()
        .await;
    let rate = 100.0 / t0.elapsed().as_secs_f64();
    let est = n as f64 / rate;
    let lead = est * (1.0 + sh.margin_factor) + 5.0;
    let due_ms = unix_ms() + (lead * 1e3) as u64;
    let t_due = Instant::now() + Duration::from_millis(due_ms - unix_ms());
    let t1 = Instant::now();
    let started: Vec<_> = futures::stream::iter(0..n as u64)
        .map(|i| start(base + i, due_ms))
        .buffer_unordered(sh.concurrency)
        .collect()
        .await;
    let created_in = t1.elapsed().as_secs_f64();
    r.create_rate = n as f64 / created_in;
    let mut ids = Vec::new();
    for s in started {
        match s {
            Ok(id) => ids.push(id),
            Err(e) => r.problems.push(format!("start: {e}")),
        }
    }
    if Instant::now() > t_due {
        r.late_starts = n;
        r.problems.push(format!(
            "starting took {created_in:.1} s, past the due instant (estimate {est:.1} s)"
        ));
    }
    println!(
        "  bare     N={n}: started in {created_in:.1} s ({:.0}/s), due {:.1} s after the last start",
        r.create_rate,
        t_due.saturating_duration_since(Instant::now()).as_secs_f64()
    );
    sleep_until(t_due).await;
    let cpu0 = sh.procs.sample();
    let load0 = loadavg();
    let count = |b: u64| {
        BARE_DONE
            .lock()
            .unwrap()
            .iter()
            .filter(|i| **i >= b && **i < b + n as u64)
            .count()
    };
    r.progress = watch(t_due, n, Duration::from_secs(900), || count(base)).await;
    let cpu1 = sh.procs.sample();
    r.cpu = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1, cpu1.2 - cpu0.2);
    r.completed = r.progress.at.len();
    r.wall = t_due.elapsed().as_secs_f64();
    r.load_during = format!("{load0} -> {}", loadavg());
    // Let the workflows complete (one more workflow task) before reading histories.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shapes = sample_shapes(&sh.temporal, &ids, sh.history_sample, false).await;
    terminate_all(
        &sh.temporal,
        calib.into_iter().filter_map(Result::ok).collect(),
    )
    .await;
    let _ = tokio::task::spawn_blocking(move || worker.stop()).await;
    (r, shapes)
}

async fn start_api(sh: &Shared, task_queue: &str) -> Api {
    Api::start(
        &sh.temporal_address,
        &sh.database_url,
        task_queue,
        bench_billing_config(),
        Duration::from_secs(60),
        &sh.stand_ins,
    )
    .await
}

async fn ensure_tariff(sh: &Shared, secs: u32) -> String {
    let code = format!("bench-renew-{secs}s");
    let mut have = sh.tariffs.lock().await;
    if have.insert(secs) {
        sh.store
            .upsert_tariff(
                &TariffSnapshot {
                    code: TariffCode::parse(&code).unwrap(),
                    name: format!("Bench {secs}s"),
                    price: Money {
                        minor: 29_900,
                        currency: Currency::Rub,
                    },
                    period: BillingPeriod {
                        unit: PeriodUnit::Second,
                        count: secs,
                    },
                },
                true,
            )
            .await
            .expect("upsert tariff");
    }
    code
}

/// One StartSubscription (new user); `due_s` = the Unix second the first renewal should fall due
/// (None: the monthly demo tariff). Ok((user, due second actually aimed at)).
async fn start_sub(
    sh: &Shared,
    grpc: &billing_stand_ins::BillingClient,
    due_s: Option<u64>,
) -> Result<(String, u64), String> {
    let (tariff, aimed) = match due_s {
        None => ("basic-monthly".to_string(), 0),
        Some(due) => {
            // The anchor is the workflow's start time in whole seconds: aim from the current second.
            let now_s = unix_ms() / 1000;
            let k = due.saturating_sub(now_s).max(1) as u32;
            (ensure_tariff(sh, k).await, now_s + u64::from(k))
        }
    };
    start_paid(grpc, tariff).await.map(|user| (user, aimed))
}

async fn renewal_phase(sh: &Shared, n: usize) -> (PhaseResult, Option<(usize, Shape)>) {
    let tq = format!("bench-renew-{}", uuid::Uuid::new_v4().simple());
    let worker = billing_worker::WorkerThread::spawn(WorkerSettings {
        temporal: billing_platform::temporal::TemporalSettings::local(
            sh.temporal_address.clone(),
            tq.clone(),
        ),
        database_url: sh.database_url.clone(),
        gateway: GatewaySettings {
            base_url: sh.emulator_url.clone(),
            public_id: gateway_emulator::DEFAULT_PUBLIC_ID.into(),
            api_secret: gateway_emulator::DEFAULT_API_SECRET.to_string().into(),
            timeout: Duration::from_secs(20),
        },
        access_url: sh.stand_ins.access_url(),
        notification_url: sh.stand_ins.notification_url(),
        tuning: billing_worker::Tuning {
            max_cached_workflows: sh.max_cached,
            ..bench_tuning()
        },
    })
    .expect("billing worker");
    let api = start_api(sh, &tq).await;
    let mut r = PhaseResult {
        n,
        ..Default::default()
    };

    // Calibrate the creation rate (and warm up) with 64 subscriptions on the monthly tariff.
    let calib_n = 64;
    let t0 = Instant::now();
    let calib: Vec<_> = futures::stream::iter(0..calib_n)
        .map(|_| start_sub(sh, &api.grpc, None))
        .buffer_unordered(sh.concurrency)
        .collect()
        .await;
    let rate = calib_n as f64 / t0.elapsed().as_secs_f64();
    let est = n as f64 / rate;
    let lead = est * (1.0 + sh.margin_factor) + 15.0;
    let due_s = (unix_ms() as f64 / 1e3 + lead).ceil() as u64;
    let t_due = Instant::now() + Duration::from_millis(due_s * 1000 - unix_ms());
    println!("  renewal  N={n}: calibration {rate:.0} subscriptions/s -> creation estimate {est:.0} s, renewals due at T = now + {lead:.0} s");

    let t1 = Instant::now();
    let created: Vec<_> = futures::stream::iter(0..n)
        .map(|_| start_sub(sh, &api.grpc, Some(due_s)))
        .buffer_unordered(sh.concurrency)
        .collect()
        .await;
    let created_in = t1.elapsed().as_secs_f64();
    r.create_rate = n as f64 / created_in;
    let mut users = HashSet::new();
    let (mut min_due, mut max_due) = (u64::MAX, 0u64);
    for c in created {
        match c {
            Ok((u, aimed)) => {
                min_due = min_due.min(aimed);
                max_due = max_due.max(aimed);
                if aimed > due_s {
                    r.late_starts += 1;
                }
                users.insert(u);
            }
            Err(e) => r.problems.push(format!("start: {e}")),
        }
    }
    r.due_spread = max_due.saturating_sub(min_due) as f64;
    let slack = t_due
        .saturating_duration_since(Instant::now())
        .as_secs_f64();
    println!(
        "  renewal  N={n}: created in {created_in:.1} s ({:.0}/s), {} paid, due instants within {:.0} s, {} aimed past T; T is {slack:.1} s away (= the shortest period)",
        r.create_rate,
        users.len(),
        r.due_spread,
        r.late_starts,
    );
    sleep_until(t_due).await;
    let cpu0 = sh.procs.sample();
    let load0 = loadavg();

    // Count distinct phase users with a RenewalSucceeded (first renewal); scan incrementally.
    let recorder = sh.stand_ins.recorder.clone();
    let mut scanned = 0usize;
    let mut renewed: HashSet<String> = HashSet::new();
    let mut second_round = 0usize;
    let kind = EventKind::RenewalSucceeded as i32;
    let expected = users.len();
    r.progress = watch(t_due, expected, Duration::from_secs(1800), || {
        let calls = recorder.event_calls.lock();
        for e in calls.iter().skip(scanned) {
            if e.kind == kind && users.contains(&e.user_id) && !renewed.insert(e.user_id.clone()) {
                second_round += 1;
            }
        }
        scanned = calls.len();
        renewed.len()
    })
    .await;
    let cpu1 = sh.procs.sample();
    r.cpu = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1, cpu1.2 - cpu0.2);
    r.completed = r.progress.at.len();
    r.wall = t_due.elapsed().as_secs_f64();
    r.load_during = format!("{load0} -> {}", loadavg());
    if second_round > 0 {
        r.problems.push(format!("{second_round} second-round renewals (or repeated notifications) arrived before the last first renewal"));
    }
    if r.completed < expected {
        r.problems.push(format!(
            "only {} of {expected} renewed before the timeout",
            r.completed
        ));
    }

    // Histories of a sample (the run that renewed), then stop everything of this phase.
    let ids: Vec<String> = users.iter().map(|u| wf_id_of(u)).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shapes = sample_shapes(&sh.temporal, &ids, sh.history_sample, true).await;
    let mut all_ids = ids;
    all_ids.extend(
        calib
            .into_iter()
            .filter_map(Result::ok)
            .map(|(u, _)| wf_id_of(&u)),
    );
    terminate_all(&sh.temporal, all_ids).await;
    let _ = tokio::task::spawn_blocking(move || worker.stop()).await;
    api.stop().await;
    (r, shapes)
}

// ------------------------------------------------------------------------------------- main

#[tokio::main]
async fn main() {
    let ns: Vec<usize> = std::env::var("BENCH_RENEWAL_NS")
        .unwrap_or_else(|_| "1000,2000,5000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let target_n = env_usize("BENCH_RENEWAL_TARGET_N", 2000);
    billing_platform::telemetry::init("warn");
    let temporal_address = std::env::var("TEMPORAL_ADDRESS")
        .expect("TEMPORAL_ADDRESS is not set: run scripts/bench.sh");
    let db_env =
        std::env::var("DATABASE_URL").expect("DATABASE_URL is not set: run scripts/bench.sh");

    println!("== renewal throughput benchmark ==");
    println!(
        "date (UTC, unix s)   {}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    print_environment(&temporal_address);

    let (database_url, store) = billing_test_support::fresh_db()
        .await
        .expect("fresh database");
    store.seed_demo_tariffs().await.expect("seed tariffs");
    let mut es = gateway_emulator::Settings::for_tests();
    es.max_concurrent_per_terminal = 1000;
    let emulator = gateway_emulator::spawn(es).await.expect("emulator");
    let stand_ins = billing_stand_ins::spawn_local().await.expect("stand-ins");
    let temporal = billing_platform::temporal::connect_to(&temporal_address, "default")
        .await
        .expect("temporal client");
    let procs = Procs::find(&port_of(&temporal_address), &port_of(&db_env));
    let sh = Shared {
        temporal_address: temporal_address.clone(),
        temporal,
        database_url,
        store,
        emulator_url: emulator.base_url(),
        stand_ins,
        max_cached: bench_max_cached(),
        concurrency: env_usize("BENCH_CREATE_CONCURRENCY", 32).max(1),
        margin_factor: env_f64("BENCH_MARGIN_FACTOR", 2.0),
        history_sample: env_usize("BENCH_HISTORY_SAMPLE", 12),
        procs: procs.clone(),
        tariffs: tokio::sync::Mutex::new(HashSet::new()),
    };
    println!("N                    {ns:?} (target checked at N = {target_n})");
    println!(
        "worker               max_cached_workflows {} (both workers), 2 tokio threads each; creation with {} concurrent clients",
        sh.max_cached, sh.concurrency
    );
    println!(
        "workflow pollers     {} (both workers)",
        bench_workflow_task_pollers()
    );
    println!(
        "sticky timeout       {} (both workers)",
        bench_sticky_timeout().map_or("SDK default (10 s)".to_string(), |d| format!("{d:?}"))
    );
    println!(
        "nonsticky poll ratio {} (both workers; SDK default 0.2)",
        bench_nonsticky_ratio()
    );
    println!(
        "sticky release       {} (billing worker only: evicted subscriptions' sticky queues are reset; the bare worker keeps SDK behaviour)",
        if bench_sticky_release() { "on" } else { "off" }
    );
    println!(
        "renewals per run     {} (continue-as-new after that many paid renewals)",
        bench_billing_config().renewals_per_run
    );
    println!(
        "cpu accounting       temporal pids {:?}, postgres postmaster {:?} (+children), bench pid {}",
        procs.temporal,
        procs.pg_master,
        std::process::id()
    );
    println!("workflow source      workflows/src/*.rs as built into this binary");

    let mut rows = Vec::new();
    for (i, &n) in ns.iter().enumerate() {
        println!("\n-- N = {n}  (load {})", loadavg());
        let (bare, bare_shape) = bare_phase(&sh, n, i as u64 + 1).await;
        let (renew, renew_shape) = renewal_phase(&sh, n).await;
        for (label, r) in [("bare", &bare), ("renewal", &renew)] {
            println!(
                "  {label:<8} N={n}: {}/{} done; after T: first {:.2} s, p10 {:.2}, p50 {:.2}, p90 {:.2}, last {:.2} s -> {:.1}/s (p10-p90 {:.1}/s); load {}",
                r.completed,
                r.n,
                r.progress.quantile(0.0),
                r.progress.quantile(0.1),
                r.progress.quantile(0.5),
                r.progress.quantile(0.9),
                r.progress.at.last().copied().unwrap_or(f64::NAN),
                r.rate(),
                r.mid_rate(),
                r.load_during
            );
            for p in r.problems.iter().take(5) {
                println!("    problem: {p}");
            }
        }
        println!("  histories, mean per workflow, from the due TimerFired on:");
        if let Some((k, s)) = &bare_shape {
            print_shape("bare", *k, s);
        }
        if let Some((k, s)) = &renew_shape {
            print_shape("renewal", *k, s);
        }
        rows.push((n, bare, renew, bare_shape, renew_shape));
    }

    println!("\nsummary (rate = N / time from the common due instant T to the N-th completion)");
    println!(
        "{:>6} | {:>10} {:>10} | {:>9} {:>9} | {:>6} | {:>9} {:>9} | CPU ms per renewal (temporal + postgres + bench process) | CPU ms per bare workflow",
        "N", "bare/s", "renew/s", "bare ms", "renew ms", "ratio", "p10-90 b", "p10-90 r"
    );
    for (n, b, r, _, _) in &rows {
        let per = |x: &PhaseResult| {
            let k = x.completed.max(1) as f64;
            format!(
                "{:.1} + {:.1} + {:.1} = {:.1}",
                x.cpu.0 * 1e3 / k,
                x.cpu.1 * 1e3 / k,
                x.cpu.2 * 1e3 / k,
                (x.cpu.0 + x.cpu.1 + x.cpu.2) * 1e3 / k
            )
        };
        println!(
            "{:>6} | {:>10.1} {:>10.1} | {:>9.2} {:>9.2} | {:>6.2} | {:>9.1} {:>9.1} | {} | {}",
            n,
            b.rate(),
            r.rate(),
            1e3 / b.rate(),
            1e3 / r.rate(),
            r.rate() / b.rate(),
            b.mid_rate(),
            r.mid_rate(),
            per(r),
            per(b)
        );
    }
    println!("(bare ms / renew ms: wall-clock time per completion at that rate; ratio = renewal rate / bare rate)");

    let mut verdict = "NOT MEASURED";
    if let Some((_, b, r, _, _)) = rows.iter().find(|row| row.0 == target_n) {
        let ratio = r.rate() / b.rate();
        verdict = if ratio >= 0.5 && r.completed == r.n {
            "PASS"
        } else {
            "MISS"
        };
        println!(
            "\ntarget at N = {target_n}: renewals {:.1}/s vs bare {:.1}/s = {:.2} of the bare rate (target >= 0.50) -> {verdict}",
            r.rate(),
            b.rate(),
            ratio
        );
    }
    let problems: usize = rows
        .iter()
        .map(|r| r.1.problems.len() + r.2.problems.len())
        .sum();
    println!(
        "verdict: throughput {verdict}, problems {problems}, load average now {}",
        loadavg()
    );

    let Shared { stand_ins, .. } = sh;
    stand_ins.stop();
    emulator.stop().await;
}
