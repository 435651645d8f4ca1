//! CloudPayments client. Plumbing (base URL, Basic auth, timeout, `X-Request-ID`) is kept apart
//! from the wire types; amounts become decimal roubles only here.

use billing_domain::messages::{ChargeResult, CryptogramCharge, GatewayTransaction};
use billing_domain::money::{format_minor, parse_decimal_minor};
use billing_domain::{Currency, GatewayTransactionId, InvoiceId, Money};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Gateway call errors. Declines are data (`Declined`), not transport failures.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The bank declined: final for this attempt; the transaction is attached.
    #[error("declined with reason code {}", .0.reason_code)]
    Declined(Box<GatewayTransaction>),
    /// The gateway rejected the request as malformed (`Success:false` + `Message`): fix the
    /// request; retrying the same request cannot help.
    #[error("gateway rejected the request: {0}")]
    Rejected(String),
    /// 5xx, 429, timeout, connection error: the outcome is unknown if the request was sent.
    /// Retry with the same `X-Request-ID`, or ask `/payments/find` first.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
    /// 401: our terminal credentials are wrong. An operator must fix the configuration.
    #[error("gateway refused our credentials (HTTP 401)")]
    Unauthorized,
}

/// Settings of the CloudPayments client.
#[derive(Clone)]
pub struct GatewaySettings {
    pub base_url: String,
    pub public_id: String,
    pub api_secret: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for GatewaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySettings")
            .field("base_url", &self.base_url)
            .field("public_id", &self.public_id)
            .field("api_secret", &"***")
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
    settings: GatewaySettings,
}

/// The response envelope. Keys are PascalCase on the wire.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    success: bool,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    model: Option<Value>,
}

