//! The chaos run (issue 13, `scripts/chaos.sh`; a small one runs in the test suite): N
//! subscriptions through their first payment and several renewal waves (test clock) on two
//! `billing-worker` processes, while a schedule drawn from `CHAOS_SEED` SIGKILLs and restarts
//! the workers, restarts the Temporal dev server and PostgreSQL (a private stack of their own in
//! `.stack/chaos-<seed>`, so the rest of the suite is not disturbed), injects every gateway fault
//! at a rate (the emulator's dice seeded too), and fails workflow tasks after a share of the
//! charges for longer than the gateway's idempotency window (the test-only hook).
//!
//! Then it audits from the emulator's ledger (the bank), not from billing's tables: each invoice
//! has at most one completed charge; each completed charge is in billing's ledger with the same
//! amount and transaction id, on a paid invoice; every invoice billing calls paid was paid at
//! the bank; access matches the paid periods; no workflow failed. The last line it prints:
//! `chaos: seed S, N subscriptions, I invoices, P paid, 0 charged twice, 0 paid but unrecorded,
//! 0 recorded but unpaid, 0 failed workflows, F faults injected`; any problem fails the test.
//!
//! `CHAOS_N` (default 30 here, 300 from `scripts/chaos.sh`), `CHAOS_SEED` (default: random,
//! printed), `CHAOS_WAVES` (renewal waves, default 3). The seed fixes the schedule of restarts,
//! the cards, the fault rules and the emulator's dice; the interleaving of concurrent requests
//! is the machine's, so two runs of one seed are alike, not identical.

mod common;

use billing_proto::billing::v1::start_subscription_response::Outcome;
use billing_proto::billing::v1::{AdvanceTestClockRequest, Subscription};
use common::*;
use futures::StreamExt;
use gateway_emulator::cards;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::Code;

/// Calls in flight from the run's clients (the emulator allows 30 per terminal).
const CONCURRENCY: usize = 24;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// The private Temporal + PostgreSQL of the run (`scripts/services.sh`).
struct Stack {
    dir: PathBuf,
}

