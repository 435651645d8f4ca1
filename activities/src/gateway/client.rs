//! HTTP plumbing of the CloudPayments client: base URL, Basic auth with the API secret, the
//! timeout, `X-Request-ID`, sending, the mapping of every HTTP status, and reading the envelope.
//!
//! Kept apart from the wire shapes (`wire`) and their meaning (`transformers`), as hyperswitch
//! keeps `connectors/<name>.rs` apart from `<name>/transformers.rs`: this file knows how a call
//! travels, not what it says.

use super::json::from_body;
use super::transformers;
use super::wire::{
    Call, CardsChargeRequest, PaymentsFindRequest, PaymentsGetRequest, Post3dsRequest,
    TokensChargeRequest,
};
use super::GatewayError;
use billing_domain::messages::FoundPayment;
use billing_domain::messages::{
    ChargeResult, CryptogramCharge, GatewayTransaction, Post3ds, TokenCharge,
};
use billing_domain::{Currency, GatewayTransactionId, InvoiceId};
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

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

impl GatewayClient {
    pub fn new(settings: GatewaySettings) -> Result<Self, GatewayError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5).min(settings.timeout))
            .pool_max_idle_per_host(64)
            // A card payment is never re-sent to another URL (reqwest would even turn the POST
            // into a GET): a 3xx is mapped below like any other status.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GatewayError::Unavailable(format!("http client: {e}")))?;
        Ok(Self { http, settings })
    }

    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }

    /// `/payments/cards/charge`: one-stage payment by cryptogram, once per `request_key`.
    pub async fn charge_cryptogram(
        &self,
        c: &CryptogramCharge,
    ) -> Result<ChargeResult, GatewayError> {
        let env = self
            .call(&CardsChargeRequest::from(c), Some(&c.request_key))
            .await?;
        transformers::charge_result(CardsChargeRequest::PATH, env, c.amount.currency)
    }

    /// `/payments/tokens/charge`: a scheduled, merchant-initiated renewal by saved token.
    pub async fn charge_token(&self, c: &TokenCharge) -> Result<GatewayTransaction, GatewayError> {
        let env = self
            .call(&TokensChargeRequest::from(c), Some(&c.request_key))
            .await?;
        transformers::final_transaction(TokensChargeRequest::PATH, env, c.amount.currency)
    }

    /// `/payments/cards/post3ds`: finishes a 3-D Secure payment with the bank's PaRes.
    pub async fn post3ds(&self, req: &Post3ds) -> Result<GatewayTransaction, GatewayError> {
        // Stable per (transaction, answer): a retry of this activity replays, another PaRes is a
        // new request. The PaRes itself never leaves in the key, only a hash of it.
        let answer = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            req.answer.pa_res.expose().as_bytes(),
        );
        let key = format!("3ds-{}-{answer}", req.answer.gateway_transaction_id);
        let env = self.call(&Post3dsRequest::from(req), Some(&key)).await?;
        transformers::final_transaction(Post3dsRequest::PATH, env, req.currency)
    }

    /// `/payments/find`: the latest transaction with this InvoiceId, if any. A read: no
    /// `X-Request-ID`, so every call sees the current state.
    pub async fn find_by_invoice(
        &self,
        invoice: InvoiceId,
        currency: Currency,
    ) -> Result<Option<GatewayTransaction>, GatewayError> {
        let env = self.call(&PaymentsFindRequest::from(invoice), None).await?;
        transformers::found(PaymentsFindRequest::PATH, env, invoice, currency)
    }

    /// `/payments/get`: one transaction by id, with the invoice and account it was made for
    /// (an operator's repair adopts it only if they match).
    pub async fn get_payment(
        &self,
        id: GatewayTransactionId,
        currency: Currency,
    ) -> Result<Option<FoundPayment>, GatewayError> {
        let env = self
            .call(
                &PaymentsGetRequest {
                    transaction_id: id.0,
                },
                None,
            )
            .await?;
        transformers::got(PaymentsGetRequest::PATH, env, currency)
    }

    /// Sends one call and reads its envelope. Errors name the path and the HTTP status, never
    /// the body, the URL's credentials or a secret of the request.
    async fn call<C: Call>(
        &self,
        request: &C,
        request_id: Option<&str>,
    ) -> Result<C::Response, GatewayError> {
        let path = C::PATH;
        let body = serde_json::to_vec(request).map_err(|e| {
            GatewayError::Rejected(format!(
                "{path}: the request cannot be written as JSON: {e}"
            ))
        })?;
        let url = format!("{}{path}", self.settings.base_url.trim_end_matches('/'));
        let mut req = self
            .http
            .post(url)
            .basic_auth(
                &self.settings.public_id,
                Some(self.settings.api_secret.expose_secret()),
            )
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(body);
        if let Some(id) = request_id {
            req = req.header("X-Request-ID", id);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport(path, "sending the request", &e))?;
        let status = resp.status().as_u16();
        check_status(path, status, resp.headers())?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport(path, "reading the answer", &e))?;
        from_body(&bytes).map_err(|e| {
            GatewayError::Unavailable(format!(
                "{path}: HTTP {status} with an unreadable body: {e}"
            ))
        })
    }
}