impl GatewayClient {
    pub fn new(settings: GatewaySettings) -> Result<Self, GatewayError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5).min(settings.timeout))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| GatewayError::Unavailable(format!("http client: {e}")))?;
        Ok(Self { http, settings })
    }

    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }

    async fn post(
        &self,
        path: &str,
        body: Value,
        request_id: Option<&str>,
    ) -> Result<Envelope, GatewayError> {
        let url = format!("{}{}", self.settings.base_url.trim_end_matches('/'), path);
        let mut req = self
            .http
            .post(&url)
            .basic_auth(
                &self.settings.public_id,
                Some(self.settings.api_secret.expose_secret()),
            )
            .json(&body);
        if let Some(id) = request_id {
            req = req.header("X-Request-ID", id);
        }
        let resp = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            GatewayError::Unavailable(format!("{kind} error calling {path}: {}", without_url(&e)))
        })?;
        let status = resp.status();
        match status.as_u16() {
            200..=299 => {}
            401 => return Err(GatewayError::Unauthorized),
            429 => {
                return Err(GatewayError::Unavailable(format!(
                    "{path}: HTTP 429 too many requests"
                )))
            }
            500..=599 => return Err(GatewayError::Unavailable(format!("{path}: HTTP {status}"))),
            _ => {
                return Err(GatewayError::Rejected(format!(
                    "{path}: unexpected HTTP {status}"
                )))
            }
        }
        let bytes = resp.bytes().await.map_err(|e| {
            GatewayError::Unavailable(format!("reading {path} response: {}", without_url(&e)))
        })?;
        serde_json::from_slice::<Envelope>(&bytes).map_err(|e| {
            GatewayError::Unavailable(format!("{path}: unparseable response body: {e}"))
        })
    }

    /// `/payments/cards/charge`: one-stage payment by cryptogram.
    pub async fn charge_cryptogram(
        &self,
        c: &CryptogramCharge,
    ) -> Result<ChargeResult, GatewayError> {
        let body = json!({
            "Amount": decimal(c.amount),
            "Currency": c.amount.currency.code(),
            "IpAddress": c.payment.payer_ip,
            "Name": c.payment.cardholder_name,
            "CardCryptogramPacket": c.payment.cryptogram,
            "InvoiceId": c.invoice_id.to_string(),
            "Description": c.description,
            "AccountId": c.account_id.to_string(),
            "Email": c.payment.email,
            "SaveCard": true,
        });
        let env = self
            .post("/payments/cards/charge", body, Some(&c.request_key))
            .await?;
        interpret_payment(env, c.amount.currency)
    }

    /// `/payments/tokens/charge`: a scheduled, merchant-initiated renewal by saved token.
    pub async fn charge_token(
        &self,
        c: &billing_domain::messages::TokenCharge,
    ) -> Result<GatewayTransaction, GatewayError> {
        let body = json!({
            "Amount": decimal(c.amount),
            "Currency": c.amount.currency.code(),
            "AccountId": c.account_id.to_string(),
            "Token": c.token,
            "TrInitiatorCode": 0,
            "PaymentScheduled": 1,
            "InvoiceId": c.invoice_id.to_string(),
            "Description": c.description,
            "Email": c.email,
        });
        let env = self
            .post("/payments/tokens/charge", body, Some(&c.request_key))
            .await?;
        match interpret_payment(env, c.amount.currency)? {
            ChargeResult::Approved { transaction } => Ok(transaction),
            ChargeResult::ThreeDsRequired { .. } => Err(GatewayError::Rejected(
                "token charge asked for 3-D Secure".into(),
            )),
        }
    }

    /// `/payments/cards/post3ds`: finishes a 3-D Secure payment with the bank's PaRes.
    pub async fn post3ds(
        &self,
        req: &billing_domain::messages::Post3ds,
    ) -> Result<GatewayTransaction, GatewayError> {
        let body = json!({
            "TransactionId": req.answer.gateway_transaction_id.0,
            "PaRes": req.answer.pa_res,
        });
        // Stable per (transaction, answer): a retry of this activity replays, another PaRes is a
        // new request.
        let answer = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, req.answer.pa_res.expose().as_bytes());
        let key = format!("3ds-{}-{answer}", req.answer.gateway_transaction_id);
        let env = self
            .post("/payments/cards/post3ds", body, Some(&key))
            .await?;
        match interpret_payment(env, req.currency)? {
            ChargeResult::Approved { transaction } => Ok(transaction),
            ChargeResult::ThreeDsRequired { .. } => Err(GatewayError::Rejected(
                "post3ds answered with another 3-D Secure challenge".into(),
            )),
        }
    }

    /// `/payments/find`: the latest transaction with this InvoiceId, if any.
    pub async fn find_by_invoice(
        &self,
        invoice: InvoiceId,
        currency: Currency,
    ) -> Result<Option<GatewayTransaction>, GatewayError> {
        let env = self
            .post(
                "/payments/find",
                json!({ "InvoiceId": invoice.to_string() }),
                None,
            )
            .await?;
        match env.model {
            Some(Value::Object(_)) => {
                let model = env.model.unwrap_or(Value::Null);
                Ok(Some(parse_transaction(&model, currency)?))
            }
            _ if !env.success => Ok(None), // {"Success":false,"Message":"Not found"}
            _ => Err(GatewayError::Unavailable(
                "/payments/find: success without a model".into(),
            )),
        }
    }
}

/// Drops the URL from reqwest errors (it carries nothing secret, but keeps logs short).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "");
    }
    s
}

fn decimal(m: Money) -> Value {
    // JSON number with two decimals, exact: serde_json's arbitrary precision is off, so write
    // it as a number literal via from_str.
    serde_json::from_str(&format_minor(m.minor)).unwrap_or(Value::Null)
}

/// Tells the four response shapes apart (see docs/cloudpayments-api.md §2.1).
fn interpret_payment(env: Envelope, currency: Currency) -> Result<ChargeResult, GatewayError> {
    let model = env.model.unwrap_or(Value::Null);
    if env.success {
        let t = parse_transaction(&model, currency)?;
        return Ok(ChargeResult::Approved { transaction: t });
    }
    if let Some(msg) = env.message.filter(|m| !m.is_empty()) {
        return Err(GatewayError::Rejected(msg));
    }
    let obj = model
        .as_object()
        .ok_or_else(|| GatewayError::Rejected("declined without a model".into()))?;
    if get_ci(obj, "ReasonCode").is_some() {
        let t = parse_transaction(&model, currency)?;
        return Err(GatewayError::Declined(Box::new(t)));
    }
    if let (Some(acs), Some(pareq)) = (get_ci(obj, "AcsUrl"), get_ci(obj, "PaReq")) {
        let id = get_ci(obj, "TransactionId")
            .and_then(Value::as_i64)
            .ok_or_else(|| GatewayError::Unavailable("3-DS answer without TransactionId".into()))?;
        return Ok(ChargeResult::ThreeDsRequired {
            gateway_transaction_id: GatewayTransactionId(id),
            acs_url: acs.as_str().unwrap_or_default().to_string(),
            pa_req: pareq.as_str().unwrap_or_default().to_string(),
        });
    }
    Err(GatewayError::Unavailable(
        "unrecognised payment response shape".into(),
    ))
}

