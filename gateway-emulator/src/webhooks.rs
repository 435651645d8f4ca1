//! Webhooks (notifications): form-encoded like .NET, signed with `Content-HMAC`/`X-Content-HMAC`,
//! retried with backoff until the receiver answers `{"code":0}`.

use crate::model::{reason, webhook_date, Transaction};
use crate::money::format_minor;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// Notification types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Kind {
    /// Before a payment; a non-zero answer declines it.
    Check,
    /// After a successful payment or authorisation.
    Pay,
    /// After a declined payment.
    Fail,
    /// After a two-stage payment is captured.
    Confirm,
    /// After a refund.
    Refund,
    /// After an authorisation is voided.
    Cancel,
}

impl Kind {
    /// Parses a type name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Check,
            Self::Pay,
            Self::Fail,
            Self::Confirm,
            Self::Refund,
            Self::Cancel,
        ]
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
    }
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Check => "Check",
            Self::Pay => "Pay",
            Self::Fail => "Fail",
            Self::Confirm => "Confirm",
            Self::Refund => "Refund",
            Self::Cancel => "Cancel",
        }
    }
}

/// One configured notification target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookConfig {
    /// Terminal.
    pub public_id: String,
    /// Type.
    pub kind: Kind,
    /// Receiver URL (POST).
    pub url: String,
    /// Delays between attempts; the last one repeats. Default 1 s, 2 s, 5 s, 10 s, 30 s.
    #[serde(default)]
    pub retry_delays_ms: Option<Vec<u64>>,
    /// Attempts at most (default 100, as the real gateway).
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

/// Default delays between attempts (the real gateway uses minutes; seconds keep tests short).
pub const DEFAULT_RETRY_DELAYS_MS: [u64; 5] = [1_000, 2_000, 5_000, 10_000, 30_000];

/// One delivery attempt, as shown by `GET /_emulator/webhooks/deliveries`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    /// Delivery id (same for all attempts of one notification).
    pub delivery_id: u64,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Terminal.
    pub public_id: String,
    /// Type.
    pub kind: Kind,
    /// Receiver.
    pub url: String,
    /// Transaction concerned.
    pub transaction_id: i64,
    /// The form body exactly as sent.
    pub body: String,
    /// `Content-HMAC` header.
    pub content_hmac: String,
    /// `X-Content-HMAC` header.
    pub x_content_hmac: String,
    /// HTTP status, if an answer came.
    pub http_status: Option<u16>,
    /// `code` of the answer, if it was JSON.
    pub response_code: Option<i64>,
    /// Transport error, if any.
    pub error: Option<String>,
    /// Whether this attempt was accepted (`{"code":0}`).
    pub delivered: bool,
    /// When the attempt finished (ISO, UTC).
    pub at: String,
}

/// Log of attempts and the HTTP client that makes them.
pub struct Webhooks {
    client: reqwest::Client,
    next_id: AtomicU64,
    /// Attempts, oldest first (kept for inspection; bounded).
    pub deliveries: Mutex<Vec<Delivery>>,
}

const MAX_LOG: usize = 10_000;

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            next_id: AtomicU64::new(0),
            deliveries: Mutex::new(Vec::new()),
        }
    }
}

/// .NET `HttpUtility.UrlEncode`: lower-case escapes, `+` for space, `-_.!*()` kept.
pub fn dotnet_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'*'
            | b'('
            | b')' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

/// The encoded body and the decoded text `X-Content-HMAC` signs.
pub fn encode_form(fields: &[(&str, String)]) -> (String, String) {
    let enc: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", dotnet_urlencode(k), dotnet_urlencode(v)))
        .collect();
    let dec: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    (enc.join("&"), dec.join("&"))
}

