//! Money safety under long failures (issue 13): one test per hole that cost real billing systems
//! money, each checked from the gateway emulator's ledger (the bank), not from billing's tables.
//!
//! 1. a workflow task that keeps failing after the charge, past the gateway's idempotency window;
//! 2. "not found" / "not final" read as "not charged" after an unknown outcome (a late bank);
//! 3. a store write refused for good after the money moved;
//! 4. cancel-now while the renewal charge is at the bank;
//! 5. gateway outages counted as the customer's failed attempts, with internal text in the
//!    user's notification;
//! 6. the charge retry window as a bound that holds.
//!
//! Real Temporal, Postgres, gateway emulator, gRPC stand-ins.

mod common;

use billing_domain::messages::{RepairAction, RepairRequest, SubscriptionView};
use billing_domain::SubscriptionId;
use billing_proto::billing::v1::start_subscription_response::Outcome;
use billing_proto::notification::v1::EventKind;
use common::*;
use gateway_emulator::cards;
use serde_json::json;
use std::time::Duration;
use temporalio_client::{WorkflowExecuteUpdateOptions, WorkflowExecutionStatus};

/// Default options with the gateway forgetting an `X-Request-ID` after `ttl`.
fn with_idempotency_ttl(ttl: Duration) -> Options {
    Options {
        emulator: Some(gateway_emulator::Settings {
            idempotency_ttl: ttl,
            ..gateway_emulator::Settings::for_tests()
        }),
        ..Options::default()
    }
}

/// The length of the first period (for advancing the test clock to the renewal).
async fn first_period(h: &Harness, user: &str) -> u64 {
    let v = h.subscription_of(user).await.unwrap();
    (secs(&v.current_period_end) - secs(&v.current_period_start)) as u64
}

/// The renewal invoice (the second) of `user`'s subscription.
async fn renewal_invoice(h: &Harness, sub: SubscriptionId) -> String {
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(invoices.len(), 2, "{invoices:?}");
    invoices[1].id.to_string()
}

