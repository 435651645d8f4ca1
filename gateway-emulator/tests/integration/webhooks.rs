use crate::common::*;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine as _;
use gateway_emulator::cards::*;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, HeaderMap, String)>>>,
    /// Answers to give, in order; the last one repeats.
    answers: Arc<Mutex<Vec<Value>>>,
}

async fn receive(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> axum::Json<Value> {
    r.got.lock().push((uri.path().to_owned(), headers, body));
    let mut a = r.answers.lock();
    let v = if a.len() > 1 {
        a.remove(0)
    } else {
        a.first().cloned().unwrap_or(json!({"code": 0}))
    };
    axum::Json(v)
}

async fn receiver(answers: Vec<Value>) -> (Receiver, String) {
    let r = Receiver {
        answers: Arc::new(Mutex::new(answers)),
        ..Default::default()
    };
    let app = axum::Router::new()
        .route("/{*p}", post(receive))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (r, url)
}

fn hmac_b64(secret: &str, msg: &str) -> String {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(msg.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

async fn wait_for(r: &Receiver, n: usize) {
    for _ in 0..100 {
        if r.got.lock().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} webhook calls, got {}", r.got.lock().len());
}

#[tokio::test]
async fn pay_fail_and_refund_webhooks_are_signed_and_form_encoded() {
    let e = start().await;
    let (r, url) = receiver(vec![json!({"code": 0})]).await;
    for kind in ["Pay", "Fail", "Refund", "Confirm", "Cancel"] {
        e.control_post(
            "/_emulator/webhooks",
            json!({"kind": kind, "url": format!("{url}/{kind}")}),
        )
        .await;
    }
    let v = e
        .json(
            "/payments/cards/charge",
            json!({"Amount": 123, "IpAddress": "1.1.1.1", "CardCryptogramPacket": emu1(NO_3DS_SUCCESS), "InvoiceId": "w 1/ü", "AccountId": "a@b.c", "JsonData": {"x": 1}}),
        )
        .await;
    let id = v["Model"]["TransactionId"].as_i64().unwrap();
    wait_for(&r, 1).await;
    let (path, headers, body) = r.got.lock()[0].clone();
    assert_eq!(path, "/Pay");
    assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
    // Independent HMAC: Content-HMAC over the body as sent, X-Content-HMAC over the decoded form.
    let secret = gateway_emulator::DEFAULT_API_SECRET;
    assert_eq!(
        headers["content-hmac"].to_str().unwrap(),
        hmac_b64(secret, &body)
    );
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
    let decoded = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        headers["x-content-hmac"].to_str().unwrap(),
        hmac_b64(secret, &decoded)
    );
    assert!(
        body.contains("InvoiceId=w+1%2f%c3%bc"),
        ".NET-style lower-case escapes: {body}"
    );
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} in {body}"))
    };
    assert_eq!(get("TransactionId"), id.to_string());
    assert_eq!(get("Amount"), "123.00");
    assert_eq!(get("Status"), "Completed");
    assert_eq!(get("TestMode"), "1");
    assert_eq!(get("Data"), r#"{"x":1}"#);
    assert!(get("Token").starts_with("tk_"));
    assert_eq!(get("DateTime").len(), 19);

    e.charge(&emu1(DECLINE_INSUFFICIENT), 5.0, "w-2", None)
        .await;
    wait_for(&r, 2).await;
    let (path, _, body) = r.got.lock()[1].clone();
    assert_eq!(path, "/Fail");
    assert!(
        body.contains("ReasonCode=5051") && body.contains("Reason=InsufficientFunds"),
        "{body}"
    );

    e.json(
        "/payments/refund",
        json!({"TransactionId": id, "Amount": 3}),
    )
    .await;
    wait_for(&r, 3).await;
    let (path, _, body) = r.got.lock()[2].clone();
    assert_eq!(path, "/Refund");
    assert!(
        body.contains(&format!("PaymentTransactionId={id}")) && body.contains("Amount=3.00"),
        "{body}"
    );

    let v = e.json("/payments/cards/auth", json!({"Amount": 9, "IpAddress": "1.1.1.1", "CardCryptogramPacket": emu1(NO_3DS_SUCCESS)})).await;
    let aid = v["Model"]["TransactionId"].as_i64().unwrap();
    e.json(
        "/payments/confirm",
        json!({"TransactionId": aid, "Amount": 9}),
    )
    .await;
    wait_for(&r, 5).await;
    let paths: Vec<String> = r.got.lock().iter().map(|g| g.0.clone()).collect();
    assert!(paths.contains(&"/Confirm".to_owned()), "{paths:?}");

    let deliveries = e.control_get("/_emulator/webhooks/deliveries").await;
    assert!(
        deliveries
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["delivered"] == true),
        "{deliveries}"
    );
}

#[tokio::test]
async fn webhooks_are_retried_until_code_zero() {
    let e = start().await;
    let (r, url) = receiver(vec![
        json!({"code": 13}),
        json!({"oops": true}),
        json!({"code": 0}),
    ])
    .await;
    e.control_post(
        "/_emulator/webhooks",
        json!({"kind": "Pay", "url": format!("{url}/pay"), "retry_delays_ms": [50]}),
    )
    .await;
    e.charge(&emu1(NO_3DS_SUCCESS), 1.0, "w-r", None).await;
    wait_for(&r, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.got.lock().len(), 3, "stops after {{\"code\":0}}");
    let d = e.control_get("/_emulator/webhooks/deliveries").await;
    let attempts: Vec<(u64, bool)> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["attempt"].as_u64().unwrap(),
                x["delivered"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, vec![(1, false), (2, false), (3, true)]);
    let bodies: Vec<String> = r.got.lock().iter().map(|g| g.2.clone()).collect();
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "same notification each time"
    );
}

#[tokio::test]
async fn check_webhook_can_decline_a_payment() {
    let e = start().await;
    let (r, url) = receiver(vec![json!({"code": 10})]).await;
    e.control_post(
        "/_emulator/webhooks",
        json!({"kind": "Check", "url": format!("{url}/check")}),
    )
    .await;
    let v = e
        .charge(&emu1(NO_3DS_SUCCESS), 1.0, "w-c", Some("acc"))
        .await;
    assert_eq!(shape(&v), Shape::Declined);
    assert_eq!(v["Model"]["ReasonCode"], 3001);
    let (_, headers, body) = r.got.lock()[0].clone();
    assert!(
        body.contains("InvoiceId=w-c") && body.contains("Status=Completed"),
        "{body}"
    );
    assert_eq!(
        headers["content-hmac"].to_str().unwrap(),
        hmac_b64(gateway_emulator::DEFAULT_API_SECRET, &body)
    );
    *r.answers.lock() = vec![json!({"code": 0})];
    let v = e
        .charge(&emu1(NO_3DS_SUCCESS), 1.0, "w-c", Some("acc"))
        .await;
    assert_eq!(shape(&v), Shape::Approved);
    // An unreachable Check handler declines with 3006.
    e.control_post(
        "/_emulator/webhooks",
        json!({"kind": "Check", "url": "http://127.0.0.1:9/check"}),
    )
    .await;
    let v = e.charge(&emu1(NO_3DS_SUCCESS), 1.0, "w-c", None).await;
    assert_eq!(v["Model"]["ReasonCode"], 3006);
}
