//! Replays recorded histories of real subscriptions against today's workflow code. A change
//! that would break running subscriptions (non-determinism) fails here. Fixtures are recorded by
//! `RECORD_HISTORIES=1 scripts/test.sh -p billing-worker` (see README) and committed; a
//! recorded history is never edited. `v1-activity-steps-*` were recorded before steps became
//! local activities (`billing_workflows::step`) and replay through the `local-steps` patch;
//! `v3-per-patch-*` were recorded before the patch baseline (`billing_workflows::patches`) and
//! replay through each patch's own marker; `v4-baseline-1-*` were recorded under the first
//! baseline, before the money-safety patch (charges as local activities, no reconciliation);
//! the un-prefixed ones are today's (baseline 2).

use billing_workflows::SubscriptionWorkflow;
use std::sync::Arc;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_interceptors::{WorkflowInterceptor, WorkflowInterceptorConstructor};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

/// A do-nothing workflow interceptor. The SDK builds one per workflow run and keeps it inside the
/// run's workflow context, so the clones of the shared `Arc` it holds count the contexts alive.
struct ContextProbe(#[allow(dead_code)] Arc<()>);

impl WorkflowInterceptor for ContextProbe {}

#[tokio::test]
async fn recorded_histories_replay_without_nondeterminism() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/histories exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected recorded histories in {dir:?}, found {files:?}"
    );
    // Both generations must stay covered: histories that ran steps as ordinary activities
    // (recorded before the `local-steps` patch, prefix `v1-activity-steps-`) and histories that
    // run them as local activities.
    let old = files
        .iter()
        .filter(|p| p.to_string_lossy().contains("v1-activity-steps-"))
        .count();
    assert!(
        old >= 3 && files.len() - old >= 3,
        "expected histories of both step kinds in {dir:?}, found {files:?}"
    );
    // And every patch generation: one marker per patch (`v3-per-patch-`), the first baseline
    // (`v4-baseline-1-`), and the current baseline (the un-prefixed recordings).
    let per_patch = files
        .iter()
        .filter(|p| p.to_string_lossy().contains("v3-per-patch-"))
        .count();
    let baseline_1 = files
        .iter()
        .filter(|p| p.to_string_lossy().contains("v4-baseline-1-"))
        .count();
    let current = files
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('v'))
        })
        .count();
    assert!(
        per_patch >= 3 && baseline_1 >= 3 && current >= 3,
        "expected per-patch, first-baseline and current histories in {dir:?}, found {files:?}"
    );
    let probe = Arc::new(());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let history =
            WorkflowHistory::from_json(&bytes).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        let p = probe.clone();
        let replayer = WorkflowReplayer::new(
            WorkflowReplayerOptions::new()
                .register_workflow::<SubscriptionWorkflow>()
                .expect("register")
                .workflow_interceptor(WorkflowInterceptorConstructor::new(move |_| {
                    ContextProbe(p.clone())
                }))
                .build(),
        )
        .expect("replayer");
        replayer
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("{file:?} no longer replays: {e:?}"));
    }
    // Every replayed run ended (completed, continued as new, or still sleeping on its timer when
    // the history ends): the replayer has evicted them all, so none may still be in memory.
    // A run kept alive after eviction is a worker memory leak (BENCHMARKS.md, "Worker memory").
    // (The constructors, which hold one clone each, went with their replayers.)
    assert_eq!(
        Arc::strong_count(&probe) - 1,
        0,
        "workflow contexts outlived their eviction"
    );
}