/// Polls `user`'s view until `done` holds (up to `within`).
async fn wait_view(
    h: &Harness,
    user: &str,
    within: Duration,
    done: impl Fn(&billing_proto::billing::v1::Subscription) -> bool,
) -> billing_proto::billing::v1::Subscription {
    let deadline = std::time::Instant::now() + within;
    loop {
        // Not found yet is fine (the start may still be on its way).
        let v = h.subscription_of(user).await;
        if let Ok(v) = &v {
            if done(v) {
                return v.clone();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not reached within {within:?}: {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The emulator's fault rules not used up yet.
async fn active_faults(h: &Harness) -> Vec<serde_json::Value> {
    let rules = h.emulator_json("/_emulator/faults").await;
    rules.as_array().cloned().unwrap_or_default()
}

/// Moves `user`'s clock `seconds` forward on a task of its own (the call returns when the
/// renewal settled).
fn advance_in_background(
    h: &Harness,
    user: &str,
    seconds: u64,
) -> tokio::task::JoinHandle<
    Result<tonic::Response<billing_proto::billing::v1::Subscription>, tonic::Status>,
> {
    let grpc = h.grpc.clone();
    let user = user.to_string();
    tokio::spawn(async move {
        grpc.clone()
            .advance_test_clock(billing_proto::billing::v1::AdvanceTestClockRequest {
                subscription: r(&user),
                seconds,
            })
            .await
    })
}

/// Sends the operator's `repair` update.
async fn repair(
    handle: &temporalio_client::WorkflowHandle<
        temporalio_client::Client,
        billing_workflows::SubscriptionWorkflow,
    >,
    action: RepairAction,
    reason: &str,
) -> Result<SubscriptionView, temporalio_client::errors::WorkflowUpdateError> {
    handle
        .execute_update(
            billing_workflows::SubscriptionWorkflow::repair,
            RepairRequest {
                action,
                reason: reason.into(),
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
}

/// Notification texts `user` got: none may carry internal error text.
fn assert_user_texts_are_clean(h: &Harness, user: &str) {
    for e in h.stand_ins.recorder.events_for(user) {
        let m = e.message.to_lowercase();
        for internal in [
            "error",
            "timeout",
            "http",
            "/payments",
            "gateway",
            "unavailable",
        ] {
            assert!(
                !m.contains(internal),
                "a notification told the user internal text ({internal}): {:?}",
                e.message
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_failing_after_the_charge_past_the_idempotency_window_charges_once() {
    // The gateway forgets an X-Request-ID after 2 s; every workflow task fails for 3 s after a
    // charge answered (a bad deploy, a bug).
    let mut o = with_idempotency_ttl(Duration::from_secs(2));
    o.config.test_fail_tasks_after_charge = Duration::from_secs(3);
    let h = Harness::start(o).await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    let first = h.store.invoices_of(sub).await.unwrap()[0].id.to_string();
    assert_eq!(
        h.ledger(&first).await["completed_count"],
        1,
        "the first payment was charged once"
    );
    // And the renewal, by token.
    let month = first_period(&h, &user).await;
    let v = advance(&h, &user, month).await;
    assert_eq!((v.status.as_str(), v.renewals), ("active", 1), "{v:?}");
    let renewal = renewal_invoice(&h, sub).await;
    assert_eq!(
        h.ledger(&renewal).await["completed_count"],
        1,
        "the renewal was charged once"
    );
    assert_eq!(h.completed_charges().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_bank_is_waited_for_not_taken_as_not_charged() {
    let mut o = Options::default();
    o.config.charge_retry_window = Duration::from_secs(1);
    o.config.charge_attempt_timeout = Duration::from_millis(600);
    let h = Harness::start(o).await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    // The renewal's charge: no answer, committed 4 s later; until then the gateway knows nothing.
    h.add_fault(json!({"kind": "late_commit", "hold_ms": 400, "commit_after_ms": 4000, "count": 1, "paths": ["/payments/tokens/charge"]}))
        .await;
    let month = first_period(&h, &user).await;
    let v = advance(&h, &user, month).await;
    assert_eq!((v.status.as_str(), v.renewals), ("active", 1), "{v:?}");
    assert_eq!(v.failed_attempts, 0, "the late bank is not a decline");
    let renewal = renewal_invoice(&h, sub).await;
    assert_eq!(h.ledger(&renewal).await["completed_count"], 1);
    assert!(
        !kinds(&h, &user).contains(&EventKind::RenewalFailed),
        "{:?}",
        kinds(&h, &user)
    );
    // Nothing more is charged afterwards.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.completed_charges().await, 2);
    h.record_history(&user, "late_bank_reconciled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_still_settling_is_not_a_decline() {
    // The gateway forgets an X-Request-ID after 100 ms: a blind resend (the first retry comes
    // 500 ms later) is a new payment.
    let mut o = with_idempotency_ttl(Duration::from_millis(100));
    o.config.retry_initial_interval = Duration::from_millis(500);
    o.config.charge_retry_window = Duration::from_secs(1);
    let h = Harness::start(o).await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    // The renewal is committed but its answer is lost, and the gateway shows it as Authorized
    // (not final) for 3 s.
    h.add_fault(json!({"kind": "drop_response_after_commit", "count": 1, "paths": ["/payments/tokens/charge"]}))
        .await;
    h.add_fault(json!({"kind": "pending_in_find", "pending_ms": 3000, "count": 1, "paths": ["/payments/tokens/charge"]}))
        .await;
    let month = first_period(&h, &user).await;
    let v = advance(&h, &user, month).await;
    assert_eq!((v.status.as_str(), v.renewals), ("active", 1), "{v:?}");
    assert_eq!(v.failed_attempts, 0);
    let renewal = renewal_invoice(&h, sub).await;
    assert_eq!(h.ledger(&renewal).await["completed_count"], 1);
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(invoices[1].status, "paid");
    assert_eq!(h.completed_charges().await, 2, "charged once per period");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_ledger_write_after_the_charge_parks_the_subscription_for_repair() {
    let h = Harness::start(Options::default()).await;
    // The ledger refuses every new transaction (a constraint the data violates: a permanent
    // SQL error, SQLSTATE 23514), after the gateway has charged.
    sqlx::query("ALTER TABLE transactions ADD CONSTRAINT test_refuse_all CHECK (false) NOT VALID")
        .execute(h.store.pool())
        .await
        .unwrap();
    let user = new_user();
    let started = {
        let grpc = h.grpc.clone();
        let req = start_request(&user, cards::NO_3DS_SUCCESS, "req-park");
        tokio::spawn(async move { grpc.clone().start_subscription(req).await })
    };
    // Parked, not failed: the workflow runs, says why, and answers queries.
    let v = wait_view(&h, &user, Duration::from_secs(30), |v| {
        v.status == "needs_attention"
    })
    .await;
    assert!(v.attention.contains("record transaction"), "{v:?}");
    let handle = h.workflow_handle(&user).await;
    let d = handle
        .describe(temporalio_client::WorkflowDescribeOptions::default())
        .await
        .unwrap();
    assert_eq!(d.status(), WorkflowExecutionStatus::Running);
    assert_eq!(h.completed_charges().await, 1, "the card was charged");
    assert!(h.stand_ins.recorder.grants_for(&user).is_empty());
    // Repairs are validated: a reason is required; adopt/void are not for a failed step.
    let no_reason = repair(&handle, RepairAction::RetryStep, " ").await;
    assert!(no_reason.is_err(), "{no_reason:?}");
    let void = repair(&handle, RepairAction::VoidInvoice, "nothing was charged").await;
    assert!(void.is_err(), "{void:?}");
    // The operator fixes the data and asks for a retry: the payment is recorded, access granted.
    sqlx::query("ALTER TABLE transactions DROP CONSTRAINT test_refuse_all")
        .execute(h.store.pool())
        .await
        .unwrap();
    let repaired = repair(
        &handle,
        RepairAction::RetryStep,
        "dropped the bad constraint (ticket 42)",
    )
    .await
    .expect("repair");
    assert_ne!(repaired.status.as_str(), "needs_attention");
    let answer = started.await.unwrap().expect("start answered").into_inner();
    assert!(
        matches!(answer.outcome, Some(Outcome::Paid(_))),
        "{answer:?}"
    );
    let v = h.subscription_of(&user).await.unwrap();
    assert_eq!(v.status, "active");
    assert!(h.stand_ins.recorder.access_until(&user).is_some());
    assert_eq!(h.store.count("transactions").await.unwrap(), 1);
    assert_eq!(h.completed_charges().await, 1, "charged once");
    h.record_history(&user, "parked_then_repaired").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_now_during_a_paid_renewal_keeps_the_paid_period() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    h.add_fault(json!({"kind": "latency_ms", "latency_ms": 3000, "count": 1, "paths": ["/payments/tokens/charge"]}))
        .await;
    let month = first_period(&h, &user).await;
    let renewal = advance_in_background(&h, &user, month);
    // The charge is at the bank (the emulator holds it: its latency rule is used up).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !active_faults(&h).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the renewal never reached the bank"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = h.cancel_now(&user).await.expect("cancel");
    // The renewal went through: the user keeps the period they paid for, then it ends.
    assert_eq!(answer.status, "active", "{answer:?}");
    assert!(answer.cancel_at_period_end, "{answer:?}");
    assert!(answer.note.contains("stays active until"), "{answer:?}");
    assert_eq!(answer.renewals, 1);
    let _ = renewal.await;
    assert_eq!(
        h.stand_ins.recorder.access_until(&user),
        Some(secs(&answer.current_period_end)),
        "access until the end of the paid period"
    );
    let ev = h.stand_ins.recorder.events_for(&user);
    assert!(
        ev.iter()
            .any(|e| e.kind == EventKind::SubscriptionCancelled as i32
                && e.message.contains("stays active until")),
        "{ev:?}"
    );
    // At the period end it ends, and nothing more is charged.
    let len = (secs(&answer.current_period_end) - secs(&answer.current_period_start)) as u64;
    let v = advance(&h, &user, len).await;
    assert_eq!(v.status, "cancelled");
    assert_eq!(h.completed_charges().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_outage_is_not_the_customers_failed_attempt() {
    let mut o = Options::default();
    // The configured bound: after 3 s of 503 the renewal's outcome counts as unknown.
    o.config.charge_retry_window = Duration::from_secs(3);
    let h = Harness::start(o).await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    let outage =
        json!({"kind": "http_status", "status": 503, "paths": ["/payments/tokens/charge"]});
    h.add_fault(outage).await;
    let month = first_period(&h, &user).await;
    let renewal = advance_in_background(&h, &user, month);
    // The window holds: within a few seconds the renewal is reconciling, not charging forever.
    let v = wait_view(&h, &user, Duration::from_secs(12), |v| {
        v.payment_state == "reconciling"
    })
    .await;
    assert_eq!(
        v.failed_attempts, 0,
        "an outage is not a failed attempt: {v:?}"
    );
    assert_ne!(v.status, "past_due", "{v:?}");
    // Still waiting for the gateway a while later; nothing counted, nothing told.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let v = h.subscription_of(&user).await.unwrap();
    assert_eq!(v.failed_attempts, 0, "{v:?}");
    assert!(!kinds(&h, &user).contains(&EventKind::RenewalFailed));
    // The gateway recovers: the renewal is paid, once.
    h.http
        .delete(format!("{}/_emulator/faults", h.emulator.base_url()))
        .send()
        .await
        .unwrap();
    let v = wait_view(&h, &user, Duration::from_secs(20), |v| v.renewals == 1).await;
    assert_eq!(v.status, "active");
    let _ = renewal.await;
    assert_eq!(
        h.ledger(&renewal_invoice(&h, sub).await).await["completed_count"],
        1
    );
    assert_user_texts_are_clean(&h, &user);
}
