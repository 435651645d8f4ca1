use crate::common::*;
use gateway_emulator::cards::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn latency_and_http_status_and_rate_limit() {
    let e = start().await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    let id = e.control_post("/_emulator/faults", json!({"scope": "token", "token": token, "kind": "latency_ms", "latency_ms": 300, "count": 1})).await;
    assert!(id["id"].as_u64().is_some());
    let t0 = Instant::now();
    let v = e.token_charge(&token, "acc", 1.0, "f-1").await;
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(shape(&v), Shape::Approved);
    let t0 = Instant::now();
    e.token_charge(&token, "acc", 1.0, "f-1").await;
    assert!(
        t0.elapsed() < Duration::from_millis(250),
        "count 1 is used up"
    );

    e.control_post(
        "/_emulator/faults",
        json!({"kind": "http_status", "status": 502, "count": 1}),
    )
    .await;
    let r = e
        .req("/payments/tokens/charge")
        .json(&json!({"Amount": 1, "AccountId": "acc", "Token": token, "InvoiceId": "f-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    e.control_post(
        "/_emulator/faults",
        json!({"kind": "rate_limit", "count": 1}),
    )
    .await;
    let r = e
        .req("/payments/tokens/charge")
        .json(&json!({"Amount": 1, "AccountId": "acc", "Token": token, "InvoiceId": "f-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        e.ledger("f-2").await["completed_count"],
        0,
        "nothing charged by injected errors"
    );
    // Bad rules are refused.
    let r = e
        .http
        .post(e.url("/_emulator/faults"))
        .json(&json!({"kind": "http_status", "status": 200}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = e
        .http
        .post(e.url("/_emulator/faults"))
        .json(&json!({"kind": "bogus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn decline_next_n_charges_by_card_and_invoice() {
    let e = start().await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    e.control_post(
        "/_emulator/faults",
        json!({"scope": "card", "card": "3055", "kind": "decline", "code": 5051, "count": 2}),
    )
    .await;
    for _ in 0..2 {
        let v = e.token_charge(&token, "acc", 1.0, "f-d").await;
        assert_eq!(v["Model"]["ReasonCode"], 5051);
    }
    assert_eq!(
        shape(&e.token_charge(&token, "acc", 1.0, "f-d").await),
        Shape::Approved
    );
    e.control_post(
        "/_emulator/faults",
        json!({"scope": "invoice_id", "invoice_id": "f-inv", "kind": "decline", "code": 5096}),
    )
    .await;
    let v = e.charge(&emu1(NO_3DS_SUCCESS), 1.0, "f-inv", None).await;
    assert_eq!(v["Model"]["ReasonCode"], 5096);
    assert_eq!(v["Model"]["Reason"], "SystemError");
    assert_eq!(
        shape(&e.charge(&emu1(NO_3DS_SUCCESS), 1.0, "f-other", None).await),
        Shape::Approved
    );
    // Listing and clearing.
    let rules = e.control_get("/_emulator/faults").await;
    assert_eq!(rules.as_array().unwrap().len(), 1);
    let r = e
        .http
        .delete(e.url("/_emulator/faults"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        shape(&e.charge(&emu1(NO_3DS_SUCCESS), 1.0, "f-inv", None).await),
        Shape::Approved
    );
}

#[tokio::test]
async fn timeout_holds_until_the_client_gives_up_and_charges_nothing() {
    let e = start().await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    e.control_post(
        "/_emulator/faults",
        json!({"kind": "timeout", "count": 1, "paths": ["/payments/tokens/charge"]}),
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let r = client
        .post(e.url("/payments/tokens/charge"))
        .basic_auth(
            gateway_emulator::DEFAULT_PUBLIC_ID,
            Some(gateway_emulator::DEFAULT_API_SECRET),
        )
        .json(&json!({"Amount": 1, "AccountId": "acc", "Token": token, "InvoiceId": "f-t"}))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    assert_eq!(e.ledger("f-t").await["completed_count"], 0);
    // EMU1 timeout scenario too, held briefly server-side is fine: the client gives up.
    let p = gateway_emulator::cryptogram::emu1(
        NO_3DS_SUCCESS,
        1,
        35,
        "123",
        Some(gateway_emulator::cryptogram::Scenario::Timeout),
    );
    let r = client
        .post(e.url("/payments/cards/charge"))
        .basic_auth(gateway_emulator::DEFAULT_PUBLIC_ID, Some(gateway_emulator::DEFAULT_API_SECRET))
        .json(&json!({"Amount": 1, "IpAddress": "1.1.1.1", "CardCryptogramPacket": p, "InvoiceId": "f-t"}))
        .send()
        .await;
    assert!(r.is_err());
    assert_eq!(e.ledger("f-t").await["completed_count"], 0);
}

#[tokio::test]
async fn drop_response_after_commit_leaves_a_findable_charge() {
    let e = start().await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    e.control_post("/_emulator/faults", json!({"scope": "invoice_id", "invoice_id": "f-drop", "kind": "drop_response_after_commit", "count": 1})).await;
    let body = json!({"Amount": 42.5, "AccountId": "acc", "Token": token, "InvoiceId": "f-drop"});
    let r = e
        .req("/payments/tokens/charge")
        .header("X-Request-ID", "drop-1")
        .json(&body)
        .send()
        .await;
    assert!(r.is_err(), "the connection is dropped without an answer");
    // The charge happened.
    let l = e.ledger("f-drop").await;
    assert_eq!(l["completed_count"], 1);
    assert_eq!(l["completed_amount"], "42.50");
    // The billing service can resolve the unknown outcome with find...
    let v = e
        .json("/payments/find", json!({"InvoiceId": "f-drop"}))
        .await;
    assert_eq!(shape(&v), Shape::Approved);
    // ...or by retrying with the same X-Request-ID, which replays instead of charging again.
    let r = e
        .req("/payments/tokens/charge")
        .header("X-Request-ID", "drop-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["Model"]["TransactionId"],
        e.json("/payments/find", json!({"InvoiceId": "f-drop"}))
            .await["Model"]["TransactionId"]
    );
    assert_eq!(e.ledger("f-drop").await["completed_count"], 1);
    // A careless retry without the key charges twice: the ledger shows it.
    e.token_charge(&token, "acc", 42.5, "f-drop").await;
    assert_eq!(e.ledger("f-drop").await["completed_count"], 2);
}

#[tokio::test]
async fn reset_clears_everything() {
    let e = start().await;
    e.token_for(NO_3DS_SUCCESS, "acc").await;
    e.control_post(
        "/_emulator/faults",
        json!({"kind": "latency_ms", "latency_ms": 1}),
    )
    .await;
    let r = e.http.post(e.url("/_emulator/reset")).send().await.unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        e.control_get("/_emulator/transactions")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        e.control_get("/_emulator/faults")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        e.control_get("/_emulator/ledger")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        e.control_get("/_emulator/tokens")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

/// A token charge with `X-Request-ID` `key` that may get no answer (the connection is closed).
async fn keyed_token_charge(
    e: &Emu,
    token: &str,
    invoice: &str,
    key: &str,
) -> Result<serde_json::Value, reqwest::Error> {
    e.req("/payments/tokens/charge")
        .header("X-Request-ID", key)
        .json(&json!({"Amount": 10, "AccountId": "acc", "Token": token, "InvoiceId": invoice}))
        .send()
        .await?
        .json()
        .await
}

async fn find_status(e: &Emu, invoice: &str) -> Option<String> {
    let v = e
        .json("/payments/find", json!({"InvoiceId": invoice}))
        .await;
    v["Model"]["Status"].as_str().map(str::to_string)
}

#[tokio::test]
async fn late_commit_answers_nothing_now_and_charges_later() {
    let e = start().await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    e.control_post(
        "/_emulator/faults",
        json!({"kind": "late_commit", "hold_ms": 200, "commit_after_ms": 1500, "count": 1, "paths": ["/payments/tokens/charge"]}),
    )
    .await;
    let t0 = Instant::now();
    assert!(
        keyed_token_charge(&e, &token, "late-1", "k-late-1")
            .await
            .is_err(),
        "the connection is closed without an answer"
    );
    assert!(t0.elapsed() >= Duration::from_millis(200));
    // The bank has not answered yet: nothing to find, nothing in the ledger.
    assert_eq!(find_status(&e, "late-1").await, None);
    assert_eq!(e.ledger("late-1").await["completed_count"], 0);
    // A retry with the same key waits for the late commit and gets its answer: one charge.
    let v = keyed_token_charge(&e, &token, "late-1", "k-late-1")
        .await
        .expect("the retry is answered once the charge is committed");
    assert_eq!(shape(&v), Shape::Approved, "{v}");
    assert!(t0.elapsed() >= Duration::from_millis(1400));
    assert_eq!(
        find_status(&e, "late-1").await.as_deref(),
        Some("Completed")
    );
    assert_eq!(e.ledger("late-1").await["completed_count"], 1);
    // Without a key the charge is committed late all the same.
    e.control_post(
        "/_emulator/faults",
        json!({"kind": "late_commit", "hold_ms": 100, "commit_after_ms": 600, "count": 1}),
    )
    .await;
    assert!(e
        .req("/payments/tokens/charge")
        .json(&json!({"Amount": 10, "AccountId": "acc", "Token": token, "InvoiceId": "late-2"}))
        .send()
        .await
        .is_err());
    assert_eq!(e.ledger("late-2").await["completed_count"], 0);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(e.ledger("late-2").await["completed_count"], 1);
}

#[tokio::test]
async fn pending_in_find_shows_a_committed_charge_as_not_final_for_a_while() {
    let e = start().await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    e.control_post(
        "/_emulator/faults",
        json!({"kind": "pending_in_find", "pending_ms": 800, "count": 1}),
    )
    .await;
    let v = keyed_token_charge(&e, &token, "pend-1", "k-pend-1")
        .await
        .unwrap();
    assert_eq!(
        shape(&v),
        Shape::Approved,
        "the charge itself is answered: {v}"
    );
    assert_eq!(
        find_status(&e, "pend-1").await.as_deref(),
        Some("Authorized")
    );
    assert_eq!(e.ledger("pend-1").await["completed_count"], 1, "committed");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        find_status(&e, "pend-1").await.as_deref(),
        Some("Completed")
    );
}

#[tokio::test]
async fn a_rule_with_a_probability_applies_to_about_that_share() {
    let e = start().await;
    e.control_post(
        "/_emulator/faults",
        json!({"kind": "http_status", "status": 503, "probability": 0.5, "paths": ["/test"]}),
    )
    .await;
    let mut failed = 0;
    for _ in 0..200 {
        let r = e.req("/test").json(&json!({})).send().await.unwrap();
        if r.status() == 503 {
            failed += 1;
        }
    }
    assert!((60..=140).contains(&failed), "{failed} of 200 at p = 0.5");
    let r = e
        .http
        .post(e.url("/_emulator/faults"))
        .json(&json!({"kind": "rate_limit", "probability": 1.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_idempotency_window_is_configurable() {
    let e = start_with(gateway_emulator::Settings {
        idempotency_ttl: Duration::from_secs(1),
        ..gateway_emulator::Settings::for_tests()
    })
    .await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    let first = keyed_token_charge(&e, &token, "ttl-1", "k-ttl")
        .await
        .unwrap();
    let replay = keyed_token_charge(&e, &token, "ttl-1", "k-ttl")
        .await
        .unwrap();
    assert_eq!(first, replay, "replayed inside the window");
    assert_eq!(e.ledger("ttl-1").await["completed_count"], 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // After the window the same key is a new payment: what the billing side must never rely on.
    keyed_token_charge(&e, &token, "ttl-1", "k-ttl")
        .await
        .unwrap();
    assert_eq!(e.ledger("ttl-1").await["completed_count"], 2);
}