/// What an HTTP status says about a call, decided for every status. Business outcomes,
/// declines and malformed-request messages included, all come as HTTP 200 (docs §1), so any
/// other status comes from the HTTP layer of the gateway or of a proxy in between; the question
/// for each is whether the request may have been processed.
/// - unknown outcome ([`GatewayError::Unavailable`]): retry with the same `X-Request-ID`, then
///   reconcile with `/payments/find`;
/// - [`GatewayError::RateLimited`]: refused before processing, retry later;
/// - [`GatewayError::Unauthorized`]: our terminal configuration is wrong;
/// - [`GatewayError::Rejected`]: refused before processing, and the same request will be refused
///   again.
fn check_status(path: &'static str, status: u16, headers: &HeaderMap) -> Result<(), GatewayError> {
    let unknown = |why: &str| {
        Err(GatewayError::Unavailable(format!(
            "{path}: HTTP {status} {}, outcome unknown: {why}",
            reason(status)
        )))
    };
    match status {
        200..=299 => Ok(()),
        // hyper consumes interim answers; a final 1xx is a broken peer after the request left.
        100..=199 => unknown("an interim status as the final answer"),
        // The API never redirects; 303 after a POST even means "done, look there". Not
        // followed (see `new`), and not proof that nothing happened.
        300..=399 => unknown("a redirect, not followed (check the base URL)"),
        // 401: a missing or wrong Basic header (docs §1). 403: the terminal is refused (disabled,
        // IP not allowed). 407: a proxy wants our credentials. Refused before processing; an
        // operator must fix the configuration.
        401 | 403 | 407 => Err(GatewayError::Unauthorized { status }),
        // A proxy gave up waiting for the gateway, which may still have charged.
        408 => unknown("a proxy timed out waiting for the gateway"),
        // Conflict on an idempotency key: a request with this X-Request-ID is still running.
        // Retrying the same key later returns its answer.
        409 => unknown("the same X-Request-ID may still be in progress"),
        // 421: sent to the wrong server, 425: refused as replayable early data; both say
        // "retry", which is safe with the same X-Request-ID.
        421 | 425 => unknown("the server asks for a retry"),
        429 => Err(GatewayError::RateLimited {
            path,
            retry_after: retry_after(headers),
        }),
        // Our request is wrong at the HTTP level: 400 malformed, 404 no such API method (check
        // the base URL), 405 not a POST, 413 too large, 415 a content type it does not take,
        // 422 unprocessable, and every other client error (402, 406, 410–420, 423, 424,
        // 426–428, 431, 451, …). A 4xx is a refusal before any business logic, not a failure
        // half way, and sending the same request again gets the same answer.
        400 | 402 | 404..=406 | 410..=420 | 422..=424 | 426..=428 | 430..=499 => Err(
            GatewayError::Rejected(format!("{path}: HTTP {status} {}", reason(status))),
        ),
        // The gateway or a proxy failed, possibly after the payment was taken (501 and 505
        // included: a proxy may answer them for a gateway that did get the request).
        500..=599 => unknown("server error"),
        // Not an HTTP status at all: nothing is known.
        0..=99 | 600..=u16::MAX => unknown("not an HTTP status"),
    }
}