fn get_ci<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn str_field(obj: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    get_ci(obj, key).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn parse_transaction(
    model: &Value,
    fallback_currency: Currency,
) -> Result<GatewayTransaction, GatewayError> {
    let bad = |what: &str| GatewayError::Unavailable(format!("transaction model: {what}"));
    let obj = model.as_object().ok_or_else(|| bad("not an object"))?;
    let id = get_ci(obj, "TransactionId")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("TransactionId"))?;
    let amount_text = get_ci(obj, "Amount")
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .ok_or_else(|| bad("Amount"))?;
    let minor = parse_decimal_minor(&amount_text).map_err(|e| bad(&e.to_string()))?;
    let currency = str_field(obj, "Currency")
        .and_then(|c| Currency::parse(&c).ok())
        .unwrap_or(fallback_currency);
    let first6 = str_field(obj, "CardFirstSix");
    let last4 = str_field(obj, "CardLastFour");
    let card_mask = card_mask(first6.as_deref(), last4.as_deref());
    Ok(GatewayTransaction {
        gateway_transaction_id: GatewayTransactionId(id),
        status: str_field(obj, "Status").unwrap_or_default(),
        reason_code: get_ci(obj, "ReasonCode")
            .and_then(Value::as_i64)
            .unwrap_or(0) as i32,
        reason: str_field(obj, "Reason").unwrap_or_default(),
        amount: Money { minor, currency },
        token: str_field(obj, "Token")
            .filter(|t| !t.is_empty())
            .map(billing_domain::CardToken::new),
        card_mask,
        card_exp: str_field(obj, "CardExpDate"),
        card_type: str_field(obj, "CardType"),
    })
}

/// `"4000 00** **** 3055"` from the first six and last four digits the gateway reports. Works
/// on characters, not bytes: the values come from the network and may be anything.
fn card_mask(first6: Option<&str>, last4: Option<&str>) -> Option<String> {
    match (first6, last4) {
        (Some(f), Some(l)) => {
            let head: String = f.chars().take(4).collect();
            let rest: String = f.chars().skip(4).collect();
            Some(format!("{head} {rest}** **** {l}"))
        }
        (None, Some(l)) => Some(format!("**** {l}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: Value) -> Envelope {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn four_shapes() {
        let approved = env(
            json!({"Success":true,"Message":null,"Model":{"TransactionId":5,"Amount":299.0,"Currency":"RUB","Status":"Completed","ReasonCode":0,"Reason":"Approved","Token":"tk_x","CardFirstSix":"400000","CardLastFour":"3055"}}),
        );
        match interpret_payment(approved, Currency::Rub).unwrap() {
            ChargeResult::Approved { transaction } => {
                assert_eq!(transaction.amount.minor, 29900);
                assert_eq!(
                    transaction.card_mask.as_deref(),
                    Some("4000 00** **** 3055")
                );
            }
            other => panic!("{other:?}"),
        }
        let declined = env(
            json!({"Success":false,"Message":null,"Model":{"TransactionId":6,"Amount":10,"Status":"Declined","ReasonCode":5051,"Reason":"InsufficientFunds"}}),
        );
        assert!(
            matches!(interpret_payment(declined, Currency::Rub), Err(GatewayError::Declined(t)) if t.reason_code == 5051)
        );
        let three_ds = env(
            json!({"Success":false,"Message":null,"Model":{"TransactionId":7,"PaReq":"x","AcsUrl":"http://acs"}}),
        );
        assert!(matches!(
            interpret_payment(three_ds, Currency::Rub),
            Ok(ChargeResult::ThreeDsRequired { .. })
        ));
        let bad = env(json!({"Success":false,"Message":"Amount is required"}));
        assert!(
            matches!(interpret_payment(bad, Currency::Rub), Err(GatewayError::Rejected(m)) if m == "Amount is required")
        );
        assert_eq!(
            decimal(Money {
                minor: 29950,
                currency: Currency::Rub
            })
            .to_string(),
            "299.5"
        );
    }
}
