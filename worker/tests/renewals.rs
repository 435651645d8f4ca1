//! Renewals, dunning, cancel and tariff change, driven by the per-subscription test clock.
//! Real Temporal, Postgres, gateway emulator, gRPC stand-ins.

mod common;

use billing_domain::SubscriptionId;
use billing_proto::billing::v1::{
    AdvanceTestClockRequest, CancelSubscriptionRequest, ChangeTariffRequest, SubscriptionRef,
};
use billing_proto::notification::v1::EventKind;
use chrono::{DateTime, Months, Utc};
use common::*;
use gateway_emulator::cards;
use serde_json::json;
use tonic::Code;

const DAY: u64 = 86_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_year_of_monthly_renewals_charges_each_period_once() {
    // Continue-as-new every 3 paid renewals: the year crosses 4 runs, each carrying the state.
    let mut o = Options::default();
    o.config.renewals_per_run = 3;
    let h = Harness::start(o).await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    let anchor: DateTime<Utc> = h.store.invoices_of(sub).await.unwrap()[0].period_start;
    let mut view = h.subscription_of(&user).await.unwrap();
    for month in 1..=12u32 {
        let len = (secs(&view.current_period_end) - secs(&view.current_period_start)) as u64;
        view = advance(&h, &user, len).await;
        assert_eq!(view.status, "active", "month {month}: {view:?}");
        assert_eq!(view.renewals, month);
        let expected_end = anchor.checked_add_months(Months::new(month + 1)).unwrap();
        assert_eq!(
            secs(&view.current_period_end),
            expected_end.timestamp(),
            "month {month}"
        );
        assert_eq!(
            h.stand_ins.recorder.access_until(&user),
            Some(expected_end.timestamp()),
            "access after month {month}"
        );
    }
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(invoices.len(), 13);
    for (i, inv) in invoices.iter().enumerate() {
        assert_eq!(inv.status, "paid", "invoice {i}");
        assert_eq!(
            inv.period_start,
            anchor.checked_add_months(Months::new(i as u32)).unwrap()
        );
        assert_eq!(
            h.ledger(&inv.id.to_string()).await["completed_count"],
            1,
            "invoice {i} charged once"
        );
    }
    assert_eq!(h.completed_charges().await, 13);
    // 12 paid renewals at 3 per run: four runs continued as new, each carrying the state the
    // assertions above read back (renewal count, period, access).
    assert_eq!(h.continued_runs(&user, 4).await, 4);
    // Code versions: the first run records one marker (the patch baseline) instead of one per
    // patch; the continued runs carry the baseline in their input and record none, so a renewal's
    // workflow task holds no patch marker and no `TemporalChangeVersion` upsert.
    let runs = h.run_ids_where(&user, "", 5).await;
    assert_eq!(runs.len(), 5, "{runs:?}");
    let mut markers = Vec::new();
    for run in &runs {
        markers.push(h.patch_markers(&user, Some(run.clone())).await);
    }
    markers.sort();
    let baseline = vec![billing_workflows::patches::BASELINE_PATCH.to_string()];
    assert_eq!(
        markers,
        vec![vec![], vec![], vec![], vec![], baseline],
        "patch markers per run"
    );
    let k = kinds(&h, &user);
    assert_eq!(
        k.iter()
            .filter(|k| **k == EventKind::RenewalSucceeded)
            .count(),
        12
    );
    // Cancel at period end so the fixture also holds an update and the end of the run.
    h.grpc
        .clone()
        .cancel_subscription(CancelSubscriptionRequest {
            subscription: r(&user),
            immediately: false,
        })
        .await
        .unwrap();
    h.record_history(&user, "continued_run_after_renewals")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_card_goes_through_every_dunning_step_and_ends_cancelled() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    // The official card that succeeds by cryptogram, then declines (5051) on token charges.
    let p = start_paid(&h, &user, cards::SUCCESS_THEN_TOKEN_DECLINE).await;
    let first_end = secs(&p.access_until);
    let month = {
        let v = advance(&h, &user, 1).await;
        (secs(&v.current_period_end) - secs(&v.current_period_start)) as u64 - 1
    };
    let v = advance(&h, &user, month).await;
    assert_eq!(v.status, "past_due");
    assert_eq!(v.failed_attempts, 1);
    assert_eq!(v.last_decline_code, 5051);
    // Access kept through the grace period (7 days by default).
    assert_eq!(
        h.stand_ins.recorder.access_until(&user),
        Some(first_end + 7 * DAY as i64)
    );
    let v = advance(&h, &user, DAY).await; // retry after 1 day
    assert_eq!(v.failed_attempts, 2);
    let v = advance(&h, &user, 2 * DAY).await; // after 3 days
    assert_eq!(v.failed_attempts, 3);
    let v = advance(&h, &user, 2 * DAY).await; // after 5 days: the last retry
    assert_eq!(v.failed_attempts, 4);
    assert_eq!(v.status, "past_due");
    // Grace over (7 days): suspended, access revoked, a week of suspension (the phases of
    // issue 13; before, suspension and cancellation came in the same instant).
    let v = advance(&h, &user, 2 * DAY).await;
    assert_eq!(v.status, "suspended", "{v:?}");
    assert_eq!(
        h.stand_ins.recorder.access_until(&user),
        None,
        "access revoked"
    );
    let v = advance(&h, &user, 6 * DAY).await;
    assert_eq!(v.status, "suspended", "{v:?}");
    let v = advance(&h, &user, DAY).await; // 14 days after the due date: cancelled
    assert_eq!(v.status, "cancelled", "{v:?}");
    assert_eq!(
        kinds(&h, &user),
        vec![
            EventKind::PaymentSucceeded,
            EventKind::RenewalFailed,
            EventKind::RenewalFailed,
            EventKind::RenewalFailed,
            EventKind::RenewalFailed,
            EventKind::AccessSuspended,
            EventKind::SubscriptionCancelled
        ]
    );
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(invoices.len(), 2);
    assert_eq!(invoices[1].status, "uncollectible");
    let ledger = h.ledger(&invoices[1].id.to_string()).await;
    assert_eq!(ledger["completed_count"], 0);
    assert_eq!(ledger["declined_count"], 4);
    assert_eq!(h.store.subscription(sub).await.unwrap().status, "cancelled");
    h.record_history(&user, "first_payment_dunning_cancelled")
        .await;
    // Nothing can be changed any more.
    let e = h.cancel_now(&user).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::FailedPrecondition | Code::NotFound),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recovery_inside_the_grace_period() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    h.add_fault(json!({"kind": "decline", "code": 5051, "count": 2, "scope": "card", "card": "3055", "paths": ["/payments/tokens/charge"]})).await;
    let v = advance(&h, &user, 1).await;
    let month = (secs(&v.current_period_end) - secs(&v.current_period_start)) as u64 - 1;
    assert_eq!(advance(&h, &user, month).await.status, "past_due");
    assert_eq!(advance(&h, &user, DAY).await.failed_attempts, 2);
    let v = advance(&h, &user, 2 * DAY).await;
    assert_eq!(v.status, "active", "{v:?}");
    assert_eq!(v.renewals, 1);
    assert_eq!(
        h.stand_ins.recorder.access_until(&user),
        Some(secs(&v.current_period_end))
    );
    assert_eq!(
        kinds(&h, &user),
        vec![
            EventKind::PaymentSucceeded,
            EventKind::RenewalFailed,
            EventKind::RenewalFailed,
            EventKind::RenewalSucceeded
        ]
    );
    assert_eq!(h.completed_charges().await, 2);
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    assert!(h
        .store
        .invoices_of(sub)
        .await
        .unwrap()
        .iter()
        .all(|i| i.status == "paid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hard_decline_skips_retries_and_ends_after_grace() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    h.add_fault(json!({"kind": "decline", "code": 5054, "scope": "card", "card": "3055", "paths": ["/payments/tokens/charge"]})).await;
    let v = advance(&h, &user, 1).await;
    let month = (secs(&v.current_period_end) - secs(&v.current_period_start)) as u64 - 1;
    let v = advance(&h, &user, month).await;
    assert_eq!((v.status.as_str(), v.last_decline_code), ("past_due", 5054));
    assert!(
        v.next_charge_at.is_none(),
        "no retry planned after a hard decline: {v:?}"
    );
    let v = advance(&h, &user, 6 * DAY).await;
    assert_eq!(v.failed_attempts, 1, "no retries");
    let v = advance(&h, &user, DAY).await;
    assert_eq!(v.status, "suspended", "the grace is over");
    assert_eq!(h.stand_ins.recorder.access_until(&user), None);
    let v = advance(&h, &user, 7 * DAY).await;
    assert_eq!(v.status, "cancelled", "14 days after the due date");
    assert_eq!(
        kinds(&h, &user),
        vec![
            EventKind::PaymentSucceeded,
            EventKind::RenewalFailed,
            EventKind::AccessSuspended,
            EventKind::SubscriptionCancelled
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_at_period_end_undo_and_cancel_now() {
    let h = Harness::start(Options::default()).await;
    // Cancel at period end: access kept until then, nothing charged afterwards.
    let alice = new_user();
    let p = start_paid(&h, &alice, cards::NO_3DS_SUCCESS).await;
    let v = h
        .grpc
        .clone()
        .cancel_subscription(CancelSubscriptionRequest {
            subscription: r(&alice),
            immediately: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v.cancel_at_period_end);
    assert_eq!(v.status, "active");
    assert!(v.next_charge_at.is_none());
    let until = secs(&p.access_until);
    assert_eq!(h.stand_ins.recorder.access_until(&alice), Some(until));
    let len = (secs(&v.current_period_end) - secs(&v.current_period_start)) as u64;
    let v = advance(&h, &alice, len).await;
    assert_eq!(v.status, "cancelled");
    assert_eq!(
        h.completed_charges().await,
        1,
        "no renewal charge after cancel"
    );
    assert_eq!(
        kinds(&h, &alice),
        vec![
            EventKind::PaymentSucceeded,
            EventKind::SubscriptionCancelled
        ]
    );

    // Undo: cancel, resume, the renewal happens.
    let bob = new_user();
    start_paid(&h, &bob, cards::MC_NO_3DS_SUCCESS).await;
    h.grpc
        .clone()
        .cancel_subscription(CancelSubscriptionRequest {
            subscription: r(&bob),
            immediately: false,
        })
        .await
        .unwrap();
    let v = h
        .grpc
        .clone()
        .resume_subscription(SubscriptionRef {
            subscription_id: String::new(),
            user_id: bob.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!v.cancel_at_period_end);
    let again = h
        .grpc
        .clone()
        .resume_subscription(SubscriptionRef {
            subscription_id: String::new(),
            user_id: bob.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let len = (secs(&v.current_period_end) - secs(&v.current_period_start)) as u64;
    let v = advance(&h, &bob, len).await;
    assert_eq!((v.status.as_str(), v.renewals), ("active", 1));
    assert_eq!(h.completed_charges().await, 3);

    // Cancel now: access revoked at once.
    let carol = new_user();
    start_paid(&h, &carol, cards::MIR_NO_3DS_SUCCESS).await;
    let v = h.cancel_now(&carol).await.unwrap();
    assert_eq!(v.status, "cancelled");
    assert_eq!(h.stand_ins.recorder.access_until(&carol), None);
    assert_eq!(
        kinds(&h, &carol),
        vec![
            EventKind::PaymentSucceeded,
            EventKind::SubscriptionCancelled
        ]
    );
    h.record_history(&carol, "first_payment_cancel_now").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tariff_change_applies_at_the_next_renewal() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    let change = |code: &str| ChangeTariffRequest {
        subscription: r(&user),
        tariff_code: code.to_string(),
    };
    assert_eq!(
        h.grpc
            .clone()
            .change_tariff(change("no-such-tariff"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        h.grpc
            .clone()
            .change_tariff(change("basic-monthly"))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    let v = h
        .grpc
        .clone()
        .change_tariff(change("premium-monthly"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (v.tariff_code.as_str(), v.pending_tariff_code.as_str()),
        ("basic-monthly", "premium-monthly")
    );
    let len = (secs(&v.current_period_end) - secs(&v.current_period_start)) as u64;
    let v = advance(&h, &user, len).await;
    assert_eq!(v.tariff_code, "premium-monthly");
    assert_eq!(v.price.unwrap().amount_minor, 59900);
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(
        invoices.iter().map(|i| i.amount.minor).collect::<Vec<_>>(),
        vec![29900, 59900]
    );
    assert_eq!(
        h.ledger(&invoices[1].id.to_string()).await["completed_amount_minor"],
        59900
    );
    assert_eq!(
        h.store.subscription(sub).await.unwrap().tariff_code,
        "premium-monthly"
    );
    // A run that renewed and goes on sleeping in the same run (renewals-per-run patch).
    h.record_history(&user, "tariff_change_renewed_same_run")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewal_response_dropped_after_commit_charges_once() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    h.add_fault(json!({"kind": "drop_response_after_commit", "count": 1, "paths": ["/payments/tokens/charge"]})).await;
    let v = advance(&h, &user, 1).await;
    let month = (secs(&v.current_period_end) - secs(&v.current_period_start)) as u64 - 1;
    let v = advance(&h, &user, month).await;
    assert_eq!((v.status.as_str(), v.renewals), ("active", 1));
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(
        h.ledger(&invoices[1].id.to_string()).await["completed_count"],
        1
    );
    assert_eq!(h.completed_charges().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_clock_is_refused_when_disabled() {
    let mut opts = Options::default();
    opts.config.test_clock = false;
    let h = Harness::start(opts).await;
    let user = new_user();
    start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    let e = h
        .grpc
        .clone()
        .advance_test_clock(AdvanceTestClockRequest {
            subscription: r(&user),
            seconds: 60,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("test clock"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_killed_mid_renewal_charges_once() {
    let mut h = Harness::start(Options {
        worker_in_process: false,
        ..Options::default()
    })
    .await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    let v = advance(&h, &user, 1).await;
    let month = (secs(&v.current_period_end) - secs(&v.current_period_start)) as u64 - 1;
    // Hold the renewal charge long enough to kill the worker while it is in flight.
    h.add_fault(json!({"kind": "latency_ms", "latency_ms": 3000, "count": 1, "paths": ["/payments/tokens/charge"]})).await;
    let grpc = h.grpc.clone();
    let u = user.clone();
    let call = tokio::spawn(async move {
        grpc.clone()
            .advance_test_clock(AdvanceTestClockRequest {
                subscription: r(&u),
                seconds: month,
            })
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    h.kill_worker_process();
    h.spawn_worker_process();
    let v = call
        .await
        .unwrap()
        .expect("the renewal completes after the restart")
        .into_inner();
    assert_eq!((v.status.as_str(), v.renewals), ("active", 1), "{v:?}");
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(invoices.len(), 2);
    assert_eq!(
        h.ledger(&invoices[1].id.to_string()).await["completed_count"],
        1
    );
    assert_eq!(h.completed_charges().await, 2);
    assert_eq!(
        kinds(&h, &user),
        vec![EventKind::PaymentSucceeded, EventKind::RenewalSucceeded]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_evicted_subscription_renews_through_the_normal_queue() {
    use temporalio_common::protos::temporal::api::enums::v1::TaskQueueKind;
    // A cache of one: starting bob evicts alice, and the worker releases her sticky queue, so her
    // renewal is dispatched on the normal queue with her whole history (one dispatch) instead of
    // to a sticky queue whose worker no longer holds her (BENCHMARKS.md, "Renewals").
    let o = Options {
        max_cached_workflows: 1,
        ..Options::default()
    };
    let h = Harness::start(o).await;
    let alice = new_user();
    let bob = new_user();
    let p = start_paid(&h, &alice, cards::NO_3DS_SUCCESS).await;
    start_paid(&h, &bob, cards::NO_3DS_SUCCESS).await;
    // The counter is per process: nextest (scripts/test.sh) runs each test in a process of its own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while billing_worker::sticky::released() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the evicted subscription's sticky queue was not released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before = h.workflow_task_queue_kinds(&alice).await.len();
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    let first = h.store.invoices_of(sub).await.unwrap()[0].clone();
    let period = (first.period_end - first.period_start).num_seconds() as u64;
    let view = advance(&h, &alice, period).await;
    assert_eq!((view.status.as_str(), view.renewals), ("active", 1));
    let kinds = h.workflow_task_queue_kinds(&alice).await;
    // The first task after the eviction goes to the normal queue. (The renewal's charge is an
    // ordinary activity since the money-safety patch; the task after it may go to this worker's
    // sticky queue: alice is in its cache again by then.)
    assert!(
        kinds.len() > before && kinds[before] == TaskQueueKind::Normal,
        "workflow tasks after the eviction went to: {:?}",
        &kinds[before..]
    );
    // And it renewed exactly once, with access until the end of the second period.
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(invoices.len(), 2);
    assert_eq!(invoices[1].period_start, first.period_end);
    assert_eq!(
        h.ledger(&invoices[1].id.to_string()).await["completed_count"],
        1
    );
    assert_eq!(
        h.stand_ins.recorder.access_until(&alice),
        Some(invoices[1].period_end.timestamp())
    );
}