impl Stack {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh")
    }

    fn run(&self, cmd: &str) -> Result<String, String> {
        let out = Command::new("bash")
            .arg(Self::script())
            .arg(cmd)
            .arg(&self.dir)
            .env_remove("TEMPORAL_ADDRESS")
            .env_remove("DATABASE_URL")
            .env("TEMPORAL_HEADLESS", "1")
            .env("PG_FAST", "1")
            .output()
            .map_err(|e| format!("services.sh {cmd}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "services.sh {cmd} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts the stack; returns (TEMPORAL_ADDRESS, DATABASE_URL).
    fn start(dir: PathBuf) -> (Stack, String, String) {
        let stack = Stack { dir };
        let env = stack.run("start").expect("chaos stack");
        let var = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .map(|v| v.trim_matches('\'').to_string())
                .unwrap_or_else(|| panic!("{name} missing in {env}"))
        };
        let (t, d) = (var("TEMPORAL_ADDRESS"), var("DATABASE_URL"));
        (stack, t, d)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.run("stop");
    }
}

/// The two worker processes; a dead one (killed, or exited because Temporal was down when it
/// started) is started again by `keep_alive`.
struct Workers {
    command: Box<dyn Fn() -> Command + Send + Sync>,
    children: Mutex<[Option<Child>; 2]>,
}

impl Workers {
    fn spawn(&self, i: usize) {
        let child = (self.command)().spawn().expect("spawn billing-worker");
        self.children.lock().unwrap()[i] = Some(child);
    }

    fn kill(&self, i: usize) {
        if let Some(mut c) = self.children.lock().unwrap()[i].take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// Restarts every worker that is not running.
    fn keep_alive(&self) {
        for i in 0..2 {
            let dead = {
                let mut ch = self.children.lock().unwrap();
                match ch[i].as_mut() {
                    None => true,
                    Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                }
            };
            if dead {
                self.spawn(i);
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.kill(0);
        self.kill(1);
    }
}

/// The gateway faults, each at its rate (scaled by `CHAOS_FAULT_RATE_PERCENT`, default 100).
fn fault_rules(scale: f64) -> Vec<Value> {
    let charges = json!(["/payments/cards/charge", "/payments/tokens/charge"]);
    let p = |x: f64| (x * scale).clamp(0.0001, 1.0);
    vec![
        json!({"kind": "http_status", "status": 503, "probability": p(0.04)}),
        json!({"kind": "rate_limit", "probability": p(0.02)}),
        json!({"kind": "latency_ms", "latency_ms": 700, "probability": p(0.05)}),
        json!({"kind": "timeout", "hold_ms": 1500, "probability": p(0.02), "paths": charges}),
        json!({"kind": "drop_response_after_commit", "probability": p(0.04), "paths": charges}),
        json!({"kind": "late_commit", "hold_ms": 500, "commit_after_ms": 3000, "probability": p(0.02), "paths": charges}),
        json!({"kind": "pending_in_find", "pending_ms": 2000, "probability": p(0.05), "paths": charges}),
    ]
}

/// Retries a gRPC call through outages (Temporal or PostgreSQL restarting, a worker gone):
/// every request of the run is idempotent by its request id, or checked before it is repeated.
async fn through_outages<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match call().await {
            Ok(v) => return v,
            Err(s)
                if matches!(
                    s.code(),
                    Code::Unavailable
                        | Code::DeadlineExceeded
                        | Code::Internal
                        | Code::Unknown
                        | Code::Aborted
                        | Code::ResourceExhausted
                ) && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
            Err(s) => panic!("{what}: {s:?}"),
        }
    }
}

#[derive(Debug, Default)]
struct Audit {
    invoices: usize,
    paid: usize,
    charged_twice: usize,
    paid_but_unrecorded: usize,
    recorded_but_unpaid: usize,
    failed_workflows: usize,
    access_mismatches: usize,
    needs_attention: usize,
    details: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos() {
    let n = env_u64("CHAOS_N", 30) as usize;
    let waves = env_u64("CHAOS_WAVES", 3);
    let seed = env_u64("CHAOS_SEED", rand::random::<u32>() as u64);
    let scale = env_u64("CHAOS_FAULT_RATE_PERCENT", 100) as f64 / 100.0;
    let started = Instant::now();
    println!("chaos: seed {seed}, {n} subscriptions, {waves} renewal waves");
    let mut rng = StdRng::seed_from_u64(seed);

    // The private stack; the harness reads its addresses from the environment. This binary has
    // no other test, and nothing has read these variables yet.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../.stack/chaos-{seed}"));
    let _ = std::fs::remove_dir_all(&dir);
    let (stack, temporal, database) = Stack::start(dir);
    std::env::set_var("TEMPORAL_ADDRESS", &temporal);
    std::env::set_var("DATABASE_URL", &database);
    let stack = Arc::new(stack);

    let mut o = Options {
        emulator: Some(gateway_emulator::Settings {
            // The gateway forgets an X-Request-ID after 2 s; the hook below fails tasks for 3 s.
            idempotency_ttl: Duration::from_secs(2),
            fault_seed: Some(seed),
            ..gateway_emulator::Settings::for_tests()
        }),
        worker_in_process: false,
        start_timeout: Duration::from_secs(60),
        ..Options::default()
    };
    o.config.test_fail_tasks_after_charge = Duration::from_secs(3);
    o.config.test_fail_tasks_after_charge_percent = 5;
    // Outages (a Temporal restart, a PostgreSQL restart) are waited out, not parked.
    o.config.reconcile_window = Duration::from_secs(300);
    o.config.charge_retry_window = Duration::from_secs(30);
    o.config.renewals_per_run = 2;
    let mut h = Harness::start(o).await;
    let first = h.worker_process.take();
    let workers = {
        let h_cmd = {
            let base = h.worker_command();
            let program = base.get_program().to_owned();
            let envs: Vec<_> = base
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
                .collect();
            move || {
                let mut c = Command::new(&program);
                c.envs(envs.iter().map(|(k, v)| (k, v)));
                c
            }
        };
        Arc::new(Workers {
            command: Box::new(h_cmd),
            children: Mutex::new([first, None]),
        })
    };
    workers.spawn(1);

    for rule in fault_rules(scale) {
        h.add_fault(rule).await;
    }

    // The schedule of process faults, drawn now so the seed fixes it.
    let process_faults = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let chaos = {
        let mut plan: Vec<(u64, u8)> = Vec::new();
        // The first three events are one of each, so even a short run sees them all.
        for kind in [0u8, 2, 1] {
            plan.push((rng.gen_range(1500..4000), kind));
        }
        for _ in 0..10_000 {
            let kind = match rng.gen_range(0..100) {
                0..=64 => 0,  // SIGKILL a worker
                65..=79 => 1, // restart Temporal
                80..=94 => 2, // restart PostgreSQL
                _ => 3,       // nothing
            };
            plan.push((rng.gen_range(2000..6000), kind));
        }
        let which: Vec<usize> = (0..plan.len()).map(|_| rng.gen_range(0..2)).collect();
        let pause: Vec<u64> = (0..plan.len()).map(|_| rng.gen_range(200..2000)).collect();
        let (workers, stack, stop, count) = (
            workers.clone(),
            stack.clone(),
            stop.clone(),
            process_faults.clone(),
        );
        tokio::spawn(async move {
            let mut last_service_restart = Instant::now();
            for (i, (wait, kind)) in plan.into_iter().enumerate() {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                if stop.load(Ordering::Acquire) {
                    break;
                }
                workers.keep_alive();
                let at = started.elapsed().as_secs_f32();
                match kind {
                    0 => {
                        println!("chaos: {at:.1}s: SIGKILL worker {}", which[i] + 1);
                        workers.kill(which[i]);
                        tokio::time::sleep(Duration::from_millis(pause[i])).await;
                        workers.spawn(which[i]);
                    }
                    // At most one service restart per 20 s, so that the run makes progress.
                    1 | 2 if last_service_restart.elapsed() >= Duration::from_secs(20) || i < 3 => {
                        let what = if kind == 1 {
                            "restart-temporal"
                        } else {
                            "restart-postgres"
                        };
                        println!("chaos: {at:.1}s: {what}");
                        let stack = stack.clone();
                        let r = tokio::task::spawn_blocking(move || stack.run(what))
                            .await
                            .unwrap();
                        if let Err(e) = r {
                            panic!("{e}");
                        }
                        last_service_restart = Instant::now();
                    }
                    _ => continue,
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // First payments: 85% good cards, 10% cards whose renewals decline (dunning), 5% declined.
    let users: Vec<(String, &'static str)> = (0..n)
        .map(|_| {
            let user = uuid::Builder::from_random_bytes(rng.gen())
                .into_uuid()
                .to_string();
            let card = match rng.gen_range(0..100) {
                0..=84 => cards::NO_3DS_SUCCESS,
                85..=94 => cards::SUCCESS_THEN_TOKEN_DECLINE,
                _ => cards::DECLINE_INSUFFICIENT,
            };
            (user, card)
        })
        .collect();
    let grpc = h.grpc.clone();
    let outcomes: Vec<Option<Outcome>> = futures::stream::iter(users.iter().cloned())
        .map(|(user, card)| {
            let grpc = grpc.clone();
            async move {
                let req = start_request(&user, card, &format!("chaos-{user}"));
                through_outages("start", || {
                    let (mut g, r) = (grpc.clone(), req.clone());
                    async move { g.start_subscription(r).await.map(|r| r.into_inner()) }
                })
                .await
                .outcome
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let paid_first = outcomes
        .iter()
        .filter(|o| matches!(o, Some(Outcome::Paid(_))))
        .count();
    println!(
        "chaos: {paid_first} of {n} first payments paid after {:?}",
        started.elapsed()
    );

    // Renewal waves: every live subscription one period forward.
    for wave in 1..=waves {
        let views = all_views(&h, &users).await;
        let live: Vec<_> = users
            .iter()
            .zip(views)
            .filter(|(_, v)| matches!(v.status.as_str(), "active" | "past_due" | "suspended"))
            .map(|((u, _), v)| (u.clone(), v))
            .collect();
        futures::stream::iter(live.iter().cloned())
            .map(|(user, before)| {
                let grpc = grpc.clone();
                async move { advance_once(grpc, &user, &before).await }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        println!(
            "chaos: wave {wave}: {} subscriptions moved one period, after {:?}",
            live.len(),
            started.elapsed()
        );
    }

    // Faults off, everything up, and every subscription settled.
    stop.store(true, Ordering::Release);
    let _ = chaos.await;
    h.http
        .delete(format!("{}/_emulator/faults", h.emulator.base_url()))
        .send()
        .await
        .unwrap();
    workers.keep_alive();
    let settled_by = Instant::now() + Duration::from_secs(300);
    let views = loop {
        let views = all_views(&h, &users).await;
        let busy = views
            .iter()
            .filter(|v| matches!(v.payment_state.as_str(), "charging" | "reconciling"))
            .count();
        if busy == 0 || Instant::now() > settled_by {
            break views;
        }
        workers.keep_alive();
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let health = h.emulator_json("/_emulator/health").await;
    // Restarts and kills, and the requests the emulator's rules applied to. (The test hook's
    // failed tasks are not counted: the workers keep no tally a test can read.)
    let faults =
        process_faults.load(Ordering::Relaxed) + health["faults_applied"].as_u64().unwrap_or(0);

    let audit = audit(&h, &users, &views).await;
    for d in audit.details.iter().take(40) {
        println!("chaos: problem: {d}");
    }
    println!(
        "chaos: {} access mismatches, {} needing attention, {:?} in all",
        audit.access_mismatches,
        audit.needs_attention,
        started.elapsed()
    );
    println!(
        "chaos: seed {seed}, {n} subscriptions, {} invoices, {} paid, {} charged twice, {} paid but unrecorded, {} recorded but unpaid, {} failed workflows, {faults} faults injected",
        audit.invoices,
        audit.paid,
        audit.charged_twice,
        audit.paid_but_unrecorded,
        audit.recorded_but_unpaid,
        audit.failed_workflows,
    );
    let problems = audit.charged_twice
        + audit.paid_but_unrecorded
        + audit.recorded_but_unpaid
        + audit.failed_workflows
        + audit.access_mismatches
        + audit.needs_attention;
    drop(workers);
    drop(h);
    assert_eq!(problems, 0, "chaos found problems (seed {seed}): {audit:?}");
    drop(stack);
}

/// Every user's view (through outages).
async fn all_views(h: &Harness, users: &[(String, &'static str)]) -> Vec<Subscription> {
    let grpc = h.grpc.clone();
    futures::stream::iter(users.iter().map(|(u, _)| u.clone()))
        .map(|user| {
            let grpc = grpc.clone();
            async move {
                through_outages("get", || {
                    let mut g = grpc.clone();
                    let user = user.clone();
                    async move {
                        g.get_subscription(billing_proto::billing::v1::GetSubscriptionRequest {
                            user_id: user,
                            subscription_id: String::new(),
                        })
                        .await
                        .map(|r| r.into_inner())
                    }
                })
                .await
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await
}

/// Moves `user`'s clock one period forward, once: after a failed call it checks whether the
/// clock moved before asking again (an advance is not idempotent).
async fn advance_once(grpc: billing_stand_ins::BillingClient, user: &str, before: &Subscription) {
    let period = (secs(&before.current_period_end) - secs(&before.current_period_start)).max(1);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let answer = grpc
            .clone()
            .advance_test_clock(AdvanceTestClockRequest {
                subscription: r(user),
                seconds: period as u64,
            })
            .await;
        match answer {
            Ok(_) => return,
            Err(s) if s.code() == Code::FailedPrecondition => return, // ended meanwhile
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = grpc
                    .clone()
                    .get_subscription(billing_proto::billing::v1::GetSubscriptionRequest {
                        user_id: user.to_string(),
                        subscription_id: String::new(),
                    })
                    .await;
                if let Ok(v) = now {
                    let v = v.into_inner();
                    if v.renewals != before.renewals
                        || v.status != before.status
                        || v.next_charge_at != before.next_charge_at
                    {
                        return; // it moved
                    }
                }
            }
            Err(s) => panic!("advance {user}: {s:?}"),
        }
    }
}

async fn audit(h: &Harness, users: &[(String, &'static str)], views: &[Subscription]) -> Audit {
    let mut a = Audit::default();
    // The bank.
    let txns = h.emulator_json("/_emulator/transactions").await;
    let txns = txns.as_array().cloned().unwrap_or_default();
    let mut bank: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new(); // invoice -> (txn, minor)
    let mut bank_completed: BTreeMap<i64, (String, i64)> = BTreeMap::new();
    for t in &txns {
        if t["Status"] != "Completed" {
            continue;
        }
        let id = t["TransactionId"].as_i64().unwrap();
        let invoice = t["InvoiceId"].as_str().unwrap_or_default().to_lowercase();
        let minor = (t["Amount"].as_f64().unwrap() * 100.0).round() as i64;
        bank.entry(invoice.clone()).or_default().push((id, minor));
        bank_completed.insert(id, (invoice, minor));
    }
    // Billing's ledger.
    let rows: Vec<(i64, String, i64, String, String)> = sqlx::query_as(
        "SELECT t.gateway_transaction_id, t.invoice_id::text, t.amount_minor, t.status, i.status
           FROM transactions t JOIN invoices i ON i.id = t.invoice_id",
    )
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    let recorded: BTreeMap<i64, (String, i64, String, String)> = rows
        .into_iter()
        .map(|(id, inv, minor, st, ist)| (id, (inv, minor, st, ist)))
        .collect();
    let invoices: Vec<(String, String, chrono::DateTime<chrono::Utc>, String)> =
        sqlx::query_as("SELECT id::text, status, period_end, account_id::text FROM invoices")
            .fetch_all(h.store.pool())
            .await
            .unwrap();
    a.invoices = invoices.len();
    for (invoice, completed) in &bank {
        if completed.len() > 1 {
            a.charged_twice += 1;
            a.details.push(format!(
                "invoice {invoice} charged {} times",
                completed.len()
            ));
        }
    }
    for (id, (invoice, minor)) in &bank_completed {
        match recorded.get(id) {
            Some((inv, m, st, ist))
                if inv == invoice && m == minor && st == "Completed" && ist == "paid" => {}
            other => {
                a.paid_but_unrecorded += 1;
                a.details.push(format!(
                    "bank transaction {id} ({minor} on invoice {invoice}) recorded as {other:?}"
                ));
            }
        }
    }
    for (id, (inv, _, st, _)) in &recorded {
        if st == "Completed" && !bank_completed.contains_key(id) {
            a.recorded_but_unpaid += 1;
            a.details.push(format!(
                "billing recorded {id} on {inv} as completed; the bank did not"
            ));
        }
    }
    let mut paid_until: BTreeMap<String, i64> = BTreeMap::new();
    for (invoice, status, end, account) in &invoices {
        if status == "paid" {
            a.paid += 1;
            if !bank.contains_key(invoice) {
                a.recorded_but_unpaid += 1;
                a.details.push(format!(
                    "invoice {invoice} is paid in billing, not at the bank"
                ));
            }
            let e = paid_until.entry(account.clone()).or_insert(0);
            *e = (*e).max(end.timestamp());
        }
    }
    // Access follows the paid periods: an active subscription's user may watch until the end
    // of the last period paid at the bank; an ended or suspended one's may not.
    for ((user, _), v) in users.iter().zip(views) {
        let access = h.stand_ins.recorder.access_until(user);
        let paid = paid_until.get(user).copied();
        let ok = match v.status.as_str() {
            "active" => access.is_some() && access == paid,
            "cancelled" | "declined" | "expired" | "ended" | "suspended" => access.is_none(),
            "needs_attention" => {
                a.needs_attention += 1;
                a.details
                    .push(format!("{user} needs attention: {}", v.attention));
                true
            }
            _ => access.is_none() || access <= paid,
        };
        if !ok {
            a.access_mismatches += 1;
            a.details.push(format!(
                "{user} is {} (period end {}), access until {access:?}, paid until {paid:?}",
                v.status,
                secs(&v.current_period_end)
            ));
        }
    }
    // No workflow of the run failed.
    let client = billing_platform::temporal::connect_to(&temporal_address(), "default")
        .await
        .expect("temporal");
    let mut failed = client.list_workflows(
        format!(
            "TaskQueue = '{}' AND ExecutionStatus = 'Failed'",
            h.task_queue
        ),
        temporalio_client::WorkflowListOptions::default(),
    );
    let mut ids = BTreeSet::new();
    while let Some(r) = failed.next().await {
        ids.insert(r.expect("list workflows").id().to_string());
    }
    a.failed_workflows = ids.len();
    for id in ids {
        a.details.push(format!("workflow {id} failed"));
    }
    a
}
