//! Worker memory with many sleeping subscriptions (issue 5, "Performance"): target <= 200 MB RSS
//! with 10,000 subscriptions asleep until their next (monthly) renewal.
//!
//! Runs the real `billing-worker` binary as a separate process (so its RSS is clean: no API,
//! emulator or client in it) with the production default sticky cache
//! (`BILLING_MAX_CACHED_WORKFLOWS`, the worker's default 150 unless set), starts
//! `BENCH_MEMORY_N` (default 10,000) subscriptions on the monthly demo tariff through the starter
//! API (first payment paid), waits until all are asleep, and reads VmRSS / VmHWM from
//! /proc/PID/status. RSS is also sampled while the subscriptions are created.
//!
//! Then renewal churn: `BENCH_MEMORY_RENEWAL_ROUNDS` (default 2) rounds in which every
//! subscription renews once (its test clock advanced by 31 days over gRPC `AdvanceTestClock`; the
//! call answers when the renewal has run) and goes back to sleep. A worker that keeps anything
//! per renewal or per evicted workflow grows here; the RSS must stay where it was.
//!
//! Environment: TEMPORAL_ADDRESS, DATABASE_URL (scripts/bench.sh sets them); BENCH_MEMORY_N,
//! BENCH_CREATE_CONCURRENCY (default 32), BENCH_MEMORY_SETTLE_S (default 15),
//! BENCH_MEMORY_RENEWAL_ROUNDS (default 2), BILLING_RENEWALS_PER_RUN (as the starter API's),
//! BENCH_MEMORY_TERMINATE (default 1: terminate the subscriptions' workflows at the end),
//! BENCH_WORKER_WRAPPER (e.g. `heaptrack`: run the worker under a heap profiler; stop the worker
//! with SIGTERM afterwards, then `heaptrack_print -f heaptrack.billing-worker.*.zst --print-leaks 1`).

mod support;
use support::*;

use billing_domain::messages::BillingConfig;
use futures::StreamExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use temporalio_client::{UntypedWorkflow, WorkflowTerminateOptions};

