//! 3-D Secure first payments: challenge, TermUrl form post, Confirm3ds, expiry, restarts, bad
//! answers. Real Temporal, Postgres, gateway emulator (with its ACS page) and gRPC stand-ins.

mod common;

use billing_domain::InvoiceId;
use billing_proto::billing::v1::start_subscription_response::Outcome;
use billing_proto::billing::v1::{Confirm3dsRequest, ThreeDsChallenge};
use billing_proto::notification::v1::EventKind;
use common::*;
use gateway_emulator::cards;
use std::time::Duration;
use tonic::Code;

fn challenge(o: Option<Outcome>) -> ThreeDsChallenge {
    match o {
        Some(Outcome::ThreeDs(c)) => c,
        other => panic!("expected a 3-D Secure challenge, got {other:?}"),
    }
}

/// What a browser does on the ACS page: post MD/PaReq/TermUrl, read the form the page shows
/// and return the PaRes of its "Confirm" (or "Fail") button.
async fn acs_page_pa_res(h: &Harness, c: &ThreeDsChallenge, button: &str) -> String {
    let page = h
        .post_form(
            &c.acs_url,
            &[
                ("MD", &c.md),
                ("PaReq", &c.pa_req),
                ("TermUrl", &c.term_url),
            ],
        )
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Confirm") && html.contains("Fail"), "{html}");
    let form = html
        .split("<form")
        .find(|f| f.contains(&format!("id=\"{button}\"")))
        .expect("button form");
    assert!(
        form.contains(&format!("action=\"{}\"", c.term_url)),
        "{form}"
    );
    let after = form
        .split("name=\"PaRes\" value=\"")
        .nth(1)
        .expect("PaRes field");
    after
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_ds_success_through_acs_page_and_term_url() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let c = challenge(
        h.start_subscription(start_request(&user, cards::VISA_3DS_SUCCESS, "req-3ds-ok"))
            .await
            .expect("start")
            .outcome,
    );
    assert!(
        c.acs_url.starts_with(&h.emulator.base_url()),
        "{}",
        c.acs_url
    );
    assert!(c.term_url.ends_with("/api/v1/3ds/callback"));
    assert_eq!(c.md, c.gateway_transaction_id.to_string());
    // Waiting: visible in the live state, nothing granted yet, a retried start returns the challenge.
    let view = h.subscription_of(&user).await.unwrap();
    assert_eq!(view.payment_state, "awaiting_3ds");
    assert!(h.stand_ins.recorder.grants_for(&user).is_empty());
    let again = challenge(
        h.start_subscription(start_request(&user, cards::VISA_3DS_SUCCESS, "req-3ds-ok"))
            .await
            .unwrap()
            .outcome,
    );
    assert_eq!(again, c);

    let pa_res = acs_page_pa_res(&h, &c, "confirm").await;
    let resp = h
        .post_form(&c.term_url, &[("MD", &c.md), ("PaRes", &pa_res)])
        .await;
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.contains("status=paid") && location.contains(&c.subscription_id),
        "{location}"
    );

    let view = h.subscription_of(&user).await.unwrap();
    assert_eq!(view.status, "active");
    let until = h
        .stand_ins
        .recorder
        .access_until(&user)
        .expect("access granted");
    assert_eq!(Some(until), view.current_period_end.map(|t| t.seconds));
    let kinds: Vec<i32> = h
        .stand_ins
        .recorder
        .events_for(&user)
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::ThreeDsRequired as i32,
            EventKind::PaymentSucceeded as i32
        ]
    );
    assert_eq!(h.completed_charges().await, 1);

    // A retried TermUrl post is harmless: same redirect, nothing charged again.
    let retry = h
        .post_form(&c.term_url, &[("MD", &c.md), ("PaRes", &pa_res)])
        .await;
    assert_eq!(retry.status(), 303);
    assert!(retry.headers()["location"]
        .to_str()
        .unwrap()
        .contains("status=paid"));
    // The gRPC Confirm3ds after the payment finished: FAILED_PRECONDITION (another PaRes) or the
    // same answer (the same PaRes).
    let other = h
        .grpc
        .clone()
        .confirm3ds(Confirm3dsRequest {
            transaction_id: c.gateway_transaction_id,
            pa_res: "forged".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");
    assert_eq!(h.completed_charges().await, 1);
    assert_eq!(h.stand_ins.recorder.events_for(&user).len(), 2);
    // The result page the TermUrl redirected to.
    let page = h
        .http
        .get(&location)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Payment confirmed"), "{page}");
    h.cancel_now(&user).await.unwrap();
    h.record_history(&user, "three_ds_paid_then_cancelled")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_ds_then_insufficient_funds_is_declined() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let c = challenge(
        h.start_subscription(start_request(
            &user,
            cards::VISA_3DS_INSUFFICIENT,
            "req-3ds-nsf",
        ))
        .await
        .unwrap()
        .outcome,
    );
    let pa_res = h.pa_res(c.gateway_transaction_id, "confirm").await;
    let out = h
        .grpc
        .clone()
        .confirm3ds(Confirm3dsRequest {
            transaction_id: c.gateway_transaction_id,
            pa_res,
        })
        .await
        .unwrap()
        .into_inner();
    match out.outcome {
        Some(Outcome::Declined(d)) => {
            assert_eq!(d.reason_code, 5051);
            let inv = h
                .store
                .invoice(InvoiceId::parse(&d.invoice_id).unwrap())
                .await
                .unwrap();
            assert_eq!(inv.status, "void");
        }
        other => panic!("expected declined, got {other:?}"),
    }
    assert!(h.stand_ins.recorder.grants_for(&user).is_empty());
    let kinds: Vec<i32> = h
        .stand_ins
        .recorder
        .events_for(&user)
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::ThreeDsRequired as i32,
            EventKind::PaymentDeclined as i32
        ]
    );
    assert_eq!(h.completed_charges().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_authentication_declines_5206_and_redirects_to_failure() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let c = challenge(
        h.start_subscription(start_request(&user, cards::MC_3DS_SUCCESS, "req-3ds-fail"))
            .await
            .unwrap()
            .outcome,
    );
    let pa_res = acs_page_pa_res(&h, &c, "fail").await;
    let resp = h
        .post_form(&c.term_url, &[("MD", &c.md), ("PaRes", &pa_res)])
        .await;
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("status=declined") && location.contains("reason_code=5206"),
        "{location}"
    );
    assert!(h.stand_ins.recorder.grants_for(&user).is_empty());
    assert_eq!(h.completed_charges().await, 0);
    let view = h.subscription_of(&user).await.unwrap();
    assert_eq!(view.status, "declined");
    assert_eq!(view.last_decline_code, 5206);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unanswered_challenge_expires_voids_invoice_and_allows_a_new_start() {
    let mut opts = Options::default();
    opts.config.three_ds_expiry = Duration::from_secs(2);
    let h = Harness::start(opts).await;
    let user = new_user();
    let c = challenge(
        h.start_subscription(start_request(&user, cards::VISA_3DS_SUCCESS, "req-3ds-exp"))
            .await
            .unwrap()
            .outcome,
    );
    // Wait for the expiry to be processed (notification sent).
    let mut expired = false;
    for _ in 0..100 {
        if h.stand_ins
            .recorder
            .events_for(&user)
            .iter()
            .any(|e| e.kind == EventKind::PaymentExpired as i32)
        {
            expired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        expired,
        "no expiry notification: {:?}",
        h.stand_ins.recorder.events_for(&user)
    );
    assert!(h.stand_ins.recorder.grants_for(&user).is_empty());
    // A late answer is refused; nothing is charged.
    let pa_res = h.pa_res(c.gateway_transaction_id, "confirm").await;
    let late = confirm_3ds(&h, c.gateway_transaction_id, pa_res)
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert_eq!(h.completed_charges().await, 0);
    // The same request id answers "expired"; a new request may start again.
    match h
        .start_subscription(start_request(&user, cards::VISA_3DS_SUCCESS, "req-3ds-exp"))
        .await
        .unwrap()
        .outcome
    {
        Some(Outcome::Expired(e)) => {
            let inv = h
                .store
                .invoice(InvoiceId::parse(&e.invoice_id).unwrap())
                .await
                .unwrap();
            assert_eq!(inv.status, "void");
        }
        other => panic!("expected expired, got {other:?}"),
    }
    let ok = h
        .start_subscription(start_request(&user, cards::NO_3DS_SUCCESS, "req-3ds-exp-2"))
        .await
        .unwrap();
    assert!(matches!(ok.outcome, Some(Outcome::Paid(_))), "{ok:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_restart_while_waiting_for_the_bank() {
    let mut h = Harness::start(Options::default()).await;
    let user = new_user();
    let c = challenge(
        h.start_subscription(start_request(
            &user,
            cards::VISA_3DS_SUCCESS,
            "req-3ds-restart",
        ))
        .await
        .unwrap()
        .outcome,
    );
    h.stop_worker().await;
    h.start_worker();
    let pa_res = h.pa_res(c.gateway_transaction_id, "confirm").await;
    let out = h
        .grpc
        .clone()
        .confirm3ds(Confirm3dsRequest {
            transaction_id: c.gateway_transaction_id,
            pa_res,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(out.outcome, Some(Outcome::Paid(_))), "{out:?}");
    assert_eq!(h.completed_charges().await, 1);
    assert!(h.stand_ins.recorder.access_until(&user).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_3ds_answers_get_clear_errors_and_charge_nothing() {
    let h = Harness::start(Options::default()).await;
    let (alice, bob) = (new_user(), new_user());
    let ca = challenge(
        h.start_subscription(start_request(&alice, cards::VISA_3DS_SUCCESS, "req-a"))
            .await
            .unwrap()
            .outcome,
    );
    let cb = challenge(
        h.start_subscription(start_request(&bob, cards::VISA_3DS_SUCCESS, "req-b"))
            .await
            .unwrap()
            .outcome,
    );

    // Unknown transaction.
    let e = h
        .grpc
        .clone()
        .confirm3ds(Confirm3dsRequest {
            transaction_id: 999_999_999,
            pa_res: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // Bob's PaRes posted for Alice's transaction: refused by the gateway, Alice keeps waiting.
    let bob_pa_res = h.pa_res(cb.gateway_transaction_id, "confirm").await;
    let e = h
        .grpc
        .clone()
        .confirm3ds(Confirm3dsRequest {
            transaction_id: ca.gateway_transaction_id,
            pa_res: bob_pa_res.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("pa_res"), "{}", e.message());
    let view = h.subscription_of(&alice).await.unwrap();
    assert_eq!(view.payment_state, "awaiting_3ds");
    // Malformed TermUrl posts.
    assert_eq!(
        h.post_form(&ca.term_url, &[("PaRes", "x")]).await.status(),
        400
    );
    assert_eq!(
        h.post_form(&ca.term_url, &[("MD", "abc"), ("PaRes", "x")])
            .await
            .status(),
        400
    );
    let wrong_type = h
        .http
        .post(&ca.term_url)
        .body("{}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);
    assert_eq!(
        h.post_form(&ca.term_url, &[("MD", "424242"), ("PaRes", "x")])
            .await
            .status(),
        404
    );
    // Both can still finish with their own answers, once each.
    let alice_pa_res = h.pa_res(ca.gateway_transaction_id, "confirm").await;
    let ra = h
        .grpc
        .clone()
        .confirm3ds(Confirm3dsRequest {
            transaction_id: ca.gateway_transaction_id,
            pa_res: alice_pa_res.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let rb = h
        .grpc
        .clone()
        .confirm3ds(Confirm3dsRequest {
            transaction_id: cb.gateway_transaction_id,
            pa_res: bob_pa_res,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(ra.outcome, Some(Outcome::Paid(_)))
            && matches!(rb.outcome, Some(Outcome::Paid(_)))
    );
    // A replay of the same answer returns the first result; no second post3ds, no second charge.
    let replay = h
        .grpc
        .clone()
        .confirm3ds(Confirm3dsRequest {
            transaction_id: ca.gateway_transaction_id,
            pa_res: alice_pa_res,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay, ra);
    assert_eq!(h.completed_charges().await, 2);
}
