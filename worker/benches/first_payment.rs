//! First-payment latency benchmark (issue 3, "Performance").
//!
//! Measures, in one process and against one Temporal server:
//! - the engine's **floor**: a bare update-with-start of `FloorWorkflow` whose update handler runs
//!   ONE no-op local activity and returns (a worker of its own, on its own task queue);
//! - **StartSubscription**: the real path — gRPC to the starter API, update-with-start of
//!   `SubscriptionWorkflow`, first payment through the gateway emulator, Postgres, the stand-ins.
//!
//! Each is driven sequentially (`BENCH_N` calls, default 300) and with `BENCH_CONCURRENCY`
//! (default 32) closed-loop clients (`BENCH_N` rounded up to a multiple of the concurrency),
//! after `BENCH_WARMUP` (default 20) calls that are excluded from the statistics. Every
//! StartSubscription answer must be `paid`, and the emulator ledger must show exactly one
//! completed charge per call. A sample of workflow histories (`BENCH_HISTORY_SAMPLE`, default 40
//! per scenario) is decomposed into workflow-task, activity-dispatch and activity-execution time.
//! Diagnostics (`BENCH_DIAGNOSTICS=0` skips them): `ChainWorkflow` with 6 no-op normal / 6 no-op
//! local activities, i.e. the engine cost of the first-payment activity shape without its work.
//! CPU per call of the bench process, the Temporal server and PostgreSQL is read from `/proc`
//! (server pids in BENCH_TEMPORAL_PID / BENCH_PG_PID, set by `scripts/bench.sh`).
//! Both workers poll alike: the billing worker's workflow-task pollers and normal-queue share
//! (`BILLING_WORKFLOW_TASK_POLLERS`, `BILLING_NONSTICKY_POLL_RATIO`; defaults 32 and 0.5).
//! `BENCH_FLOOR_WFT_POLLERS=N` (diagnostics only) gives the floor worker N pollers instead.
//!
//! Needs TEMPORAL_ADDRESS and DATABASE_URL: run it through `scripts/bench.sh`.
//! Results and analysis: BENCHMARKS.md, "First payment".

mod support;
use support::*;

use billing_activities::gateway::GatewaySettings;
use billing_domain::messages::BillingConfig;
use billing_proto::billing::v1::start_subscription_response::Outcome;
use billing_worker::WorkerSettings;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use temporalio_client::{
    Client, WorkflowFetchHistoryOptions, WorkflowIdConflictPolicy, WorkflowUpdateWithStartOptions,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::{
    ActivityOptions, LocalActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
};

// ------------------------------------------------------------------------------------- floor

pub struct FloorActivities;

#[activities]
impl FloorActivities {
    /// Does nothing: the floor measures the engine, not the work.
    #[activity]
    pub async fn noop(_ctx: ActivityContext, x: u64) -> Result<u64, ActivityError> {
        Ok(x)
    }
}

/// The engine's floor: started by update-with-start; the update runs one no-op local activity
/// and answers; the run ends once the update handler finished.
#[workflow]
#[derive(Default)]
pub struct FloorWorkflow {
    done: bool,
}

#[workflow_methods]
impl FloorWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, _input: u64) -> WorkflowResult<()> {
        ctx.wait_condition(|s: &Self| s.done).await?;
        let handlers = ctx.clone();
        ctx.wait_condition(move |_| handlers.all_handlers_finished())
            .await?;
        Ok(())
    }

    #[update]
    pub async fn pay(ctx: &mut WorkflowContext<Self>, x: u64) -> u64 {
        let r = ctx
            .execute_local_activity(
                FloorActivities::noop,
                x,
                LocalActivityOptions::builder()
                    .start_to_close_timeout(Duration::from_secs(10))
                    .build(),
            )
            .await
            .unwrap_or(u64::MAX);
        ctx.state_mut(|s| s.done = true);
        r
    }
}

/// Diagnostics (not a target): the same update-with-start, but the update runs `local` no-op
/// local activities and then `normal` no-op (normal, server-dispatched) activities in sequence.
/// With `normal = 6` it has the activity shape of the first-payment path minus the real work, so
/// it separates engine round trips from activity work.
#[workflow]
#[derive(Default)]
pub struct ChainWorkflow {
    done: bool,
}

