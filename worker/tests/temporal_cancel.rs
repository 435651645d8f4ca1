//! A Temporal cancellation request on one subscription: what the Web UI's "Request Cancellation"
//! button and `temporal workflow cancel` send. It means "cancel now" (README, "Operators"): the
//! subscription ends as cancelled, access is revoked, the open invoice is voided, the user is
//! notified, the database says so, the workflow closes as Canceled, and it still answers queries.
//! A step that is moving money is never interrupted: the cancellation waits for its outcome.
//! And the worker goes on billing everybody else.
//!
//! Real Temporal, Postgres, gateway emulator, gRPC stand-ins.

mod common;

use billing_domain::SubscriptionId;
use billing_proto::billing::v1::start_subscription_response::Outcome;
use billing_proto::billing::v1::CancelSubscriptionRequest;
use billing_proto::notification::v1::EventKind;
use common::*;
use gateway_emulator::cards;
use serde_json::json;
use std::time::Duration;
use temporalio_client::WorkflowExecutionStatus;
use tonic::Code;

/// How long a workflow may take to close after the request (it runs a handful of steps).
const CLOSE_WITHIN: Duration = Duration::from_secs(20);

/// What every cancelled subscription shows: the workflow closed as Canceled, the query still
/// answers `cancelled`, the database agrees, access is gone.
async fn assert_cancelled(h: &Harness, user: &str, subscription: SubscriptionId) {
    assert_eq!(
        h.closed_status(user, CLOSE_WITHIN).await,
        WorkflowExecutionStatus::Canceled
    );
    let view = h.subscription_of(user).await.expect("query after close");
    assert_eq!(view.status, "cancelled", "{view:?}");
    assert!(view.next_charge_at.is_none(), "{view:?}");
    assert_eq!(
        h.store.subscription(subscription).await.unwrap().status,
        "cancelled"
    );
    assert_eq!(
        h.stand_ins.recorder.access_until(user),
        None,
        "access revoked"
    );
    let again = h.cancel_now(user).await.unwrap_err();
    assert!(
        matches!(again.code(), Code::FailedPrecondition | Code::NotFound),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn temporal_cancellation_of_a_paid_subscription_cancels_it_now() {
    let h = Harness::start(Options::default()).await;
    let alice = new_user();
    let p = start_paid(&h, &alice, cards::NO_3DS_SUCCESS).await;
    let bob = new_user();
    start_paid(&h, &bob, cards::MIR_NO_3DS_SUCCESS).await;
    h.request_temporal_cancellation(&alice).await;
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    assert_cancelled(&h, &alice, sub).await;
    assert_eq!(
        kinds(&h, &alice),
        vec![
            EventKind::PaymentSucceeded,
            EventKind::SubscriptionCancelled
        ]
    );
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(invoices.len(), 1, "no renewal invoice opened");
    assert_eq!(invoices[0].status, "paid");
    h.record_history(&alice, "temporal_cancel_request_on_paid")
        .await;
    // Bob is untouched and the worker serves a newcomer.
    assert_eq!(h.subscription_of(&bob).await.unwrap().status, "active");
    a_new_subscription_is_paid(&h).await;
    assert_eq!(
        h.completed_charges().await,
        3,
        "one charge per first payment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn temporal_cancellation_in_dunning_voids_the_open_invoice() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::SUCCESS_THEN_TOKEN_DECLINE).await;
    let v = advance(&h, &user, 1).await;
    let month = (secs(&v.current_period_end) - secs(&v.current_period_start)) as u64 - 1;
    assert_eq!(advance(&h, &user, month).await.status, "past_due");
    h.request_temporal_cancellation(&user).await;
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    assert_cancelled(&h, &user, sub).await;
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(invoices.len(), 2);
    assert_eq!(invoices[1].status, "void", "the unpaid renewal is closed");
    assert_eq!(
        h.ledger(&invoices[1].id.to_string()).await["completed_count"],
        0
    );
    assert_eq!(
        kinds(&h, &user),
        vec![
            EventKind::PaymentSucceeded,
            EventKind::RenewalFailed,
            EventKind::SubscriptionCancelled
        ]
    );
    a_new_subscription_is_paid(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn temporal_cancellation_while_waiting_for_3ds_charges_nothing() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let c = match h
        .start_subscription(start_request(
            &user,
            cards::VISA_3DS_SUCCESS,
            "req-3ds-cancel",
        ))
        .await
        .unwrap()
        .outcome
    {
        Some(Outcome::ThreeDs(c)) => c,
        other => panic!("expected a 3-D Secure challenge, got {other:?}"),
    };
    h.request_temporal_cancellation(&user).await;
    assert_eq!(
        h.closed_status(&user, CLOSE_WITHIN).await,
        WorkflowExecutionStatus::Canceled
    );
    let view = h.subscription_of(&user).await.expect("query after close");
    assert_eq!(view.status, "cancelled", "{view:?}");
    let sub = SubscriptionId::parse(&c.subscription_id).unwrap();
    assert_eq!(h.store.subscription(sub).await.unwrap().status, "cancelled");
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(invoices[0].status, "void");
    assert!(h.stand_ins.recorder.grants_for(&user).is_empty());
    assert_eq!(
        kinds(&h, &user),
        vec![EventKind::ThreeDsRequired, EventKind::SubscriptionCancelled]
    );
    // The bank's late answer is refused and charges nothing.
    let pa_res = h.pa_res(c.gateway_transaction_id, "confirm").await;
    let late = confirm_3ds(&h, c.gateway_transaction_id, pa_res)
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert_eq!(h.completed_charges().await, 0);
    h.record_history(&user, "temporal_cancel_request_awaiting_3ds")
        .await;
    // The same request id keeps its final answer; nothing new is started or charged.
    let again = h
        .start_subscription(start_request(
            &user,
            cards::VISA_3DS_SUCCESS,
            "req-3ds-cancel",
        ))
        .await
        .unwrap();
    assert!(
        matches!(again.outcome, Some(Outcome::Expired(_))),
        "{again:?}"
    );
    a_new_subscription_is_paid(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn temporal_cancellation_overrides_a_pending_cancel_at_period_end() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let p = start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    let v = h
        .grpc
        .clone()
        .cancel_subscription(CancelSubscriptionRequest {
            subscription: r(&user),
            immediately: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v.cancel_at_period_end);
    h.request_temporal_cancellation(&user).await;
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    assert_cancelled(&h, &user, sub).await;
    assert_eq!(
        kinds(&h, &user),
        vec![
            EventKind::PaymentSucceeded,
            EventKind::SubscriptionCancelled
        ]
    );
    a_new_subscription_is_paid(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn temporal_cancellation_during_the_first_charge_waits_for_its_outcome() {
    let h = Harness::start(Options::default()).await;
    // The bank takes 3 s to answer this card's charge.
    h.add_fault(json!({"kind": "latency_ms", "latency_ms": 3000, "scope": "card", "card": "3055", "paths": ["/payments/cards/charge"]}))
        .await;
    let user = new_user();
    let start = {
        let grpc = h.grpc.clone();
        let req = start_request(&user, cards::NO_3DS_SUCCESS, "req-in-flight");
        tokio::spawn(async move { grpc.clone().start_subscription(req).await })
    };
    // Cancel while the charge is at the bank.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    h.request_temporal_cancellation(&user).await;
    let answer = start.await.unwrap().expect("start answered").into_inner();
    // The charge was not interrupted: the user paid once, billing recorded it, then the
    // cancellation took effect.
    let p = match answer.outcome {
        Some(Outcome::Paid(p)) => p,
        other => panic!("expected paid, got {other:?}"),
    };
    let sub = SubscriptionId::parse(&p.subscription_id).unwrap();
    assert_cancelled(&h, &user, sub).await;
    assert_eq!(h.completed_charges().await, 1, "charged exactly once");
    let invoices = h.store.invoices_of(sub).await.unwrap();
    assert_eq!(invoices[0].status, "paid");
    assert_eq!(
        h.store
            .transactions_for_invoice(invoices[0].id)
            .await
            .unwrap()
            .len(),
        1,
        "the payment is in billing's ledger"
    );
    assert_eq!(
        kinds(&h, &user),
        vec![
            EventKind::PaymentSucceeded,
            EventKind::SubscriptionCancelled
        ]
    );
    a_new_subscription_is_paid(&h).await;
}