/// (VmRSS, VmHWM) of `pid` in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main]
async fn main() {
    let n = env_usize("BENCH_MEMORY_N", 10_000);
    let concurrency = env_usize("BENCH_CREATE_CONCURRENCY", 32).max(1);
    let settle = env_usize("BENCH_MEMORY_SETTLE_S", 15);
    billing_platform::telemetry::init("warn");
    let temporal_address = std::env::var("TEMPORAL_ADDRESS")
        .expect("TEMPORAL_ADDRESS is not set: run scripts/bench.sh");
    std::env::var("DATABASE_URL").expect("DATABASE_URL is not set: run scripts/bench.sh");
    let cache = bench_max_cached();

    println!("== worker memory benchmark ==");
    println!(
        "date (UTC, unix s)   {}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    print_environment(&temporal_address);
    // test clocks on, for the renewal rounds
    let config = BillingConfig {
        test_clock: true,
        ..bench_billing_config()
    };
    println!(
        "renewals per run     {} (continue-as-new after that many)",
        config.renewals_per_run
    );
    println!("subscriptions        {n} on basic-monthly (asleep until next month), {concurrency} concurrent clients");
    println!(
        "worker               {} as a separate process, BILLING_MAX_CACHED_WORKFLOWS {cache}",
        env!("CARGO_BIN_EXE_billing-worker")
    );

    let (database_url, store) = billing_test_support::fresh_db()
        .await
        .expect("fresh database");
    store.seed_demo_tariffs().await.expect("seed tariffs");
    let mut es = gateway_emulator::Settings::for_tests();
    es.max_concurrent_per_terminal = 1000;
    let emulator = gateway_emulator::spawn(es).await.expect("emulator");
    let stand_ins = billing_stand_ins::spawn_local().await.expect("stand-ins");
    let task_queue = format!("bench-memory-{}", uuid::Uuid::new_v4().simple());

    // BENCH_WORKER_WRAPPER (e.g. `heaptrack`): run the worker under a profiler; the RSS figures
    // are then the wrapper's, not the worker's.
    let mut cmd = match std::env::var("BENCH_WORKER_WRAPPER") {
        Ok(w) if !w.is_empty() => {
            let mut c = std::process::Command::new(w);
            c.arg(env!("CARGO_BIN_EXE_billing-worker"));
            c
        }
        _ => std::process::Command::new(env!("CARGO_BIN_EXE_billing-worker")),
    };
    cmd.env("TEMPORAL_ADDRESS", &temporal_address)
        .env("BILLING_TASK_QUEUE", &task_queue)
        .env("DATABASE_URL", &database_url)
        .env("GATEWAY_URL", emulator.base_url())
        .env("ACCESS_URL", stand_ins.access_url())
        .env("NOTIFICATION_URL", stand_ins.notification_url())
        .env("RUST_LOG", "warn");
    let mut child = cmd.spawn().expect("spawn billing-worker");
    let pid = child.id();

    let api = Api::start(
        &temporal_address,
        &database_url,
        &task_queue,
        config,
        Duration::from_secs(60),
        &stand_ins,
    )
    .await;
    let grpc = api.grpc.clone();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle_rss, _) = rss_mib(pid);
    println!("\nworker pid {pid}: RSS at start (polling, no workflows) {idle_rss:.1} MiB");

    let t0 = Instant::now();
    let mut users = Vec::with_capacity(n);
    let mut problems = Vec::new();
    let mut stream = futures::stream::iter(0..n)
        .map(|_| start_paid(&grpc, "basic-monthly".into()))
        .buffer_unordered(concurrency);
    let step = (n / 10).max(1);
    while let Some(r) = stream.next().await {
        match r {
            Ok(u) => users.push(u),
            Err(e) => problems.push(e),
        }
        let done = users.len() + problems.len();
        if done % step == 0 {
            let (rss, hwm) = rss_mib(pid);
            println!(
                "  {done:>6} started in {:>6.1} s: worker RSS {rss:>6.1} MiB (peak {hwm:.1}), load {}",
                t0.elapsed().as_secs_f64(),
                loadavg()
            );
        }
    }
    drop(stream);
    let created_in = t0.elapsed().as_secs_f64();
    println!(
        "created {} paid subscriptions in {created_in:.1} s ({:.0}/s), {} problems",
        users.len(),
        users.len() as f64 / created_in,
        problems.len()
    );
    for p in problems.iter().take(5) {
        println!("  problem: {p}");
    }

    // All are asleep now (the first payment answered paid; the run then sleeps on its timer).
    tokio::time::sleep(Duration::from_secs(settle as u64)).await;
    let paid = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM invoices WHERE status = 'paid'")
        .fetch_one(store.pool())
        .await
        .unwrap_or(-1);
    let (rss, hwm) = rss_mib(pid);
    let alive = child.try_wait().ok().flatten().is_none();
    println!(
        "\nafter {settle} s of quiet: {paid} paid invoices in Postgres, worker alive: {alive}"
    );
    println!("worker RSS with {} sleeping subscriptions: {rss:.1} MiB (VmRSS), peak {hwm:.1} MiB (VmHWM)", users.len());
    let mb = rss * 1.048_576; // MiB -> MB (10^6 bytes)
    let hwm_mb = hwm * 1.048_576;
    let ok = users.len() == n && alive && mb <= 200.0;
    println!(
        "target: <= 200 MB RSS with {n} sleeping subscriptions: {mb:.1} MB (peak during creation {hwm_mb:.1} MB) -> {}",
        if ok { "PASS" } else { "MISS" }
    );

    let rounds = env_usize("BENCH_MEMORY_RENEWAL_ROUNDS", 2);
    if rounds > 0 && alive {
        println!(
            "\nrenewal churn: {rounds} round(s); each renews every subscription once (test clock +31 days)"
        );
        let before = rss;
        let mut last = rss;
        for round in 1..=rounds {
            let t = Instant::now();
            let failed = futures::stream::iter(users.iter())
                .map(|u| advance_clock(&grpc, u, 31 * 86_400))
                .buffer_unordered(concurrency)
                .filter_map(|r| std::future::ready(r.err()))
                .collect::<Vec<_>>()
                .await;
            let took = t.elapsed().as_secs_f64();
            tokio::time::sleep(Duration::from_secs(settle as u64)).await;
            let paid =
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM invoices WHERE status = 'paid'")
                    .fetch_one(store.pool())
                    .await
                    .unwrap_or(-1);
            let (rss, hwm) = rss_mib(pid);
            last = rss;
            println!(
                "  round {round}: {} renewals in {took:.1} s ({:.0}/s), {} failed, {paid} paid invoices; after {settle} s of quiet worker RSS {rss:.1} MiB (peak {hwm:.1})",
                users.len() - failed.len(),
                (users.len() - failed.len()) as f64 / took,
                failed.len()
            );
            for f in failed.iter().take(3) {
                println!("    failed: {f}");
            }
        }
        let renewals = (users.len() * rounds).max(1) as f64;
        let mb = last * 1.048_576;
        println!(
            "growth over {rounds} round(s) of renewals: {:+.1} MiB ({:+.2} KiB per renewal)",
            last - before,
            (last - before) * 1024.0 / renewals
        );
        println!(
            "target: <= 200 MB RSS with {n} sleeping subscriptions after {rounds} renewal round(s): {mb:.1} MB -> {}",
            if child.try_wait().ok().flatten().is_none() && mb <= 200.0 {
                "PASS"
            } else {
                "MISS"
            }
        );
    }

    let _ = child.kill();
    let _ = child.wait();
    if env_usize("BENCH_MEMORY_TERMINATE", 1) != 0 {
        let client = billing_platform::temporal::connect_to(&temporal_address, "default")
            .await
            .expect("temporal");
        let t = Instant::now();
        futures::stream::iter(users)
            .for_each_concurrent(64, |u| {
                let client = client.clone();
                async move {
                    let id = billing_domain::AccountId::parse(&u).unwrap().workflow_id();
                    let _ = client
                        .get_workflow_handle::<UntypedWorkflow>(id)
                        .terminate(
                            WorkflowTerminateOptions::builder()
                                .reason("benchmark over")
                                .build(),
                        )
                        .await;
                }
            })
            .await;
        println!(
            "terminated the subscriptions' workflows in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    api.stop().await;
    stand_ins.stop();
    emulator.stop().await;
}

/// Advances `user`'s subscription clock by `seconds` (test mode); answers once all that fell due
/// has run.
async fn advance_clock(
    grpc: &billing_stand_ins::BillingClient,
    user: &str,
    seconds: u64,
) -> Result<(), String> {
    let req = billing_proto::billing::v1::AdvanceTestClockRequest {
        subscription: Some(billing_proto::billing::v1::SubscriptionRef {
            subscription_id: String::new(),
            user_id: user.to_string(),
        }),
        seconds,
    };
    grpc.clone()
        .advance_test_clock(req)
        .await
        .map(|_| ())
        .map_err(|e| format!("{user}: {e}"))
}