#[workflow_methods]
impl ChainWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, _input: u64) -> WorkflowResult<()> {
        ctx.wait_condition(|s: &Self| s.done).await?;
        let handlers = ctx.clone();
        ctx.wait_condition(move |_| handlers.all_handlers_finished())
            .await?;
        Ok(())
    }

    #[update]
    pub async fn pay(ctx: &mut WorkflowContext<Self>, shape: (u32, u32)) -> u64 {
        let (normal, local) = shape;
        let mut ok = 0u64;
        for i in 0..local {
            let r = ctx
                .execute_local_activity(
                    FloorActivities::noop,
                    u64::from(i),
                    LocalActivityOptions::builder()
                        .start_to_close_timeout(Duration::from_secs(10))
                        .build(),
                )
                .await;
            ok += u64::from(r.is_ok());
        }
        for i in 0..normal {
            let r = ctx
                .execute_activity(
                    FloorActivities::noop,
                    u64::from(i),
                    ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
                )
                .await;
            ok += u64::from(r.is_ok());
        }
        ctx.state_mut(|s| s.done = true);
        ok
    }
}

// ------------------------------------------------------------------------------------- calls

/// One measured call: client-side latency plus wall-clock send/receive instants (to line up with
/// history event times), the workflow id, and the invoice for the ledger check.
#[derive(Clone, Debug)]
struct Sample {
    latency: Duration,
    sent_ms: f64,
    received_ms: f64,
    workflow_id: String,
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}

#[derive(Clone)]
struct Ctx {
    temporal: Client,
    floor_tq: String,
    grpc: billing_stand_ins::BillingClient,
    /// Invoice ids of paid answers (ledger check).
    invoices: Arc<Mutex<Vec<String>>>,
    /// Problems (wrong answers, errors): any of them fails the bench.
    problems: Arc<Mutex<Vec<String>>>,
    calls: Arc<AtomicUsize>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Floor,
    StartSubscription,
    /// Diagnostics: `ChainWorkflow` with (normal, local) no-op activities.
    Chain(u32, u32),
}

impl Target {
    fn name(self) -> String {
        match self {
            Target::Floor => "floor (update-with-start + 1 no-op local activity)".into(),
            Target::StartSubscription => "StartSubscription (gRPC, first payment paid)".into(),
            Target::Chain(n, l) => {
                format!("update-with-start + {l} no-op local + {n} no-op normal activities")
            }
        }
    }
    fn short(self) -> String {
        match self {
            Target::Floor => "floor".into(),
            Target::StartSubscription => "StartSubscription".into(),
            Target::Chain(n, 0) => format!("engine: {n} normal act."),
            Target::Chain(0, l) => format!("engine: {l} local act."),
            Target::Chain(n, l) => format!("engine: {l} local+{n} normal"),
        }
    }
}

