//! StartSubscription end to end: real Temporal, Postgres, gateway emulator, gRPC stand-ins.

mod common;

use billing_domain::InvoiceId;
use billing_proto::billing::v1::start_subscription_response::Outcome;
use billing_proto::billing::v1::{GetSubscriptionRequest, ListTariffsRequest};
use billing_proto::notification::v1::EventKind;
use chrono::{DateTime, Months, Utc};
use common::*;
use gateway_emulator::cards;
use serde_json::json;
use std::time::Duration;
use tonic::Code;

fn paid(o: Option<Outcome>) -> billing_proto::billing::v1::Paid {
    match o {
        Some(Outcome::Paid(p)) => p,
        other => panic!("expected paid, got {other:?}"),
    }
}

fn at(ts: &prost_types::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(ts.seconds, ts.nanos as u32).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paid_path_grants_access_until_period_end_and_charges_once() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let resp = h
        .start_subscription(start_request(&user, cards::NO_3DS_SUCCESS, "req-paid-1"))
        .await
        .expect("start");
    let p = paid(resp.outcome);
    assert_eq!(p.amount.as_ref().unwrap().amount_minor, 29900);
    assert_eq!(p.amount.as_ref().unwrap().currency, "RUB");

    // The invoice: paid, one calendar month long, and access until exactly its end.
    let invoice = h
        .store
        .invoice(InvoiceId::parse(&p.invoice_id).unwrap())
        .await
        .unwrap();
    assert_eq!(invoice.status, "paid");
    assert_eq!(invoice.amount.minor, 29900);
    assert_eq!(
        invoice
            .period_start
            .checked_add_months(Months::new(1))
            .unwrap(),
        invoice.period_end
    );
    let access_until = at(p.access_until.as_ref().unwrap());
    assert_eq!(access_until, invoice.period_end);
    assert_eq!(
        h.stand_ins.recorder.access_until(&user),
        Some(invoice.period_end.timestamp())
    );
    let grants = h.stand_ins.recorder.grants_for(&user);
    assert!(grants.iter().all(|g| g.transaction_id == p.transaction_id));

    // One charge at the gateway, one transaction recorded, card saved as a mask only.
    let ledger = h.ledger(&p.invoice_id).await;
    assert_eq!(ledger["completed_count"], 1, "{ledger}");
    assert_eq!(ledger["completed_amount_minor"], 29900);
    let txs = h.store.transactions_for_invoice(invoice.id).await.unwrap();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].status, "Completed");
    assert_eq!(txs[0].gateway_transaction_id, p.gateway_transaction_id);
    let sub = h
        .store
        .subscription(billing_domain::SubscriptionId::parse(&p.subscription_id).unwrap())
        .await
        .unwrap();
    assert_eq!(sub.status, "active");
    let mask = sub.card_mask.expect("card saved");
    assert!(
        mask.ends_with("3055") && !mask.contains("0000000000"),
        "{mask}"
    );

    // One "payment succeeded" notification carrying the transaction id.
    let events = h.stand_ins.recorder.events_for(&user);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, EventKind::PaymentSucceeded as i32);
    assert_eq!(events[0].transaction_id, p.transaction_id);
    assert_eq!(events[0].amount_minor, 29900);

    // The live state, by user and by subscription id.
    let view = h.subscription_of(&user).await.unwrap();
    assert_eq!(view.status, "active");
    assert_eq!(view.subscription_id, p.subscription_id);
    assert_eq!(
        at(view.current_period_end.as_ref().unwrap()),
        invoice.period_end
    );
    let by_id = h
        .grpc
        .clone()
        .get_subscription(GetSubscriptionRequest {
            user_id: String::new(),
            subscription_id: p.subscription_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id.user_id, user);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decline_grants_nothing_voids_invoice_and_notifies() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let resp = h
        .start_subscription(start_request(
            &user,
            cards::DECLINE_INSUFFICIENT,
            "req-decl-1",
        ))
        .await
        .expect("start");
    let d = match resp.outcome {
        Some(Outcome::Declined(d)) => d,
        other => panic!("expected declined, got {other:?}"),
    };
    assert_eq!(d.reason_code, 5051);
    assert!(d.message.contains("insufficient"), "{}", d.message);
    assert!(d.gateway_transaction_id > 0);
    let invoice = h
        .store
        .invoice(InvoiceId::parse(&d.invoice_id).unwrap())
        .await
        .unwrap();
    assert_eq!(invoice.status, "void");
    assert!(h.stand_ins.recorder.grants_for(&user).is_empty());
    assert_eq!(h.stand_ins.recorder.access_until(&user), None);
    let events = h.stand_ins.recorder.events_for(&user);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, EventKind::PaymentDeclined as i32);
    assert_eq!(events[0].reason_code, 5051);
    let ledger = h.ledger(&d.invoice_id).await;
    assert_eq!(ledger["completed_count"], 0);
    assert_eq!(ledger["declined_count"], 1);

    // Same request id again after the workflow closed: the same answer, no new gateway call.
    let again = h
        .start_subscription(start_request(
            &user,
            cards::DECLINE_INSUFFICIENT,
            "req-decl-1",
        ))
        .await
        .expect("retry");
    match again.outcome {
        Some(Outcome::Declined(d2)) => assert_eq!(d2, d),
        other => panic!("expected the same decline, got {other:?}"),
    }
    assert_eq!(h.ledger(&d.invoice_id).await["declined_count"], 1);

    // A new request (new card) may start a subscription now.
    let ok = h
        .start_subscription(start_request(&user, cards::NO_3DS_SUCCESS, "req-decl-2"))
        .await
        .expect("new start");
    paid(ok.outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_request_id_twice_returns_first_answer_and_charges_once() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let req = start_request(&user, cards::NO_3DS_SUCCESS, "req-dup");
    let first = h.start_subscription(req.clone()).await.expect("first");
    let second = h.start_subscription(req.clone()).await.expect("second");
    assert_eq!(first, second);
    let p = paid(first.outcome);
    assert_eq!(h.ledger(&p.invoice_id).await["completed_count"], 1);
    assert_eq!(h.completed_charges().await, 1);
    assert_eq!(h.stand_ins.recorder.events_for(&user).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_for_one_account_make_one_subscription() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let a = h.start_subscription(start_request(&user, cards::NO_3DS_SUCCESS, "req-a"));
    let b = h.start_subscription(start_request(&user, cards::MC_NO_3DS_SUCCESS, "req-b"));
    let (ra, rb) = tokio::join!(a, b);
    let (ok, err) = match (ra, rb) {
        (Ok(o), Err(e)) | (Err(e), Ok(o)) => (o, e),
        other => panic!("expected one success and one ALREADY_EXISTS, got {other:?}"),
    };
    let p = paid(ok.outcome);
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(
        err.message().contains(&p.subscription_id),
        "{}",
        err.message()
    );
    assert_eq!(h.completed_charges().await, 1);

    // A later start with yet another request id is also refused while the subscription lives.
    let later = h
        .start_subscription(start_request(&user, cards::NO_3DS_SUCCESS, "req-c"))
        .await
        .unwrap_err();
    assert_eq!(later.code(), Code::AlreadyExists);
    assert_eq!(h.completed_charges().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_5xx_then_recovery_charges_once() {
    let h = Harness::start(Options::default()).await;
    h.add_fault(json!({"kind": "http_status", "status": 503, "count": 2, "paths": ["/payments/cards/charge"]})).await;
    let user = new_user();
    let p = paid(
        h.start_subscription(start_request(&user, cards::NO_3DS_SUCCESS, "req-5xx"))
            .await
            .expect("start")
            .outcome,
    );
    assert_eq!(h.ledger(&p.invoice_id).await["completed_count"], 1);
    assert_eq!(h.completed_charges().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn charge_committed_but_response_dropped_still_charges_once() {
    let h = Harness::start(Options::default()).await;
    h.add_fault(json!({"kind": "drop_response_after_commit", "count": 1, "paths": ["/payments/cards/charge"]})).await;
    let user = new_user();
    let p = paid(
        h.start_subscription(start_request(&user, cards::NO_3DS_SUCCESS, "req-drop"))
            .await
            .expect("start")
            .outcome,
    );
    let ledger = h.ledger(&p.invoice_id).await;
    assert_eq!(ledger["completed_count"], 1, "{ledger}");
    assert_eq!(h.completed_charges().await, 1);
    assert!(h.stand_ins.recorder.access_until(&user).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_killed_mid_payment_completes_with_one_charge() {
    let mut h = Harness::start(Options {
        worker_in_process: false,
        ..Options::default()
    })
    .await;
    // Hold the charge long enough to kill the worker while it is in flight.
    h.add_fault(json!({"kind": "latency_ms", "latency_ms": 3000, "count": 1, "paths": ["/payments/cards/charge"]})).await;
    let user = new_user();
    let grpc = h.grpc.clone();
    let req = start_request(&user, cards::NO_3DS_SUCCESS, "req-kill");
    let call = tokio::spawn(async move { grpc.clone().start_subscription(req).await });
    tokio::time::sleep(Duration::from_millis(2000)).await;
    h.kill_worker_process();
    h.spawn_worker_process();
    let resp = call
        .await
        .unwrap()
        .expect("start completes after the worker restart")
        .into_inner();
    let p = paid(resp.outcome);
    assert_eq!(h.ledger(&p.invoice_id).await["completed_count"], 1);
    assert_eq!(h.completed_charges().await, 1);
    assert_eq!(h.stand_ins.recorder.events_for(&user).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_gateway_answers_unavailable_and_grants_nothing() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut opts = Options {
        gateway_url: Some(url),
        ..Default::default()
    };
    opts.config.charge_retry_window = Duration::from_secs(2);
    opts.start_timeout = Duration::from_secs(6);
    let h = Harness::start(opts).await;
    let user = new_user();
    let err = h
        .start_subscription(start_request(&user, cards::NO_3DS_SUCCESS, "req-down"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains("client_request_id"),
        "{}",
        err.message()
    );
    assert!(h.stand_ins.recorder.grants_for(&user).is_empty());
    assert!(h.stand_ins.recorder.events_for(&user).is_empty());
    assert_eq!(h.store.count("transactions").await.unwrap(), 0);
    let paid_invoices: i64 =
        sqlx_count(&h, "SELECT count(*) FROM invoices WHERE status = 'paid'").await;
    assert_eq!(paid_invoices, 0);
}

async fn sqlx_count(h: &Harness, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(h.store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_the_right_status_naming_the_field() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let base = start_request(&user, cards::NO_3DS_SUCCESS, "req-bad");
    type Mutation = Box<dyn Fn(&mut billing_proto::billing::v1::StartSubscriptionRequest)>;
    let cases: Vec<(Mutation, Code, &str)> = vec![
        (
            Box::new(|r| r.user_id = "not-a-uuid".into()),
            Code::InvalidArgument,
            "user_id",
        ),
        (
            Box::new(|r| r.tariff_code = "no-such-tariff".into()),
            Code::NotFound,
            "no-such-tariff",
        ),
        (
            Box::new(|r| r.tariff_code = "".into()),
            Code::InvalidArgument,
            "tariff_code",
        ),
        (
            Box::new(|r| r.card_cryptogram = "".into()),
            Code::InvalidArgument,
            "card_cryptogram",
        ),
        (
            Box::new(|r| r.card_cryptogram = "short".into()),
            Code::InvalidArgument,
            "card_cryptogram",
        ),
        (
            Box::new(|r| r.cardholder_name = "".into()),
            Code::InvalidArgument,
            "cardholder_name",
        ),
        (
            Box::new(|r| r.payer_ip = "999.1.1.1".into()),
            Code::InvalidArgument,
            "payer_ip",
        ),
        (
            Box::new(|r| r.email = "not an email".into()),
            Code::InvalidArgument,
            "email",
        ),
        (
            Box::new(|r| r.client_request_id = "".into()),
            Code::InvalidArgument,
            "client_request_id",
        ),
    ];
    for (mutate, code, needle) in cases {
        let mut r = base.clone();
        mutate(&mut r);
        let err = h.start_subscription(r).await.unwrap_err();
        assert_eq!(err.code(), code, "{needle}: {err:?}");
        assert!(
            err.message().contains(needle),
            "{needle}: {}",
            err.message()
        );
    }
    assert_eq!(h.completed_charges().await, 0);
    let missing = h.subscription_of(&new_user()).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tariffs_rest_api_and_docs() {
    let h = Harness::start(Options::default()).await;
    let t = h
        .grpc
        .clone()
        .list_tariffs(ListTariffsRequest {})
        .await
        .unwrap()
        .into_inner();
    let basic = t
        .tariffs
        .iter()
        .find(|t| t.code == "basic-monthly")
        .expect("demo tariff");
    assert_eq!(basic.price.as_ref().unwrap().amount_minor, 29900);
    assert_eq!(basic.period_unit, "month");

    let rest: serde_json::Value = h
        .api
        .get(format!("{}/api/v1/tariffs", h.http_base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(rest
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["code"] == "basic-monthly" && t["amount_minor"] == 29900));
    let doc: serde_json::Value = h
        .http
        .get(format!("{}/api/openapi.json", h.http_base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["paths"]["/api/v1/subscriptions/{id}"].is_object(),
        "{doc}"
    );
    let page = h
        .http
        .get(format!("{}/api/docs", h.http_base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/api/v1/tariffs") && !page.contains("cdn"),
        "offline docs page"
    );
    let bad = h
        .api
        .get(format!("{}/api/v1/subscriptions/nope", h.http_base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "invalid_argument");

    // REST start mirrors gRPC.
    let user = new_user();
    let resp: serde_json::Value = h
        .api
        .post(format!("{}/api/v1/subscriptions", h.http_base))
        .json(&json!({
            "user_id": user, "tariff_code": "basic-monthly",
            "card_cryptogram": gateway_emulator::cryptogram::legacy(cards::NO_3DS_SUCCESS, 12, 2030),
            "cardholder_name": "IVAN PETROV", "payer_ip": "203.0.113.7", "email": "ivan@example.com",
            "client_request_id": "rest-1"
        }))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(resp["outcome"], "paid", "{resp}");
    let sub: serde_json::Value = h
        .api
        .get(format!("{}/api/v1/users/{user}/subscription", h.http_base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sub["status"], "active", "{sub}");
}