/// `"Not Found"` for 404: the standard reason phrase, for the error message.
fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("(no standard reason)")
}

/// `Retry-After` in seconds, when the gateway sends it (not documented; [TS] reads it).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

/// A request that failed in transport. Connection errors, timeouts and a connection cut before
/// the answer all leave the outcome unknown once the request may have left.
fn transport(path: &str, stage: &str, e: &reqwest::Error) -> GatewayError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    GatewayError::Unavailable(format!("{path}: {kind} {stage}: {}", describe(e)))
}

/// The error and its causes (reqwest's own message says little: "error sending request"),
/// without the URL.
fn describe(e: &reqwest::Error) -> String {
    let mut text = match e.url() {
        Some(url) => e.to_string().replace(&format!(" for url ({url})"), ""),
        None => e.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16) -> &'static str {
        match check_status("/p", status, &HeaderMap::new()) {
            Ok(()) => "parse",
            Err(GatewayError::Unavailable(_)) => "unknown",
            Err(GatewayError::RateLimited { .. }) => "rate limited",
            Err(GatewayError::Unauthorized { .. }) => "credentials",
            Err(GatewayError::Rejected(_)) => "rejected",
            Err(GatewayError::Declined(_)) => "declined",
        }
    }

    #[test]
    fn every_status_is_mapped_on_purpose() {
        let table = [
            (200, "parse"),
            (201, "parse"),
            (204, "parse"),
            (100, "unknown"),
            (301, "unknown"),
            (303, "unknown"),
            (400, "rejected"),
            (401, "credentials"),
            (402, "rejected"),
            (403, "credentials"),
            (404, "rejected"),
            (405, "rejected"),
            (407, "credentials"),
            (408, "unknown"),
            (409, "unknown"),
            (410, "rejected"),
            (413, "rejected"),
            (415, "rejected"),
            (421, "unknown"),
            (422, "rejected"),
            (425, "unknown"),
            (429, "rate limited"),
            (451, "rejected"),
            (499, "rejected"),
            (500, "unknown"),
            (501, "unknown"),
            (502, "unknown"),
            (503, "unknown"),
            (504, "unknown"),
            (599, "unknown"),
            (600, "unknown"),
            (999, "unknown"),
        ];
        for (status, expected) in table {
            assert_eq!(outcome(status), expected, "HTTP {status}");
        }
        for status in 0..=u16::MAX {
            assert_ne!(outcome(status), "declined", "HTTP {status}");
        }
    }

    #[test]
    fn rate_limits_carry_the_retry_after_hint() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        match check_status("/p", 429, &headers) {
            Err(e @ GatewayError::RateLimited { .. }) => {
                assert!(
                    matches!(e, GatewayError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3))
                );
                assert_eq!(
                    e.to_string(),
                    "/p: rate limited by the gateway (HTTP 429), retry after 3s"
                );
            }
            other => panic!("{other:?}"),
        }
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert!(matches!(
            check_status("/p", 429, &headers),
            Err(GatewayError::RateLimited {
                retry_after: None,
                ..
            })
        ));
    }

    #[test]
    fn settings_debug_masks_the_secret() {
        let s = GatewaySettings {
            base_url: "http://gw".into(),
            public_id: "pk_1".into(),
            api_secret: SecretString::from("very-secret-value"),
            timeout: Duration::from_secs(1),
        };
        let text = format!("{s:?}");
        assert!(
            !text.contains("very-secret-value") && text.contains("pk_1"),
            "{text}"
        );
    }
}