async fn call(ctx: &Ctx, target: Target) -> Option<Sample> {
    match target {
        Target::Floor => {
            let wf_id = format!("bench-floor-{}", uuid::Uuid::new_v4().simple());
            let opts = WorkflowUpdateWithStartOptions::new(
                ctx.floor_tq.clone(),
                wf_id.clone(),
                WorkflowIdConflictPolicy::UseExisting,
            )
            .update_id(uuid::Uuid::new_v4().to_string())
            .build();
            let sent_ms = wall_ms();
            let t0 = Instant::now();
            let r = ctx
                .temporal
                .execute_update_with_start_workflow(
                    FloorWorkflow::run,
                    0u64,
                    FloorWorkflow::pay,
                    7u64,
                    opts,
                )
                .await;
            let latency = t0.elapsed();
            let received_ms = wall_ms();
            match r {
                Ok(7) => Some(Sample {
                    latency,
                    sent_ms,
                    received_ms,
                    workflow_id: wf_id,
                }),
                Ok(other) => {
                    ctx.problems
                        .lock()
                        .unwrap()
                        .push(format!("floor {wf_id}: unexpected answer {other}"));
                    None
                }
                Err(e) => {
                    ctx.problems
                        .lock()
                        .unwrap()
                        .push(format!("floor {wf_id}: {e}"));
                    None
                }
            }
        }
        Target::Chain(normal, local) => {
            let wf_id = format!("bench-chain-{}", uuid::Uuid::new_v4().simple());
            let opts = WorkflowUpdateWithStartOptions::new(
                ctx.floor_tq.clone(),
                wf_id.clone(),
                WorkflowIdConflictPolicy::UseExisting,
            )
            .update_id(uuid::Uuid::new_v4().to_string())
            .build();
            let sent_ms = wall_ms();
            let t0 = Instant::now();
            let r = ctx
                .temporal
                .execute_update_with_start_workflow(
                    ChainWorkflow::run,
                    0u64,
                    ChainWorkflow::pay,
                    (normal, local),
                    opts,
                )
                .await;
            let latency = t0.elapsed();
            let received_ms = wall_ms();
            match r {
                Ok(k) if k == u64::from(normal + local) => Some(Sample {
                    latency,
                    sent_ms,
                    received_ms,
                    workflow_id: wf_id,
                }),
                Ok(other) => {
                    ctx.problems.lock().unwrap().push(format!(
                        "chain {wf_id}: {other} of {} activities succeeded",
                        normal + local
                    ));
                    None
                }
                Err(e) => {
                    ctx.problems
                        .lock()
                        .unwrap()
                        .push(format!("chain {wf_id}: {e}"));
                    None
                }
            }
        }
        Target::StartSubscription => {
            let user = uuid::Uuid::new_v4().to_string();
            let req = paid_start_request(&user, "basic-monthly".into());
            let wf_id = billing_domain::AccountId::parse(&user)
                .expect("uuid account")
                .workflow_id();
            ctx.calls.fetch_add(1, Ordering::Relaxed);
            let sent_ms = wall_ms();
            let t0 = Instant::now();
            let r = ctx.grpc.clone().start_subscription(req).await;
            let latency = t0.elapsed();
            let received_ms = wall_ms();
            match r.map(|r| r.into_inner().outcome) {
                Ok(Some(Outcome::Paid(p))) => {
                    ctx.invoices.lock().unwrap().push(p.invoice_id);
                    Some(Sample {
                        latency,
                        sent_ms,
                        received_ms,
                        workflow_id: wf_id,
                    })
                }
                Ok(other) => {
                    ctx.problems.lock().unwrap().push(format!(
                        "StartSubscription {user}: expected paid, got {other:?}"
                    ));
                    None
                }
                Err(e) => {
                    ctx.problems
                        .lock()
                        .unwrap()
                        .push(format!("StartSubscription {user}: {e}"));
                    None
                }
            }
        }
    }
}

struct Run {
    label: String,
    target: Target,
    samples: Vec<Sample>,
    wall: Duration,
    /// CPU used during the run, ms: (bench process, Temporal server, PostgreSQL).
    cpu: (f64, f64, f64),
}

async fn sequential(ctx: &Ctx, target: Target, n: usize) -> Run {
    let cpu0 = cpu_snapshot();
    let t0 = Instant::now();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        if let Some(s) = call(ctx, target).await {
            samples.push(s);
        }
    }
    Run {
        label: format!("{} sequential", target.short()),
        target,
        samples,
        wall: t0.elapsed(),
        cpu: cpu_delta(cpu0, cpu_snapshot()),
    }
}

async fn concurrent(ctx: &Ctx, target: Target, n: usize, concurrency: usize) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_snapshot();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let ctx = ctx.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                if let Some(s) = call(&ctx, target).await {
                    mine.push(s);
                }
            }
            mine
        }));
    }
    let mut samples = Vec::with_capacity(n);
    for t in tasks {
        samples.extend(t.await.expect("client task"));
    }
    Run {
        label: format!("{} concurrent-{concurrency}", target.short()),
        target,
        samples,
        wall: t0.elapsed(),
        cpu: cpu_delta(cpu0, cpu_snapshot()),
    }
}

