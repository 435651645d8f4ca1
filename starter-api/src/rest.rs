//! REST API (axum) with an OpenAPI document (utoipa) and an offline docs page at `/api/docs`.

use crate::auth::AuthError;
use crate::service::{account_named, ApiError, BillingApi, StartCommand, StartFields};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use billing_domain::messages::{PaymentOutcome, SubscriptionView};
use billing_domain::SubscriptionId;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code: invalid_argument, unauthenticated, permission_denied, not_found,
    /// already_exists, failed_precondition, unavailable, internal.
    pub error: &'static str,
    /// What went wrong and what to fix.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::InvalidArgument { field, message } => (
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                format!("{field}: {message}"),
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::AlreadyExists(m) => (StatusCode::CONFLICT, "already_exists", m),
            ApiError::FailedPrecondition(m) => (StatusCode::CONFLICT, "failed_precondition", m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_string(),
                )
            }
            ApiError::Unauthenticated(e) => {
                // RFC 6750: a challenge on every 401; `invalid_token` when one was sent.
                let challenge = match e {
                    AuthError::Missing => "Bearer".to_string(),
                    AuthError::Invalid(_) => "Bearer error=\"invalid_token\"".to_string(),
                };
                return (
                    StatusCode::UNAUTHORIZED,
                    [(axum::http::header::WWW_AUTHENTICATE, challenge)],
                    Json(ErrorBody {
                        error: "unauthenticated",
                        message: e.to_string(),
                    }),
                )
                    .into_response();
            }
            ApiError::PermissionDenied(m) => (StatusCode::FORBIDDEN, "permission_denied", m),
        };
        (
            status,
            Json(ErrorBody {
                error: code,
                message,
            }),
        )
            .into_response()
    }
}

