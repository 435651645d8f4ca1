//! Helpers: start the emulator on port 0 and speak the raw wire format.

use gateway_emulator::{
    cryptogram, spawn, RunningEmulator, Settings, Terminal, DEFAULT_API_SECRET, DEFAULT_PUBLIC_ID,
};
use serde_json::Value;

pub struct Emu {
    pub emu: RunningEmulator,
    pub http: reqwest::Client,
    pub base: String,
}

pub async fn start() -> Emu {
    start_with(Settings::for_tests()).await
}

pub async fn start_with(settings: Settings) -> Emu {
    let emu = spawn(settings).await.expect("emulator starts");
    let base = emu.base_url();
    Emu {
        emu,
        http: reqwest::Client::new(),
        base,
    }
}

pub const FUTURE_YEAR: u32 = 2035;

pub fn emu1(pan: &str) -> String {
    cryptogram::emu1(pan, 12, FUTURE_YEAR, "123", None)
}

impl Emu {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn req(&self, path: &str) -> reqwest::RequestBuilder {
        self.req_as(path, DEFAULT_PUBLIC_ID, DEFAULT_API_SECRET)
    }

    pub fn req_as(&self, path: &str, user: &str, pass: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).basic_auth(user, Some(pass))
    }

    /// POST a JSON body, expect HTTP 200, return the parsed body.
    pub async fn json(&self, path: &str, body: Value) -> Value {
        let r = self.req(path).json(&body).send().await.expect("request");
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.expect("json body")
    }

    /// POST a form body, expect HTTP 200.
    pub async fn form(&self, path: &str, pairs: &[(&str, &str)]) -> Value {
        let body = serde_urlencoded::to_string(pairs).expect("form");
        let r = self
            .req(path)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.expect("json body")
    }

    /// GET without authentication, expecting a 2xx.
    async fn get_ok(&self, path: &str) -> reqwest::Response {
        let r = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("control request");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r
    }

    pub async fn control_get(&self, path: &str) -> Value {
        self.get_ok(path).await.json().await.expect("json")
    }

    /// GET a page (HTML, text) without authentication.
    pub async fn page(&self, path: &str) -> String {
        self.get_ok(path).await.text().await.expect("text")
    }

    pub async fn control_post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("control request");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    /// Charge by cryptogram; returns the body.
    pub async fn charge(
        &self,
        packet: &str,
        amount: f64,
        invoice: &str,
        account: Option<&str>,
    ) -> Value {
        let mut body = serde_json::json!({
            "Amount": amount, "Currency": "RUB", "IpAddress": "127.0.0.1",
            "CardCryptogramPacket": packet, "InvoiceId": invoice, "Description": "test"
        });
        if let Some(a) = account {
            body["AccountId"] = Value::from(a);
        }
        self.json("/payments/cards/charge", body).await
    }

    /// Approved charge of a no-3DS card with an AccountId; returns the token.
    pub async fn token_for(&self, pan: &str, account: &str) -> String {
        let r = self
            .charge(&emu1(pan), 10.0, &format!("tok-{account}"), Some(account))
            .await;
        assert_eq!(r["Success"], true, "{r}");
        r["Model"]["Token"]
            .as_str()
            .expect("token issued")
            .to_owned()
    }

    pub async fn token_charge(
        &self,
        token: &str,
        account: &str,
        amount: f64,
        invoice: &str,
    ) -> Value {
        self.json(
            "/payments/tokens/charge",
            serde_json::json!({"Amount": amount, "Currency": "RUB", "AccountId": account, "Token": token, "InvoiceId": invoice, "TrInitiatorCode": 0, "PaymentScheduled": 1}),
        )
        .await
    }

    pub async fn ledger(&self, invoice: &str) -> Value {
        self.control_get(&format!("/_emulator/ledger/{invoice}"))
            .await
    }
}

pub fn second_terminal() -> Terminal {
    Terminal::new("pk_other", "other_secret")
}

/// The four response shapes, decided the way the client libraries decide.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape {
    Malformed,
    ThreeDs,
    Declined,
    Approved,
}

pub fn shape(v: &Value) -> Shape {
    let success = v["Success"].as_bool().expect("Success is a bool");
    let model = v.get("Model");
    if success {
        let m = model.expect("approved has a Model");
        assert_eq!(m["ReasonCode"], 0, "{v}");
        assert!(v["Message"].is_null(), "{v}");
        return Shape::Approved;
    }
    match model {
        None => {
            assert!(
                v["Message"].as_str().is_some_and(|m| !m.is_empty()),
                "malformed needs a message: {v}"
            );
            Shape::Malformed
        }
        Some(m) => {
            assert!(v["Message"].is_null(), "{v}");
            if m.get("AcsUrl").is_some() {
                assert!(
                    m.get("ReasonCode").is_none(),
                    "3-DS model has no ReasonCode: {v}"
                );
                assert!(
                    m["TransactionId"].is_i64()
                        && m["PaReq"].is_string()
                        && m["AcsUrl"].is_string()
                );
                Shape::ThreeDs
            } else {
                assert_ne!(
                    m["ReasonCode"], 0,
                    "decline needs a non-zero ReasonCode: {v}"
                );
                assert_eq!(m["Status"], "Declined");
                assert_eq!(m["StatusCode"], 5);
                Shape::Declined
            }
        }
    }
}