async fn warm_up(ctx: &Ctx, target: Target, n: usize) {
    for _ in 0..n / 2 {
        call(ctx, target).await;
    }
    let tasks: Vec<_> = (0..n - n / 2)
        .map(|_| {
            let ctx = ctx.clone();
            tokio::spawn(async move { call(&ctx, target).await })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

// ------------------------------------------------------------------------------------- stats

#[derive(Clone, Copy)]
struct Stats {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
    throughput: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest-rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn stats(run: &Run) -> Stats {
    let mut ms: Vec<f64> = run
        .samples
        .iter()
        .map(|s| s.latency.as_secs_f64() * 1e3)
        .collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stats {
        n: ms.len(),
        p50: percentile(&ms, 50.0),
        p90: percentile(&ms, 90.0),
        p99: percentile(&ms, 99.0),
        max: ms.last().copied().unwrap_or(f64::NAN),
        mean: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
        throughput: ms.len() as f64 / run.wall.as_secs_f64(),
    }
}

fn print_table(runs: &[Run]) {
    println!(
        "| {:<34} | {:>4} | {:>7} | {:>7} | {:>7} | {:>7} | {:>7} | {:>8} |",
        "scenario", "n", "p50", "p90", "p99", "max", "mean", "calls/s"
    );
    println!(
        "|{:-<36}|{:->6}|{:->9}|{:->9}|{:->9}|{:->9}|{:->9}|{:->10}|",
        "", "", "", "", "", "", "", ""
    );
    for r in runs {
        let s = stats(r);
        println!(
            "| {:<34} | {:>4} | {:>7.1} | {:>7.1} | {:>7.1} | {:>7.1} | {:>7.1} | {:>8.1} |",
            r.label, s.n, s.p50, s.p90, s.p99, s.max, s.mean, s.throughput
        );
    }
}

// --------------------------------------------------------------------------- history breakdown

/// Where the time of one call went, from its workflow history (server event times, ms).
#[derive(Default, Clone)]
struct Breakdown {
    /// Client send -> WorkflowExecutionStarted (API work + gRPC + Temporal accepting the start).
    before_start: f64,
    /// WorkflowExecutionStarted -> WorkflowExecutionUpdateCompleted.
    server_span: f64,
    /// UpdateCompleted -> client has the answer.
    after_update: f64,
    wft_count: f64,
    /// WorkflowTaskScheduled -> Started, summed.
    wft_dispatch: f64,
    /// WorkflowTaskStarted -> Completed, summed (worker processing + respond RPC).
    wft_run: f64,
    /// Per activity type: (count, scheduled->started, started->completed).
    activities: Vec<(String, f64, f64, f64)>,
    markers: f64,
}

fn event_ms(e: &HistoryEvent) -> f64 {
    e.event_time
        .as_ref()
        .map(|t| t.seconds as f64 * 1e3 + t.nanos as f64 / 1e6)
        .unwrap_or(f64::NAN)
}

fn breakdown(events: &[HistoryEvent], sample: &Sample) -> Option<Breakdown> {
    let mut b = Breakdown::default();
    let mut time: HashMap<i64, f64> = HashMap::new();
    let mut act_name: HashMap<i64, String> = HashMap::new();
    let mut acts: Vec<(String, f64, f64, f64)> = Vec::new();
    let mut started = None;
    let mut done = None;
    for e in events {
        let t = event_ms(e);
        time.insert(e.event_id, t);
        let Ok(kind) = EventType::try_from(e.event_type) else {
            continue;
        };
        match (kind, e.attributes.as_ref()) {
            (EventType::WorkflowExecutionStarted, _) => started = Some(t),
            (
                EventType::WorkflowTaskStarted,
                Some(Attributes::WorkflowTaskStartedEventAttributes(a)),
            ) => {
                b.wft_count += 1.0;
                b.wft_dispatch += t - time.get(&a.scheduled_event_id).copied().unwrap_or(t);
            }
            (
                EventType::WorkflowTaskCompleted,
                Some(Attributes::WorkflowTaskCompletedEventAttributes(a)),
            ) => {
                b.wft_run += t - time.get(&a.started_event_id).copied().unwrap_or(t);
            }
            (
                EventType::ActivityTaskScheduled,
                Some(Attributes::ActivityTaskScheduledEventAttributes(a)),
            ) => {
                act_name.insert(
                    e.event_id,
                    a.activity_type
                        .as_ref()
                        .map(|t| t.name.clone())
                        .unwrap_or_default(),
                );
            }
            (
                EventType::ActivityTaskStarted,
                Some(Attributes::ActivityTaskStartedEventAttributes(a)),
            ) => {
                let name = act_name
                    .get(&a.scheduled_event_id)
                    .cloned()
                    .unwrap_or_default();
                let sched = time.get(&a.scheduled_event_id).copied().unwrap_or(t);
                acts.push((name, 1.0, t - sched, 0.0));
            }
            (
                EventType::ActivityTaskCompleted,
                Some(Attributes::ActivityTaskCompletedEventAttributes(a)),
            ) => {
                let name = act_name
                    .get(&a.scheduled_event_id)
                    .cloned()
                    .unwrap_or_default();
                let st = time.get(&a.started_event_id).copied().unwrap_or(t);
                if let Some(x) = acts.iter_mut().rev().find(|x| x.0 == name) {
                    x.3 += t - st;
                }
            }
            (EventType::MarkerRecorded, _) => b.markers += 1.0,
            (EventType::WorkflowExecutionUpdateCompleted, _) => {
                done = Some(t);
                break;
            }
            _ => {}
        }
    }
    let (s, d) = (started?, done?);
    b.before_start = s - sample.sent_ms;
    b.server_span = d - s;
    b.after_update = sample.received_ms - d;
    b.activities = acts;
    Some(b)
}

async fn history_breakdown(temporal: &Client, run: &Run, sample_size: usize) -> Option<Breakdown> {
    if sample_size == 0 || run.samples.is_empty() {
        return None;
    }
    let step = (run.samples.len() / sample_size).max(1);
    let mut all = Vec::new();
    for s in run.samples.iter().step_by(step).take(sample_size) {
        let handle = temporal.get_workflow_handle::<FloorWorkflow>(s.workflow_id.clone());
        let events = match handle
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .into_events()
            .await
        {
            Ok(ev) => ev,
            Err(e) => {
                eprintln!("history of {}: {e}", s.workflow_id);
                continue;
            }
        };
        if let Some(b) = breakdown(&events, s) {
            all.push(b);
        }
    }
    if all.is_empty() {
        return None;
    }
    // Mean over the sample; activities keyed by type in first-seen order.
    let k = all.len() as f64;
    let mut m = Breakdown::default();
    let mut order: Vec<String> = Vec::new();
    let mut per: HashMap<String, (f64, f64, f64)> = HashMap::new();
    for b in &all {
        m.before_start += b.before_start / k;
        m.server_span += b.server_span / k;
        m.after_update += b.after_update / k;
        m.wft_count += b.wft_count / k;
        m.wft_dispatch += b.wft_dispatch / k;
        m.wft_run += b.wft_run / k;
        m.markers += b.markers / k;
        for (name, c, d, x) in &b.activities {
            if !per.contains_key(name) {
                order.push(name.clone());
            }
            let e = per.entry(name.clone()).or_default();
            e.0 += c / k;
            e.1 += d / k;
            e.2 += x / k;
        }
    }
    m.activities = order
        .into_iter()
        .map(|n| {
            let (c, d, x) = per[&n];
            (n, c, d, x)
        })
        .collect();
    Some(m)
}

fn print_breakdown(label: &str, samples: usize, b: &Breakdown, e2e_mean: f64) {
    println!("\n  {label}  (mean over {samples} sampled histories; client-observed mean {e2e_mean:.1} ms)");
    println!(
        "    client send -> WorkflowExecutionStarted        {:>7.1} ms",
        b.before_start
    );
    println!(
        "    Started -> UpdateCompleted (server span)       {:>7.1} ms",
        b.server_span
    );
    println!(
        "      workflow tasks: {:.1} per call, dispatch {:.1} ms, worker+respond {:.1} ms",
        b.wft_count, b.wft_dispatch, b.wft_run
    );
    let mut act_total = 0.0;
    for (name, c, d, x) in &b.activities {
        act_total += d + x;
        println!(
            "      activity {name:<22} x{c:.1}: dispatch {d:>5.1} ms, run+complete {x:>6.1} ms"
        );
    }
    if b.markers > 0.0 {
        println!("      local-activity markers: {:.1} per call", b.markers);
    }
    let other = b.server_span - b.wft_dispatch - b.wft_run - act_total;
    println!(
        "      other (server transitions between tasks)   {:>7.1} ms",
        other
    );
    println!(
        "    UpdateCompleted -> client has the answer       {:>7.1} ms",
        b.after_update
    );
}

// ------------------------------------------------------------------------------------- machine

/// utime+stime (+ reaped children) of one process, ms.
fn proc_cpu_ms(pid: &str, with_children: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3; utime/stime 14/15, cutime/cstime 16/17.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let ticks = num(14)
        + num(15)
        + if with_children {
            num(16) + num(17)
        } else {
            0.0
        };
    Some(ticks * 1000.0 / clk_tck())
}

fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A process and its direct children (PostgreSQL: the postmaster and its backends), ms.
fn tree_cpu_ms(root: &str) -> Option<f64> {
    let mut total = proc_cpu_ms(root, true)?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let ppid = stat[close + 2..].split_whitespace().nth(1).unwrap_or("");
        if ppid == root {
            total += proc_cpu_ms(&name, false).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// (bench process, Temporal server, PostgreSQL) CPU so far, ms; NaN where unknown. The server
/// pids come from scripts/bench.sh (BENCH_TEMPORAL_PID, BENCH_PG_PID).
fn cpu_snapshot() -> (f64, f64, f64) {
    let pid = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    (
        proc_cpu_ms("self", false).unwrap_or(f64::NAN),
        pid("BENCH_TEMPORAL_PID")
            .and_then(|p| proc_cpu_ms(&p, true))
            .unwrap_or(f64::NAN),
        pid("BENCH_PG_PID")
            .and_then(|p| tree_cpu_ms(&p))
            .unwrap_or(f64::NAN),
    )
}

fn cpu_delta(a: (f64, f64, f64), b: (f64, f64, f64)) -> (f64, f64, f64) {
    (b.0 - a.0, b.1 - a.1, b.2 - a.2)
}

fn print_cpu_table(runs: &[Run]) {
    println!(
        "| {:<34} | {:>12} | {:>12} | {:>12} | {:>12} | {:>14} |",
        "scenario", "bench proc.", "temporal", "postgres", "total", "max calls/s*"
    );
    println!(
        "|{:-<36}|{:->14}|{:->14}|{:->14}|{:->14}|{:->16}|",
        "", "", "", "", "", ""
    );
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    for r in runs {
        let n = r.samples.len().max(1) as f64;
        let (b, t, p) = r.cpu;
        let total = [b, t, p].iter().filter(|v| v.is_finite()).sum::<f64>();
        println!(
            "| {:<34} | {:>12.2} | {:>12.2} | {:>12.2} | {:>12.2} | {:>14.0} |",
            r.label,
            b / n,
            t / n,
            p / n,
            total / n,
            cores * 1000.0 / (total / n)
        );
    }
    println!("  * if the whole machine did nothing else: cores x 1000 / total CPU ms per call");
}

fn progress(what: &str) {
    eprintln!("[bench] {} {what}", chrono::Utc::now().format("%H:%M:%S"));
}

/// The floor worker, polling like the billing worker (its workflow-task pollers and
/// normal-queue share, `BILLING_WORKFLOW_TASK_POLLERS` / `BILLING_NONSTICKY_POLL_RATIO`), which is
/// what the targets compare against. `wft_pollers` (`BENCH_FLOOR_WFT_POLLERS`, diagnostics only)
/// overrides its pollers.
fn floor_worker(
    temporal_address: String,
    task_queue: String,
    wft_pollers: Option<usize>,
) -> BenchWorker {
    let pollers = wft_pollers.unwrap_or(bench_workflow_task_pollers());
    BenchWorker::spawn("floor-worker", temporal_address, move || {
        Ok(WorkerOptions::new(task_queue)
            .register_workflow::<FloorWorkflow>()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .register_workflow::<ChainWorkflow>()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .register_activities(FloorActivities)
            .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(pollers))
            .nonsticky_to_sticky_poll_ratio(bench_nonsticky_ratio())
            .build())
    })
}

// ------------------------------------------------------------------------------------- main

#[tokio::main]
async fn main() {
    let n = env_usize("BENCH_N", 300);
    let concurrency = env_usize("BENCH_CONCURRENCY", 32).max(1);
    let n_conc = n.div_ceil(concurrency) * concurrency;
    let warmup = env_usize("BENCH_WARMUP", 20);
    let history_sample = env_usize("BENCH_HISTORY_SAMPLE", 40);
    let diagnostics = env_usize("BENCH_DIAGNOSTICS", 1) != 0;
    billing_platform::telemetry::init("warn");

    let temporal_address = std::env::var("TEMPORAL_ADDRESS")
        .expect("TEMPORAL_ADDRESS is not set: run scripts/bench.sh");
    std::env::var("DATABASE_URL").expect("DATABASE_URL is not set: run scripts/bench.sh");

    println!("== first-payment benchmark ==");
    println!(
        "date                 {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    print_environment(&temporal_address);
    println!("calls                sequential {n}, concurrent {n_conc} ({concurrency} clients), warm-up {warmup} per target (excluded)");
    println!(
        "workflow pollers     {} per worker, {} of them on the normal queue (billing and floor worker)",
        bench_workflow_task_pollers(),
        bench_nonsticky_ratio()
    );

    // ---- the stack, as in worker/tests/common/mod.rs
    let (database_url, store) = billing_test_support::fresh_db()
        .await
        .expect("fresh database");
    store.seed_demo_tariffs().await.expect("seed tariffs");
    let emulator = gateway_emulator::spawn(gateway_emulator::Settings::for_tests())
        .await
        .expect("emulator");
    let stand_ins = billing_stand_ins::spawn_local().await.expect("stand-ins");
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let task_queue = format!("bench-billing-{run_id}");
    let floor_tq = format!("bench-floor-{run_id}");
    let billing = BillingConfig::default();
    let worker_settings = WorkerSettings {
        temporal: billing_platform::temporal::TemporalSettings::local(
            temporal_address.clone(),
            task_queue.clone(),
        ),
        database_url: database_url.clone(),
        gateway: GatewaySettings {
            base_url: emulator.base_url(),
            public_id: gateway_emulator::DEFAULT_PUBLIC_ID.into(),
            api_secret: gateway_emulator::DEFAULT_API_SECRET.to_string().into(),
            timeout: Duration::from_secs(20),
        },
        access_url: stand_ins.access_url(),
        notification_url: stand_ins.notification_url(),
        tuning: billing_worker::Tuning {
            max_cached_workflows: bench_max_cached(),
            ..bench_tuning()
        },
    };
    let api = Api::start(
        &temporal_address,
        &database_url,
        &task_queue,
        billing,
        Duration::from_secs(30),
        &stand_ins,
    )
    .await;
    let grpc = api.grpc.clone();
    let billing_worker =
        billing_worker::WorkerThread::spawn(worker_settings).expect("billing worker");
    let floor_pollers = std::env::var("BENCH_FLOOR_WFT_POLLERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(p) = floor_pollers {
        println!("NOTE                 floor worker: {p} workflow-task pollers (BENCH_FLOOR_WFT_POLLERS); billing worker: its own settings");
    }
    let floor_worker = floor_worker(temporal_address.clone(), floor_tq.clone(), floor_pollers);
    let temporal = billing_platform::temporal::connect_to(&temporal_address, "default")
        .await
        .expect("temporal client");

    let ctx = Ctx {
        temporal: temporal.clone(),
        floor_tq,
        grpc,
        invoices: Arc::new(Mutex::new(Vec::new())),
        problems: Arc::new(Mutex::new(Vec::new())),
        calls: Arc::new(AtomicUsize::new(0)),
    };

    // ---- warm-up (both targets), then the four measured runs
    let t_all = Instant::now();
    progress("warm-up");
    warm_up(&ctx, Target::Floor, warmup).await;
    warm_up(&ctx, Target::StartSubscription, warmup).await;
    let warm_problems = ctx.problems.lock().unwrap().len();
    // Floor and StartSubscription back to back per pattern, so both see the same background
    // load; the table groups them by target.
    progress("sequential: floor");
    let floor_seq = sequential(&ctx, Target::Floor, n).await;
    progress("sequential: StartSubscription");
    let sub_seq = sequential(&ctx, Target::StartSubscription, n).await;
    progress("concurrent: floor");
    let floor_conc = concurrent(&ctx, Target::Floor, n_conc, concurrency).await;
    progress("concurrent: StartSubscription");
    let sub_conc = concurrent(&ctx, Target::StartSubscription, n_conc, concurrency).await;
    let runs = vec![floor_seq, floor_conc, sub_seq, sub_conc];
    let measured_for = t_all.elapsed();
    let load_after = loadavg();

    // ---- diagnostics (not targets): the engine cost of the first-payment activity shape
    let mut diag = Vec::new();
    if diagnostics {
        for shape in [Target::Chain(6, 0), Target::Chain(0, 6)] {
            progress(&format!("diagnostics: {}", shape.short()));
            warm_up(&ctx, shape, warmup.min(10)).await;
            diag.push(sequential(&ctx, shape, n).await);
            diag.push(concurrent(&ctx, shape, n_conc, concurrency).await);
        }
    }

    // ---- results
    let st: Vec<Stats> = runs.iter().map(stats).collect();
    println!(
        "\nload average after  {load_after}   (measured part took {:.1} s)",
        measured_for.as_secs_f64()
    );
    println!("\nlatency per call, ms (client-observed, nearest-rank percentiles)");
    print_table(&runs);
    println!("\nCPU per call, ms (bench process = client + starter API + both workers + emulator + stand-ins)");
    print_cpu_table(&runs);

    println!("\ntargets: p50 <= 2x floor p50 (same pattern), p99 < 150 ms");
    let mut all_pass = true;
    let conc_label = format!("concurrent-{concurrency}");
    for (i, pattern) in [(0usize, "sequential"), (1usize, conc_label.as_str())] {
        let (floor, sub) = (&st[i], &st[i + 2]);
        let ratio = sub.p50 / floor.p50;
        let p50_ok = ratio <= 2.0;
        let p99_ok = sub.p99 < 150.0;
        all_pass &= p50_ok && p99_ok;
        println!(
            "  {pattern:<14} p50 {:.1} ms / floor p50 {:.1} ms = {:.2}x  -> {}   |   p99 {:.1} ms vs 150 ms -> {}",
            sub.p50,
            floor.p50,
            ratio,
            if p50_ok { "PASS" } else { "MISS" },
            sub.p99,
            if p99_ok { "PASS" } else { "MISS" }
        );
    }

    if !diag.is_empty() {
        println!("\ndiagnostics, not targets: the same update-with-start with the first path's activity count as no-ops");
        print_table(&diag);
        print_cpu_table(&diag);
    }

    // ---- where the time goes
    println!(
        "\nwhere the time goes (workflow histories; event times from the server, same host clock)"
    );
    for r in runs.iter().chain(&diag) {
        if let Some(b) = history_breakdown(&temporal, r, history_sample).await {
            let mean = stats(r).mean;
            print_breakdown(
                &format!("{} — {}", r.label, r.target.name()),
                history_sample.min(r.samples.len()),
                &b,
                mean,
            );
        }
    }

    // ---- correctness
    let problems = ctx.problems.lock().unwrap().clone();
    let invoices = ctx.invoices.lock().unwrap().clone();
    let calls = ctx.calls.load(Ordering::Relaxed);
    let ledger: Value = reqwest::Client::new()
        .get(format!("{}/_emulator/ledger", emulator.base_url()))
        .send()
        .await
        .expect("ledger")
        .json()
        .await
        .expect("ledger json");
    let entries = ledger.as_array().cloned().unwrap_or_default();
    let by_invoice: HashMap<String, i64> = entries
        .iter()
        .map(|e| {
            (
                e["invoice_id"].as_str().unwrap_or_default().to_string(),
                e["completed_count"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let total_completed: i64 = by_invoice.values().sum();
    let not_once: Vec<&String> = invoices
        .iter()
        .filter(|i| by_invoice.get(*i).copied() != Some(1))
        .collect();
    println!("\ncorrectness");
    println!("  StartSubscription calls {calls} (incl. warm-up), paid answers {}, problems {} (warm-up {warm_problems})", invoices.len(), problems.len());
    println!(
        "  emulator ledger: {} invoices, {} completed charges; paid invoices without exactly one completed charge: {}",
        by_invoice.len(),
        total_completed,
        not_once.len()
    );
    for p in problems.iter().take(10) {
        println!("  problem: {p}");
    }
    let correct = problems.is_empty()
        && invoices.len() == calls
        && total_completed == calls as i64
        && not_once.is_empty();
    println!(
        "  every answer paid, exactly one completed charge per call: {}",
        if correct { "OK" } else { "FAILED" }
    );
    println!(
        "\nverdict: targets {}, correctness {}",
        if all_pass { "PASS" } else { "MISS" },
        if correct { "OK" } else { "FAILED" }
    );

    // ---- shut down
    let _ = tokio::task::spawn_blocking(move || {
        let _ = billing_worker.stop();
        floor_worker.stop();
    })
    .await;
    api.stop().await;
    stand_ins.stop();
    emulator.stop().await;
    if !correct {
        std::process::exit(1);
    }
}