/// base64(HMAC-SHA256(secret, message)).
pub fn sign(secret: &str, message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(message.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// What a Check handler said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAnswer {
    /// `{"code":0}`: go on.
    Accept,
    /// Decline with this reason code (3001–3008).
    Decline(u32),
}

impl Webhooks {
    fn log(&self, d: Delivery) {
        let mut log = self.deliveries.lock();
        if log.len() >= MAX_LOG {
            log.drain(..MAX_LOG / 10);
        }
        log.push(d);
    }

    async fn attempt(
        &self,
        url: &str,
        body: &str,
        c_hmac: &str,
        x_hmac: &str,
    ) -> (Option<u16>, Option<i64>, Option<String>) {
        let res = self
            .client
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Content-HMAC", c_hmac)
            .header("X-Content-HMAC", x_hmac)
            .body(body.to_owned())
            .send()
            .await;
        match res {
            Err(e) => (None, None, Some(e.to_string())),
            Ok(r) => {
                let status = r.status().as_u16();
                let code = r.json::<serde_json::Value>().await.ok().and_then(|v| {
                    v.get("code")
                        .or_else(|| v.get("Code"))
                        .and_then(|c| c.as_i64())
                });
                (Some(status), code, None)
            }
        }
    }

    /// Calls a Check handler once (synchronously, before the payment is decided).
    pub async fn check(
        &self,
        cfg: &WebhookConfig,
        secret: &str,
        txn_id: i64,
        fields: Vec<(&str, String)>,
    ) -> CheckAnswer {
        let (body, decoded) = encode_form(&fields);
        let (c, x) = (sign(secret, &body), sign(secret, &decoded));
        let (status, code, error) = self.attempt(&cfg.url, &body, &c, &x).await;
        let answer = match (status, code) {
            (None, _) => CheckAnswer::Decline(3006),
            (Some(s), _) if s == 404 || s >= 500 => CheckAnswer::Decline(3007),
            (Some(_), Some(0)) => CheckAnswer::Accept,
            (Some(_), Some(10)) => CheckAnswer::Decline(3001),
            (Some(_), Some(11)) => CheckAnswer::Decline(3002),
            (Some(_), Some(12)) => CheckAnswer::Decline(3003),
            (Some(_), Some(13)) => CheckAnswer::Decline(3008),
            (Some(_), Some(20)) => CheckAnswer::Decline(3004),
            (Some(_), _) => CheckAnswer::Decline(3005),
        };
        self.log(Delivery {
            delivery_id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            attempt: 1,
            public_id: cfg.public_id.clone(),
            kind: cfg.kind,
            url: cfg.url.clone(),
            transaction_id: txn_id,
            body,
            content_hmac: c,
            x_content_hmac: x,
            http_status: status,
            response_code: code,
            error,
            delivered: answer == CheckAnswer::Accept,
            at: crate::model::iso_date(crate::store::now_ms()),
        });
        answer
    }

    /// Sends a notification in the background, retrying until `{"code":0}`.
    pub fn send(
        self: &Arc<Self>,
        cfg: WebhookConfig,
        secret: String,
        txn_id: i64,
        fields: Vec<(&'static str, String)>,
    ) {
        let me = self.clone();
        let (body, decoded) = encode_form(&fields);
        let c = sign(&secret, &body);
        let x = sign(&secret, &decoded);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        tokio::spawn(async move {
            let delays = cfg
                .retry_delays_ms
                .clone()
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| DEFAULT_RETRY_DELAYS_MS.to_vec());
            let max = cfg.max_attempts.unwrap_or(100).max(1);
            for attempt in 1..=max {
                let (status, code, error) = me.attempt(&cfg.url, &body, &c, &x).await;
                let delivered = status.is_some_and(|s| (200..300).contains(&s)) && code == Some(0);
                me.log(Delivery {
                    delivery_id: id,
                    attempt,
                    public_id: cfg.public_id.clone(),
                    kind: cfg.kind,
                    url: cfg.url.clone(),
                    transaction_id: txn_id,
                    body: body.clone(),
                    content_hmac: c.clone(),
                    x_content_hmac: x.clone(),
                    http_status: status,
                    response_code: code,
                    error,
                    delivered,
                    at: crate::model::iso_date(crate::store::now_ms()),
                });
                if delivered {
                    return;
                }
                let i = (attempt as usize - 1).min(delays.len() - 1);
                tokio::time::sleep(Duration::from_millis(delays[i])).await;
            }
        });
    }
}

fn s(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// Adds fields the emulator always sends empty (it has no geo-IP, fees or custom fields).
fn blank(f: &mut Vec<(&'static str, String)>, names: &[&'static str]) {
    f.extend(names.iter().map(|n| (*n, String::new())));
}

/// `InvoiceId`, `AccountId`, `Email`, `Data`, `Rrn`: how refunds and cancellations end.
fn payer(f: &mut Vec<(&'static str, String)>, t: &Transaction) {
    f.push(("InvoiceId", s(&t.invoice_id)));
    f.push(("AccountId", s(&t.account_id)));
    f.push(("Email", s(&t.email)));
    f.push(("Data", s(&t.json_data)));
    f.push(("Rrn", s(&t.rrn)));
}

/// The form fields of a notification, in the documented order.
pub fn webhook_fields(kind: Kind, t: &Transaction, two_stage: bool) -> Vec<(&'static str, String)> {
    let amount = format_minor(t.amount_minor);
    let date = webhook_date(t.created_ms);
    let mut f: Vec<(&'static str, String)> = Vec::with_capacity(48);
    f.push(("TransactionId", t.id.to_string()));
    match kind {
        Kind::Refund => {
            let paid = t.original_transaction_id.unwrap_or_default();
            f.push(("PaymentTransactionId", paid.to_string()));
            f.push(("Amount", amount));
            f.push(("DateTime", date));
            f.push(("OperationType", "Refund".into()));
            payer(&mut f, t);
            blank(&mut f, &["CustomFields"]);
            return f;
        }
        Kind::Cancel => {
            f.push(("Amount", amount));
            f.push(("DateTime", date));
            payer(&mut f, t);
            return f;
        }
        Kind::Check | Kind::Pay | Kind::Confirm | Kind::Fail => {}
    }
    f.push(("Amount", amount.clone()));
    f.push(("Currency", t.currency.clone()));
    f.push(("PaymentAmount", amount));
    f.push(("PaymentCurrency", t.currency.clone()));
    f.push(("OperationType", "Payment".into()));
    f.push(("InvoiceId", s(&t.invoice_id)));
    f.push(("AccountId", s(&t.account_id)));
    blank(&mut f, &["SubscriptionId"]);
    f.push(("Name", s(&t.name)));
    f.push(("Email", s(&t.email)));
    f.push(("DateTime", date));
    f.push(("IpAddress", s(&t.ip_address)));
    blank(
        &mut f,
        &[
            "IpCountry",
            "IpCity",
            "IpRegion",
            "IpDistrict",
            "IpLatitude",
            "IpLongitude",
        ],
    );
    f.push(("CardFirstSix", t.card.first_six.clone()));
    f.push(("CardLastFour", t.card.last_four.clone()));
    f.push(("CardType", t.card.card_type.name().into()));
    f.push(("CardExpDate", t.card.exp_text()));
    f.push(("Issuer", "CloudPayments".into()));
    f.push(("IssuerBankCountry", "RU".into()));
    f.push(("Description", s(&t.description)));
    f.push(("TestMode", "1".into()));
    match kind {
        Kind::Check => {
            let status = if two_stage { "Authorized" } else { "Completed" };
            f.push(("Status", status.into()));
            f.push(("Data", s(&t.json_data)));
            blank(&mut f, &["CardProduct", "PaymentMethod"]);
        }
        Kind::Pay | Kind::Confirm => {
            f.push(("Status", t.status.name().into()));
            f.push(("GatewayName", "Test".into()));
            f.push(("AuthCode", s(&t.auth_code)));
            f.push(("Token", s(&t.token)));
            f.push(("Data", s(&t.json_data)));
            f.push(("TotalFee", "0.00".into()));
            blank(&mut f, &["CardProduct", "PaymentMethod"]);
            f.push(("Rrn", s(&t.rrn)));
            blank(
                &mut f,
                &["CustomFields", "FallBackScenarioDeclinedTransactionId"],
            );
            for fee in [
                "VatAboveTotalFee",
                "ProcessorAndPartnerFee",
                "VatWithinProcessorFee",
            ] {
                f.push((fee, "0.00".into()));
            }
        }
        Kind::Fail => {
            let (reason, _, _) = reason(t.reason_code);
            f.push(("Status", "Declined".into()));
            f.push(("StatusCode", "5".into()));
            f.push(("Reason", reason.into()));
            f.push(("ReasonCode", t.reason_code.to_string()));
            f.push(("Token", s(&t.token)));
            f.push(("Data", s(&t.json_data)));
            blank(
                &mut f,
                &[
                    "PaymentMethod",
                    "Rrn",
                    "CustomFields",
                    "FallBackScenarioDeclinedTransactionId",
                    "RetryAfter",
                    "ProviderMessage",
                ],
            );
        }
        Kind::Refund | Kind::Cancel => {}
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotnet_encoding_is_lower_case() {
        assert_eq!(dotnet_urlencode("a b@c/d:С"), "a+b%40c%2fd%3a%d0%a1");
    }

    fn sample() -> Transaction {
        use crate::model::{CardInfo, OpType, Status};
        let packet = crate::cryptogram::emu1(crate::cards::NO_3DS_SUCCESS, 1, 2030, "123", None);
        let card = crate::cryptogram::parse(&packet).expect("a valid EMU1 packet");
        let behaviour = crate::cards::behaviour(&card.first_six, &card.last_four);
        Transaction {
            id: 7,
            public_id: "pk".into(),
            op_type: OpType::Payment,
            amount_minor: 1234,
            currency: "RUB".into(),
            status: Status::Completed,
            reason_code: 0,
            invoice_id: Some("inv".into()),
            account_id: Some("acc".into()),
            email: None,
            description: None,
            ip_address: None,
            name: None,
            json_data: None,
            culture_name: None,
            card: CardInfo::new(&card, &behaviour),
            created_ms: 0,
            auth_ms: None,
            confirm_ms: None,
            token: None,
            refunded_minor: 0,
            original_transaction_id: Some(3),
            tr_initiator_code: None,
            payment_scheduled: None,
            three_ds: None,
            auth_code: None,
            rrn: Some("123456789012".into()),
            pending_until_ms: None,
        }
    }

    #[test]
    fn notification_fields_keep_the_documented_order() {
        let names = |kind| -> Vec<&'static str> {
            webhook_fields(kind, &sample(), false)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        let payment = "TransactionId Amount Currency PaymentAmount PaymentCurrency OperationType \
            InvoiceId AccountId SubscriptionId Name Email DateTime IpAddress IpCountry IpCity \
            IpRegion IpDistrict IpLatitude IpLongitude CardFirstSix CardLastFour CardType \
            CardExpDate Issuer IssuerBankCountry Description TestMode";
        let expect = |tail: &'static str| -> Vec<&'static str> {
            payment
                .split_whitespace()
                .chain(tail.split_whitespace())
                .collect()
        };
        assert_eq!(
            names(Kind::Check),
            expect("Status Data CardProduct PaymentMethod")
        );
        let paid = "Status GatewayName AuthCode Token Data TotalFee CardProduct PaymentMethod Rrn \
            CustomFields FallBackScenarioDeclinedTransactionId VatAboveTotalFee \
            ProcessorAndPartnerFee VatWithinProcessorFee";
        assert_eq!(names(Kind::Pay), expect(paid));
        assert_eq!(names(Kind::Confirm), expect(paid));
        assert_eq!(
            names(Kind::Fail),
            expect(
                "Status StatusCode Reason ReasonCode Token Data PaymentMethod Rrn CustomFields \
                 FallBackScenarioDeclinedTransactionId RetryAfter ProviderMessage"
            )
        );
        let words = |s: &'static str| s.split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            names(Kind::Refund),
            words(
                "TransactionId PaymentTransactionId Amount DateTime OperationType InvoiceId \
                 AccountId Email Data Rrn CustomFields"
            )
        );
        assert_eq!(
            names(Kind::Cancel),
            words("TransactionId Amount DateTime InvoiceId AccountId Email Data Rrn")
        );
        let fail = webhook_fields(Kind::Fail, &sample(), false);
        assert!(
            fail.contains(&("Rrn", String::new())),
            "no RRN on a decline"
        );
        let refund = webhook_fields(Kind::Refund, &sample(), false);
        assert_eq!(refund[1], ("PaymentTransactionId", "3".to_owned()));
        assert_eq!(refund[2], ("Amount", "12.34".to_owned()));
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // HMAC-SHA256("pass", "") in base64, computed independently.
        assert_eq!(
            sign("pass", ""),
            "d4WGdQWhKVRZ5xxTq5TKaBjeM2aDZUMresqAjOAjoos="
        );
    }
}
