//! The CloudPayments client against the real gateway emulator (in-process, port 0): every
//! answer billing relies on (approved, declined, 3-D Secure, post3ds, token charges) and every
//! way a call can fail (5xx, 429, timeout, an answer lost after the charge, wrong credentials),
//! each mapped to the `GatewayError` the activities turn into a typed failure.

use billing_activities::gateway::{GatewayClient, GatewayError, GatewaySettings};
use billing_domain::messages::{
    ChargeResult, CryptogramCharge, FirstPaymentRequest, GatewayTransaction, Post3ds,
    ThreeDsAnswer, TokenCharge,
};
use billing_domain::{
    AccountId, CardToken, Cryptogram, Currency, GatewayTransactionId, InvoiceId, Money, PaRes,
    RequestId,
};
use gateway_emulator::{
    cards, cryptogram, RunningEmulator, Settings, DEFAULT_API_SECRET, DEFAULT_PUBLIC_ID,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Gateway {
    emu: RunningEmulator,
    control: reqwest::Client,
}

impl Gateway {
    async fn start() -> Self {
        let emu = gateway_emulator::spawn(Settings::for_tests())
            .await
            .expect("emulator starts");
        Self {
            emu,
            control: reqwest::Client::new(),
        }
    }

    fn client(&self) -> GatewayClient {
        self.client_with(DEFAULT_API_SECRET, Duration::from_secs(10))
    }

    fn client_with(&self, secret: &str, timeout: Duration) -> GatewayClient {
        GatewayClient::new(GatewaySettings {
            base_url: self.emu.base_url(),
            public_id: DEFAULT_PUBLIC_ID.to_string(),
            api_secret: SecretString::from(secret),
            timeout,
        })
        .expect("client builds")
    }

    /// `POST /_emulator/faults` (see gateway-emulator/README.md).
    async fn fault(&self, rule: Value) {
        let resp = self
            .control
            .post(format!("{}/_emulator/faults", self.emu.base_url()))
            .json(&rule)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(status, 201, "{rule}: {}", resp.text().await.unwrap());
    }

    async fn control_get(&self, path: &str) -> Value {
        let url = format!("{}/_emulator/{path}", self.emu.base_url());
        let resp = self.control.get(url).send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    /// A valid (or failing) PaRes for a 3-D Secure transaction, as the ACS page would post it.
    async fn pa_res(&self, id: GatewayTransactionId, result: &str) -> PaRes {
        let v = self
            .control_get(&format!("3ds/{id}/pares?result={result}"))
            .await;
        PaRes::new(v["PaRes"].as_str().expect("PaRes"))
    }

    async fn ledger(&self, invoice: InvoiceId) -> Value {
        self.control_get(&format!("ledger/{invoice}")).await
    }
}

fn cryptogram_charge(card: &str, minor: i64) -> CryptogramCharge {
    CryptogramCharge {
        check_first: false,
        invoice_id: InvoiceId(Uuid::new_v4()),
        account_id: AccountId(Uuid::new_v4()),
        amount: Money::new(minor, Currency::Rub).unwrap(),
        request_key: format!("test-{}", Uuid::new_v4()),
        description: "Подписка basic".into(),
        payment: FirstPaymentRequest {
            request_id: RequestId::parse("req-1").unwrap(),
            cryptogram: Cryptogram::new(cryptogram::legacy(card, 12, 2030)),
            cardholder_name: "CARD HOLDER".into(),
            payer_ip: "203.0.113.7".into(),
            email: "payer@example.com".into(),
        },
    }
}

fn token_charge(first: &CryptogramCharge, token: CardToken, minor: i64) -> TokenCharge {
    TokenCharge {
        check_first: false,
        invoice_id: InvoiceId(Uuid::new_v4()),
        account_id: first.account_id,
        amount: Money::new(minor, Currency::Rub).unwrap(),
        token,
        request_key: format!("renewal-{}", Uuid::new_v4()),
        description: "Renewal".into(),
        email: "payer@example.com".into(),
    }
}

fn approved(result: Result<ChargeResult, GatewayError>) -> GatewayTransaction {
    match result {
        Ok(ChargeResult::Approved { transaction }) => transaction,
        other => panic!("expected an approval, got {other:?}"),
    }
}

fn declined<T: std::fmt::Debug>(result: Result<T, GatewayError>) -> GatewayTransaction {
    match result {
        Err(GatewayError::Declined(t)) => *t,
        other => panic!("expected a decline, got {other:?}"),
    }
}

fn unknown_outcome<T: std::fmt::Debug>(result: Result<T, GatewayError>) -> String {
    match result {
        Err(GatewayError::Unavailable(m)) => m,
        other => panic!("expected an unknown outcome, got {other:?}"),
    }
}

/// An approved first payment and its saved-card token.
async fn saved_card(gw: &Gateway, card: &str) -> (CryptogramCharge, CardToken) {
    let first = cryptogram_charge(card, 29900);
    let t = approved(gw.client().charge_cryptogram(&first).await);
    let token = t
        .token
        .expect("an approved payment with an AccountId saves the card");
    (first, token)
}

async fn three_ds(
    gw: &Gateway,
    charge: &CryptogramCharge,
) -> (GatewayTransactionId, String, String) {
    match gw.client().charge_cryptogram(charge).await {
        Ok(ChargeResult::ThreeDsRequired {
            gateway_transaction_id,
            acs_url,
            pa_req,
        }) => (gateway_transaction_id, acs_url, pa_req),
        other => panic!("expected 3-D Secure, got {other:?}"),
    }
}

async fn post3ds(
    gw: &Gateway,
    charge: &CryptogramCharge,
    id: GatewayTransactionId,
    result: &str,
) -> Post3ds {
    Post3ds {
        invoice_id: charge.invoice_id,
        currency: Currency::Rub,
        answer: ThreeDsAnswer {
            gateway_transaction_id: id,
            pa_res: gw.pa_res(id, result).await,
        },
    }
}

#[tokio::test]
async fn approved_cryptogram_charge_returns_a_token_and_the_exact_amount() {
    let gw = Gateway::start().await;
    // 1 000 000.50 RUB: sent as "1000000.50" and read back without floating point.
    let charge = cryptogram_charge(cards::NO_3DS_SUCCESS, 100_000_050);
    let t = approved(gw.client().charge_cryptogram(&charge).await);
    assert!(t.is_completed(), "{t:?}");
    assert_eq!(t.reason_code, 0);
    assert_eq!(t.amount, charge.amount);
    assert!(t.gateway_transaction_id.0 > 0);
    let token = t.token.as_ref().expect("token");
    assert!(token.expose().starts_with("tk_"), "{token:?}");
    assert_eq!(t.card_mask.as_deref(), Some("4000 00** **** 3055"));
    assert_eq!(t.card_exp.as_deref(), Some("12/30"));
    let ledger = gw.ledger(charge.invoice_id).await;
    assert_eq!(ledger["completed_count"], 1);
    assert_eq!(ledger["completed_amount_minor"], 100_000_050);
}

#[tokio::test]
async fn declined_charge_carries_the_reason_code_and_the_transaction() {
    let gw = Gateway::start().await;
    let charge = cryptogram_charge(cards::DECLINE_INSUFFICIENT, 29950);
    let t = declined(gw.client().charge_cryptogram(&charge).await);
    assert_eq!(
        (t.status.as_str(), t.reason_code, t.reason.as_str()),
        ("Declined", 5051, "InsufficientFunds")
    );
    assert!(t.gateway_transaction_id.0 > 0);
    assert_eq!(t.amount, charge.amount);
    assert_eq!(t.token, None);
}

#[tokio::test]
async fn three_ds_challenge_then_post3ds_completes_the_payment() {
    let gw = Gateway::start().await;
    let charge = cryptogram_charge(cards::VISA_3DS_SUCCESS, 49900);
    let (id, acs_url, pa_req) = three_ds(&gw, &charge).await;
    assert!(id.0 > 0);
    assert_eq!(acs_url, format!("{}/acs", gw.emu.base_url()));
    assert!(pa_req.starts_with("+/"), "{pa_req}");
    let post = post3ds(&gw, &charge, id, "confirm").await;
    let t = gw.client().post3ds(&post).await.expect("post3ds approves");
    assert_eq!(t.gateway_transaction_id, id);
    assert!(t.is_completed(), "{t:?}");
    assert_eq!(t.amount, charge.amount);
    assert!(t.token.is_some());
    // The activity may run again: the same answer comes back, nothing is charged twice.
    let again = gw.client().post3ds(&post).await.expect("replay");
    assert_eq!(again.gateway_transaction_id, id);
    assert_eq!(gw.ledger(charge.invoice_id).await["completed_count"], 1);
}

#[tokio::test]
async fn post3ds_with_failed_authentication_is_declined() {
    let gw = Gateway::start().await;
    let charge = cryptogram_charge(cards::MC_3DS_SUCCESS, 100);
    let (id, _, _) = three_ds(&gw, &charge).await;
    let post = post3ds(&gw, &charge, id, "fail").await;
    let t = declined(gw.client().post3ds(&post).await);
    assert_eq!((t.gateway_transaction_id, t.reason_code), (id, 5206));
}

#[tokio::test]
async fn token_charges_approve_and_decline() {
    let gw = Gateway::start().await;
    let client = gw.client();

    let (first, token) = saved_card(&gw, cards::NO_3DS_SUCCESS).await;
    let renewal = token_charge(&first, token, 29901);
    let t = client
        .charge_token(&renewal)
        .await
        .expect("renewal approves");
    assert!(t.is_completed(), "{t:?}");
    assert_eq!(t.amount, renewal.amount);

    // This card pays once by cryptogram, then its token charges decline with 5051.
    let (first, token) = saved_card(&gw, cards::SUCCESS_THEN_TOKEN_DECLINE).await;
    let renewal = token_charge(&first, token.clone(), 29900);
    let result = client.charge_token(&renewal).await;
    let text = format!("{result:?}");
    assert!(!text.contains(token.expose()), "a token leaked: {text}");
    let t = declined(result);
    assert_eq!((t.status.as_str(), t.reason_code), ("Declined", 5051));
    assert_eq!(t.amount, renewal.amount);
}

#[tokio::test]
async fn server_error_is_an_unknown_outcome_and_the_retry_is_processed() {
    let gw = Gateway::start().await;
    let client = gw.client();
    let (first, token) = saved_card(&gw, cards::NO_3DS_SUCCESS).await;
    gw.fault(json!({"kind": "http_status", "status": 503, "count": 1,
                    "paths": ["/payments/tokens/charge"]}))
        .await;
    let renewal = token_charge(&first, token, 29900);
    let m = unknown_outcome(client.charge_token(&renewal).await);
    assert!(
        m.contains("/payments/tokens/charge") && m.contains("503"),
        "{m}"
    );
    // Injected faults are not stored for X-Request-ID: the retry is processed afresh.
    let t = client
        .charge_token(&renewal)
        .await
        .expect("the retry approves");
    assert!(t.is_completed(), "{t:?}");
    assert_eq!(gw.ledger(renewal.invoice_id).await["completed_count"], 1);
}

#[tokio::test]
async fn rate_limit_is_distinguishable_and_not_an_attempt() {
    let gw = Gateway::start().await;
    let client = gw.client();
    gw.fault(json!({"kind": "rate_limit", "count": 1, "paths": ["/payments/cards/charge"]}))
        .await;
    let charge = cryptogram_charge(cards::NO_3DS_SUCCESS, 29900);
    match client.charge_cryptogram(&charge).await {
        Err(GatewayError::RateLimited { path, .. }) => assert_eq!(path, "/payments/cards/charge"),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(gw.ledger(charge.invoice_id).await["completed_count"], 0);
    approved(client.charge_cryptogram(&charge).await);
    assert_eq!(gw.ledger(charge.invoice_id).await["completed_count"], 1);
}

#[tokio::test]
async fn timeout_is_an_unknown_outcome() {
    let gw = Gateway::start().await;
    let client = gw.client_with(DEFAULT_API_SECRET, Duration::from_millis(300));
    gw.fault(json!({"kind": "timeout", "hold_ms": 1500, "count": 1,
                    "paths": ["/payments/cards/charge"]}))
        .await;
    let charge = cryptogram_charge(cards::NO_3DS_SUCCESS, 29900);
    let started = Instant::now();
    let m = unknown_outcome(client.charge_cryptogram(&charge).await);
    assert!(m.contains("timed out"), "{m}");
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    // Reconciling: the held request processed nothing.
    let found = client
        .find_by_invoice(charge.invoice_id, Currency::Rub)
        .await;
    assert_eq!(found.unwrap(), None);
}

#[tokio::test]
async fn answer_lost_after_commit_is_found_by_invoice_and_replayed() {
    let gw = Gateway::start().await;
    let client = gw.client();
    gw.fault(json!({"kind": "drop_response_after_commit", "count": 1,
                    "paths": ["/payments/cards/charge"]}))
        .await;
    let charge = cryptogram_charge(cards::NO_3DS_SUCCESS, 12345);
    let m = unknown_outcome(client.charge_cryptogram(&charge).await);
    assert!(m.contains("/payments/cards/charge"), "{m}");
    let found = client
        .find_by_invoice(charge.invoice_id, Currency::Rub)
        .await
        .unwrap()
        .expect("the committed charge is found");
    assert!(found.is_completed(), "{found:?}");
    assert_eq!(found.amount, charge.amount);
    // A retry with the same X-Request-ID gets the committed answer, not a second charge.
    let replayed = approved(client.charge_cryptogram(&charge).await);
    assert_eq!(
        replayed.gateway_transaction_id,
        found.gateway_transaction_id
    );
    assert_eq!(gw.ledger(charge.invoice_id).await["completed_count"], 1);
}

#[tokio::test]
async fn wrong_secret_is_unauthorized() {
    let gw = Gateway::start().await;
    let client = gw.client_with("wrong-secret-value", Duration::from_secs(10));
    let charge = cryptogram_charge(cards::NO_3DS_SUCCESS, 29900);
    let result = client.charge_cryptogram(&charge).await;
    let text = format!("{result:?} {:?}", client.settings());
    let cryptogram = charge.payment.cryptogram.expose();
    assert!(
        !text.contains("wrong-secret-value") && !text.contains(cryptogram),
        "a secret leaked: {text}"
    );
    assert!(
        matches!(result, Err(GatewayError::Unauthorized { status: 401 })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_malformed_request_is_rejected_and_an_unknown_invoice_is_not_found() {
    let gw = Gateway::start().await;
    let client = gw.client();
    let mut charge = cryptogram_charge(cards::NO_3DS_SUCCESS, 29900);
    charge.payment.cryptogram = Cryptogram::new("not-a-packet");
    match client.charge_cryptogram(&charge).await {
        Err(GatewayError::Rejected(m)) => assert!(m.contains("CardCryptogramPacket"), "{m}"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    let found = client
        .find_by_invoice(InvoiceId(Uuid::new_v4()), Currency::Rub)
        .await;
    assert_eq!(found.unwrap(), None);
}
