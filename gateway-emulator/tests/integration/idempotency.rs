use crate::common::*;
use gateway_emulator::cards::*;
use serde_json::json;

#[tokio::test]
async fn replays_are_byte_for_byte_and_charge_once() {
    let e = start().await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    let body = json!({"Amount": 10, "AccountId": "acc", "Token": token, "InvoiceId": "idem-1"});
    let send = || {
        e.req("/payments/tokens/charge")
            .header("X-Request-ID", "key-1")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap().bytes().await.unwrap();
    let second = send().await.unwrap().bytes().await.unwrap();
    assert_eq!(first, second, "identical bytes");
    assert_eq!(e.ledger("idem-1").await["completed_count"], 1);
    // Same key, other path: a separate operation.
    let r = e
        .req("/payments/find")
        .header("X-Request-ID", "key-1")
        .json(&json!({"InvoiceId": "idem-1"}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["Success"], true);
    // Same key, different body: refused, nothing charged.
    let r = e
        .req("/payments/tokens/charge")
        .header("X-Request-ID", "key-1")
        .json(&json!({"Amount": 11, "AccountId": "acc", "Token": token, "InvoiceId": "idem-1"}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(shape(&v), Shape::Malformed);
    assert!(v["Message"]
        .as_str()
        .unwrap()
        .contains("different request body"));
    assert_eq!(e.ledger("idem-1").await["completed_count"], 1);
    // A new key is a new charge.
    e.req("/payments/tokens/charge")
        .header("X-Request-ID", "key-2")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(e.ledger("idem-1").await["completed_count"], 2);
}

#[tokio::test]
async fn concurrent_duplicates_wait_for_the_first_and_never_charge_twice() {
    let e = start().await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    // Slow charges make the duplicates overlap.
    e.control_post("/_emulator/faults", json!({"scope": "invoice_id", "invoice_id": "idem-c", "kind": "latency_ms", "latency_ms": 300})).await;
    let body = json!({"Amount": 7.77, "AccountId": "acc", "Token": token, "InvoiceId": "idem-c"});
    let futs: Vec<_> = (0..20)
        .map(|_| async {
            let r = e
                .req("/payments/tokens/charge")
                .header("X-Request-ID", "dup")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap()
        })
        .collect();
    let bodies = futures::future::join_all(futs).await;
    for b in &bodies {
        assert_eq!(b, &bodies[0]);
    }
    let l = e.ledger("idem-c").await;
    assert_eq!(l["completed_count"], 1, "{l}");
    assert_eq!(l["completed_amount"], "7.77");
}

#[tokio::test]
async fn cryptogram_charge_replay_does_not_trip_single_use() {
    let e = start().await;
    let body = json!({"Amount": 1, "IpAddress": "1.1.1.1", "CardCryptogramPacket": emu1(NO_3DS_SUCCESS), "InvoiceId": "idem-k"});
    let a = e
        .req("/payments/cards/charge")
        .header("X-Request-ID", "k")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let b = e
        .req("/payments/cards/charge")
        .header("X-Request-ID", "k")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(a, b);
    assert!(a.contains("\"Success\":true"));
    assert_eq!(e.ledger("idem-k").await["completed_count"], 1);
}

#[tokio::test]
async fn injected_errors_are_not_remembered() {
    let e = start().await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    e.control_post(
        "/_emulator/faults",
        json!({"kind": "http_status", "status": 503, "count": 1}),
    )
    .await;
    let body = json!({"Amount": 2, "AccountId": "acc", "Token": token, "InvoiceId": "idem-e"});
    let r = e
        .req("/payments/tokens/charge")
        .header("X-Request-ID", "e1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let r = e
        .req("/payments/tokens/charge")
        .header("X-Request-ID", "e1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the retry is processed");
    assert_eq!(e.ledger("idem-e").await["completed_count"], 1);
}