#[derive(Serialize, ToSchema)]
pub struct TariffDto {
    pub code: String,
    pub name: String,
    /// Integer minor units (kopecks).
    pub amount_minor: i64,
    pub currency: String,
    pub period_unit: String,
    pub period_count: u32,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionDto {
    pub subscription_id: String,
    pub user_id: String,
    pub status: String,
    pub payment_state: String,
    pub tariff_code: String,
    pub amount_minor: i64,
    pub currency: String,
    pub current_period_start: Option<String>,
    pub current_period_end: Option<String>,
    pub next_charge_at: Option<String>,
    pub failed_attempts: u32,
    pub last_decline_code: Option<i32>,
    /// Why the subscription needs an operator (status `needs_attention`).
    pub attention: Option<String>,
    /// What the last change did when it is not what was asked (e.g. a cancel that arrived
    /// while a renewal was being paid: the paid period is kept).
    pub note: Option<String>,
}

impl From<SubscriptionView> for SubscriptionDto {
    fn from(v: SubscriptionView) -> Self {
        Self {
            subscription_id: v.subscription_id.to_string(),
            user_id: v.account_id.to_string(),
            status: v.status.as_str().into(),
            payment_state: v.payment_state.as_str().into(),
            tariff_code: v.tariff_code.to_string(),
            amount_minor: v.price.minor,
            currency: v.price.currency.code().into(),
            current_period_start: v.current_period_start.map(|t| t.to_rfc3339()),
            current_period_end: v.current_period_end.map(|t| t.to_rfc3339()),
            next_charge_at: v.next_charge_at.map(|t| t.to_rfc3339()),
            failed_attempts: v.failed_attempts,
            last_decline_code: v.last_decline_code,
            attention: v.attention,
            note: v.note,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct StartRequest {
    /// The user to subscribe; empty or omitted: the token's own user (a `service` or `admin`
    /// token must name one).
    #[serde(default)]
    pub user_id: String,
    pub tariff_code: String,
    pub card_cryptogram: String,
    pub cardholder_name: String,
    pub payer_ip: String,
    pub email: String,
    pub client_request_id: String,
}

/// The outcome of a start: `paid`, `declined`, `three_ds_required` or `expired` (see the gRPC
/// contract).
#[derive(Serialize, ToSchema, Default)]
pub struct StartResponse {
    /// `paid`, `declined`, `three_ds_required` or `expired`.
    pub outcome: String,
    pub subscription_id: String,
    pub invoice_id: Option<String>,
    pub transaction_id: Option<String>,
    pub gateway_transaction_id: Option<i64>,
    pub access_until: Option<String>,
    pub reason_code: Option<i32>,
    pub message: Option<String>,
    /// 3-D Secure: post `PaReq`, `MD` and `TermUrl` to this URL from the browser.
    pub acs_url: Option<String>,
    pub pa_req: Option<String>,
    pub md: Option<String>,
    pub term_url: Option<String>,
}

impl StartResponse {
    /// `Unavailable` never reaches here (the service turns it into an error); if it did, it is
    /// a 503, not an answer.
    fn from_outcome(o: PaymentOutcome, term_url: &str) -> Result<Self, ApiError> {
        Ok(match o {
            PaymentOutcome::Paid {
                subscription_id,
                invoice_id,
                transaction_id,
                gateway_transaction_id,
                access_until,
                ..
            } => Self {
                outcome: "paid".into(),
                subscription_id: subscription_id.to_string(),
                invoice_id: Some(invoice_id.to_string()),
                transaction_id: Some(transaction_id.to_string()),
                gateway_transaction_id: Some(gateway_transaction_id.0),
                access_until: Some(access_until.to_rfc3339()),
                reason_code: None,
                message: None,
                ..Default::default()
            },
            PaymentOutcome::Declined {
                subscription_id,
                invoice_id,
                gateway_transaction_id,
                reason_code,
                message,
            } => Self {
                outcome: "declined".into(),
                subscription_id: subscription_id.to_string(),
                invoice_id: Some(invoice_id.to_string()),
                transaction_id: None,
                gateway_transaction_id: gateway_transaction_id.map(|g| g.0),
                access_until: None,
                reason_code: Some(reason_code),
                message: Some(message),
                ..Default::default()
            },
            PaymentOutcome::Unavailable { message, .. } => {
                return Err(ApiError::Unavailable(message))
            }
            PaymentOutcome::ThreeDsRequired {
                subscription_id,
                invoice_id,
                gateway_transaction_id,
                acs_url,
                pa_req,
            } => Self {
                outcome: "three_ds_required".into(),
                subscription_id: subscription_id.to_string(),
                invoice_id: Some(invoice_id.to_string()),
                gateway_transaction_id: Some(gateway_transaction_id.0),
                acs_url: Some(acs_url),
                pa_req: Some(pa_req),
                md: Some(gateway_transaction_id.0.to_string()),
                term_url: Some(term_url.to_string()),
                ..Default::default()
            },
            PaymentOutcome::Expired {
                subscription_id,
                invoice_id,
                message,
            } => Self {
                outcome: "expired".into(),
                subscription_id: subscription_id.to_string(),
                invoice_id: Some(invoice_id.to_string()),
                message: Some(message),
                ..Default::default()
            },
        })
    }
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "alive")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Active tariffs.
#[utoipa::path(get, path = "/api/v1/tariffs", security(("bearer" = [])), responses((status = 200, body = [TariffDto]), (status = 401, body = ErrorBody, description = "no valid bearer token (WWW-Authenticate: Bearer)"), (status = 503, body = ErrorBody)))]
async fn list_tariffs(
    State(api): State<BillingApi>,
    headers: HeaderMap,
) -> Result<Json<Vec<TariffDto>>, ApiError> {
    api.caller(authorization(&headers)).await?;
    let t = api.list_tariffs().await?;
    Ok(Json(
        t.into_iter()
            .map(|t| TariffDto {
                code: t.snapshot.code.to_string(),
                name: t.snapshot.name,
                amount_minor: t.snapshot.price.minor,
                currency: t.snapshot.price.currency.code().into(),
                period_unit: t.snapshot.period.unit.as_str().into(),
                period_count: t.snapshot.period.count,
            })
            .collect(),
    ))
}

/// Starts a subscription with its first payment (same contract as gRPC StartSubscription).
#[utoipa::path(post, path = "/api/v1/subscriptions", request_body = StartRequest, security(("bearer" = [])),
    responses((status = 200, body = StartResponse, description = "paid or declined"), (status = 401, body = ErrorBody, description = "no valid bearer token (WWW-Authenticate: Bearer)"), (status = 403, body = ErrorBody, description = "the token may not act on this user or subscription (the same answer whether or not it exists)"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the user already has a live subscription"),
              (status = 503, body = ErrorBody, description = "gateway unreachable; retry with the same client_request_id")))]
async fn start(
    State(api): State<BillingApi>,
    headers: HeaderMap,
    body: Result<Json<StartRequest>, JsonRejection>,
) -> Result<Json<StartResponse>, ApiError> {
    // Authentication first: an anonymous caller learns nothing about the body's validity.
    let caller = api.caller(authorization(&headers)).await?;
    let Json(r) = body.map_err(|e| ApiError::InvalidArgument {
        field: "body",
        message: e.body_text(),
    })?;
    let cmd = StartCommand::parse(
        &caller,
        StartFields {
            user_id: &r.user_id,
            tariff_code: &r.tariff_code,
            card_cryptogram: &r.card_cryptogram,
            cardholder_name: &r.cardholder_name,
            payer_ip: &r.payer_ip,
            email: &r.email,
            client_request_id: &r.client_request_id,
        },
    )?;
    let outcome = api.start(cmd).await?;
    Ok(Json(StartResponse::from_outcome(outcome, &api.term_url)?))
}

/// A subscription's live state by its id.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", params(("id" = String, Path, description = "subscription UUID")), security(("bearer" = [])),
    responses((status = 200, body = SubscriptionDto), (status = 401, body = ErrorBody, description = "no valid bearer token (WWW-Authenticate: Bearer)"), (status = 403, body = ErrorBody, description = "the token may not act on this user or subscription (the same answer whether or not it exists)"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_subscription(
    State(api): State<BillingApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionDto>, ApiError> {
    let caller = api.caller(authorization(&headers)).await?;
    let id = SubscriptionId::parse(&id).map_err(|e| ApiError::InvalidArgument {
        field: "id",
        message: e.to_string(),
    })?;
    Ok(Json(api.get_by_id(&caller, id).await?.into()))
}

/// The user's current subscription.
#[utoipa::path(get, path = "/api/v1/users/{user_id}/subscription", params(("user_id" = String, Path, description = "user UUID (a plain user's token: its own)")), security(("bearer" = [])),
    responses((status = 200, body = SubscriptionDto), (status = 401, body = ErrorBody, description = "no valid bearer token (WWW-Authenticate: Bearer)"), (status = 403, body = ErrorBody, description = "the token may not act on this user or subscription (the same answer whether or not it exists)"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_user_subscription(
    State(api): State<BillingApi>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Result<Json<SubscriptionDto>, ApiError> {
    let caller = api.caller(authorization(&headers)).await?;
    let acc = account_named(&caller, &user)?;
    Ok(Json(api.get_by_account(acc).await?.into()))
}

/// The 3-D Secure TermUrl: the bank's ACS page posts `MD` and `PaRes` here (form-encoded) from
/// the payer's browser. Billing finishes the payment, then redirects the browser (303) to the
/// frontend's success or failure URL with `subscription_id` and `status`. Repeating the POST is
/// harmless: the payment is finished once.
#[utoipa::path(post, path = "/api/v1/3ds/callback",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "MD=<transaction id>&PaRes=<bank answer>"),
    responses((status = 303, description = "redirect to the frontend result page"),
              (status = 400, body = ErrorBody, description = "malformed form"),
              (status = 404, body = ErrorBody, description = "unknown transaction"),
              (status = 409, body = ErrorBody, description = "the subscription is not waiting for this answer")))]
async fn three_ds_callback(
    State(api): State<BillingApi>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return ApiError::InvalidArgument {
            field: "content-type",
            message: "must be application/x-www-form-urlencoded (the ACS form post)".into(),
        }
        .into_response();
    }
    let pairs: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(p) => p,
        Err(e) => {
            return ApiError::InvalidArgument {
                field: "body",
                message: format!("not a form: {e}"),
            }
            .into_response()
        }
    };
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let Some(md) = get("MD") else {
        return ApiError::InvalidArgument {
            field: "MD",
            message: "is required".into(),
        }
        .into_response();
    };
    let Some(pa_res) = get("PaRes") else {
        return ApiError::InvalidArgument {
            field: "PaRes",
            message: "is required".into(),
        }
        .into_response();
    };
    let Ok(tx) = md.trim().parse::<i64>() else {
        return ApiError::InvalidArgument {
            field: "MD",
            message: "must be the numeric transaction id".into(),
        }
        .into_response();
    };
    let outcome = match api.confirm_3ds(None, tx, &pa_res).await {
        Ok(o) => o,
        Err(ApiError::FailedPrecondition(m)) => {
            // A late or repeated post after the payment finished: show the stored result.
            let sub = match api.store.three_ds_challenge(tx).await {
                Ok(c) => c.subscription_id,
                Err(e) => return ApiError::from(e).into_response(),
            };
            match api.stored_outcome(sub).await {
                Ok(Some(o)) => o,
                Ok(None) => return ApiError::FailedPrecondition(m).into_response(),
                Err(e) => return e.into_response(),
            }
        }
        Err(e) => return e.into_response(),
    };
    let (base, status) = match &outcome {
        PaymentOutcome::Paid { .. } => (&api.three_ds_success_url, "paid".to_string()),
        PaymentOutcome::Declined { reason_code, .. } => (
            &api.three_ds_failure_url,
            format!("declined&reason_code={reason_code}"),
        ),
        other => (
            &api.three_ds_failure_url,
            crate::service::outcome_kind(other).to_string(),
        ),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let location = format!(
        "{base}{sep}subscription_id={}&status={status}",
        outcome.subscription_id()
    );
    (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, location)],
    )
        .into_response()
}

/// The default "frontend" result page the TermUrl redirects to (set BILLING_3DS_SUCCESS_URL /
/// BILLING_3DS_FAILURE_URL to use your own).
async fn three_ds_result(
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Html<String> {
    let status = q.get("status").map(String::as_str).unwrap_or("unknown");
    let sub = q.get("subscription_id").map(String::as_str).unwrap_or("");
    let title = if status == "paid" {
        "Payment confirmed"
    } else {
        "Payment not completed"
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{t}</title></head><body><h1 id=result data-status=\"{s}\">{t}</h1><p>Subscription <code id=subscription>{sub}</code>: {s}</p></body></html>",
        t = escape(title),
        s = escape(status),
        sub = escape(sub)
    ))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Billing API",
        description = "Subscription billing for the online cinema. gRPC `billing.v1.BillingService` is the primary contract; this REST API mirrors it."
    ),
    paths(
        healthz,
        list_tariffs,
        start,
        get_subscription,
        get_user_subscription,
        three_ds_callback
    ),
    components(schemas(TariffDto, SubscriptionDto, StartRequest, StartResponse, ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The `bearer` security scheme: the auth service's JWT (`sub` = user UUID, `roles`).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT of the auth service: `sub` is the user's UUID; `roles` may hold `service` (acts for the user a request names) or `admin` (any subscription). Health, these docs and the 3-DS TermUrl need none.",
                    ))
                    .build(),
            ),
        );
    }
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// A self-contained docs page rendered from the OpenAPI document (no CDN, works offline).
async fn docs_page() -> Html<String> {
    let doc = ApiDoc::openapi();
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=utf-8><title>Billing API</title><style>\
         body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
         .op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}\
         .m{font-weight:bold;text-transform:uppercase;margin-right:.5rem}code,pre{background:#f5f5f5}\
         pre{padding:.5rem;overflow:auto}</style></head><body><h1>Billing API</h1>\
         <p>OpenAPI document: <a href=\"/api/openapi.json\">/api/openapi.json</a>. gRPC: <code>billing.v1.BillingService</code> (server reflection enabled).</p>",
    );
    for (path, item) in doc.paths.paths.iter() {
        let ops = [
            ("get", &item.get),
            ("post", &item.post),
            ("put", &item.put),
            ("delete", &item.delete),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                html.push_str(&format!(
                    "<div class=op><p><span class=m>{method}</span><code>{}</code></p><p>{}</p>",
                    escape(path),
                    escape(
                        op.description
                            .as_deref()
                            .or(op.summary.as_deref())
                            .unwrap_or("")
                    )
                ));
                html.push_str("<ul>");
                for (code, resp) in op.responses.responses.iter() {
                    let desc = match resp {
                        utoipa::openapi::RefOr::T(r) => r.description.clone(),
                        utoipa::openapi::RefOr::Ref(r) => r.ref_location.clone(),
                    };
                    html.push_str(&format!(
                        "<li><b>{}</b> {}</li>",
                        escape(code),
                        escape(&desc)
                    ));
                }
                html.push_str("</ul></div>");
            }
        }
    }
    if let Some(c) = &doc.components {
        html.push_str("<h2>Schemas</h2>");
        for (name, schema) in c.schemas.iter() {
            let json = serde_json::to_string_pretty(schema).unwrap_or_default();
            html.push_str(&format!(
                "<h3>{}</h3><pre>{}</pre>",
                escape(name),
                escape(&json)
            ));
        }
    }
    html.push_str("</body></html>");
    Html(html)
}

/// The request's `Authorization` header, if it is text.
fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn router(api: BillingApi) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/tariffs", get(list_tariffs))
        .route("/api/v1/subscriptions", axum::routing::post(start))
        .route("/api/v1/subscriptions/{id}", get(get_subscription))
        .route(
            "/api/v1/users/{user_id}/subscription",
            get(get_user_subscription),
        )
        .route(
            "/api/v1/3ds/callback",
            axum::routing::post(three_ds_callback),
        )
        .route("/3ds/result", get(three_ds_result))
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/docs", get(docs_page))
        .with_state(api)
}
