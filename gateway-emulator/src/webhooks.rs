//! Webhooks (notifications): form-encoded like .NET, signed with `Content-HMAC`/`X-Content-HMAC`,
//! retried with backoff until the receiver answers `{"code":0}`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Notification types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotnet_encoding_is_lower_case() {
        assert_eq!(dotnet_urlencode("a b@c/d:С"), "a+b%40c%2fd%3a%d0%a1");
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
