//! The emulated 3-D Secure ACS page (`POST /acs` with `MD`, `PaReq`, `TermUrl`): the page a
//! bank shows the cardholder, with Confirm and Fail buttons that post a signed `PaRes` back to
//! the merchant's `TermUrl`. It needs no authentication, as a browser opens it.

use crate::model::Status;
use crate::ops::three_ds::make_pa_res;
use crate::routing::{endpoint, Routes};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;
use utoipa::ToSchema;

/// OpenAPI tag of the ACS page.
const TAG: &str = "3-D Secure ACS";

/// `/acs` routes.
pub fn routes() -> Routes {
    Routes::default()
        .with(endpoint!(acs_get))
        .with(endpoint!(acs_post))
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:520px;margin:40px auto;padding:0 16px;color:#222}\
.card{border:1px solid #ccc;border-radius:8px;padding:20px}button{font-size:16px;padding:10px 24px;margin-right:12px;border-radius:6px;border:1px solid #888;cursor:pointer}\
.ok{background:#2e7d32;color:#fff}.fail{background:#c62828;color:#fff}dt{font-weight:600}dd{margin:0 0 8px 0}";

fn page(title: &str, body: &str, onload: bool) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body{}>{body}</body></html>",
        esc(title),
        if onload { " onload=\"document.getElementById('confirm').submit()\"" } else { "" }
    )
}

fn error_page(status: StatusCode, msg: &str) -> Response {
    (
        status,
        Html(page(
            "3-D Secure: error",
            &format!("<h1>3-D Secure emulator</h1><p>{}</p>", esc(msg)),
            false,
        )),
    )
        .into_response()
}

/// Explains what to POST here.
#[utoipa::path(get, path = "/acs", tag = TAG,
    responses((status = 200, description = "An HTML page", content_type = "text/html")))]
async fn acs_get() -> Response {
    Html(page(
        "3-D Secure emulator",
        "<h1>3-D Secure emulator</h1><p>This is the ACS of the CloudPayments emulator. The merchant's page must POST the form fields <code>MD</code>, <code>PaReq</code> and <code>TermUrl</code> here.</p>",
        false,
    ))
    .into_response()
}

fn field(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .or_else(|| pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .map(|(_, v)| v.clone())
}

/// The transaction id carried by `MD`: a number, or the SDKs' JSON `{"TransactionId":…}`.
fn md_transaction_id(md: &str) -> Option<i64> {
    let md = md.trim();
    if let Ok(id) = md.parse() {
        return Some(id);
    }
    let v: serde_json::Value = serde_json::from_str(md).ok()?;
    let id = v.get("TransactionId")?;
    id.as_i64()
        .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
}

/// The form the merchant's page posts from the browser.
#[derive(Debug, ToSchema)]
pub struct AcsForm {
    /// The `TransactionId` (a number, or the SDKs' JSON `{"TransactionId":…}`).
    #[serde(rename = "MD")]
    pub md: String,
    /// The `PaReq` of the 3-D Secure answer; when given, it must be that transaction's.
    #[serde(rename = "PaReq")]
    pub pa_req: Option<String>,
    /// Where the page's buttons post `MD` and `PaRes`.
    #[serde(rename = "TermUrl")]
    pub term_url: String,
}

/// The cardholder's page, with Confirm and Fail buttons.
///
/// Each button posts `MD` + a signed `PaRes` to `TermUrl`; with `acs_auto_submit`, Confirm is
/// submitted on load.
#[utoipa::path(post, path = "/acs", tag = TAG,
    request_body(content = AcsForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 400, description = "The form is unreadable, lacks MD or TermUrl, or PaReq is another transaction's", content_type = "text/html"),
        (status = 404, description = "Unknown transaction or terminal", content_type = "text/html"),
        (status = 409, description = "The transaction is not awaiting authentication", content_type = "text/html"),
        (status = 415, description = "Not an HTML form post", content_type = "text/html")))]
async fn acs_post(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected an HTML form POST (application/x-www-form-urlencoded).",
        );
    }
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return error_page(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let (Some(md), Some(term_url)) = (field(&pairs, "MD"), field(&pairs, "TermUrl")) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The form must carry MD, PaReq and TermUrl.",
        );
    };
    let posted = AcsForm {
        md,
        pa_req: field(&pairs, "PaReq"),
        term_url,
    };
    let (md, term_url) = (posted.md.as_str(), posted.term_url.as_str());
    let pa_req = posted.pa_req.as_deref().unwrap_or_default();
    let Some(txn) = md_transaction_id(md).and_then(|id| state.store.get_txn(id)) else {
        return error_page(StatusCode::NOT_FOUND, "Unknown transaction (MD).");
    };
    if txn.status != Status::AwaitingAuthentication {
        return error_page(
            StatusCode::CONFLICT,
            &format!(
                "Transaction {} is not awaiting authentication (status {}).",
                txn.id,
                txn.status.name()
            ),
        );
    }
    if txn
        .three_ds
        .as_ref()
        .is_some_and(|t| !pa_req.is_empty() && t.pa_req != pa_req)
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            "PaReq does not belong to this transaction.",
        );
    }
    let Some(term) = state.terminals.get(&txn.public_id) else {
        return error_page(StatusCode::NOT_FOUND, "Unknown terminal.");
    };
    let secret = &term.terminal.api_secret;
    let ok = make_pa_res(secret, txn.id, true);
    let fail = make_pa_res(secret, txn.id, false);
    let form = |id: &str, pa_res: &str, label: &str, class: &str| {
        format!(
            "<form id=\"{id}\" method=\"POST\" action=\"{}\" style=\"display:inline\"><input type=\"hidden\" name=\"MD\" value=\"{}\"><input type=\"hidden\" name=\"PaRes\" value=\"{}\"><button type=\"submit\" class=\"{class}\">{label}</button></form>",
            esc(term_url),
            esc(md),
            esc(pa_res)
        )
    };
    let body = format!(
        "<h1>3-D Secure emulator</h1><div class=\"card\"><p>Confirm the payment with your bank.</p><dl>\
<dt>Merchant</dt><dd>{}</dd><dt>Amount</dt><dd>{} {}</dd><dt>Card</dt><dd>{}</dd><dt>Transaction</dt><dd>{}</dd></dl>{}{}</div>{}",
        esc(&txn.public_id),
        crate::money::format_minor(txn.amount_minor),
        esc(&txn.currency),
        esc(&txn.card.mask()),
        txn.id,
        form("confirm", &ok, "Confirm", "ok"),
        form("fail", &fail, "Fail", "fail"),
        if state.acs_auto_submit { "<p>Answering automatically (auto-submit mode)…</p>" } else { "" }
    );
    Html(page("3-D Secure emulator", &body, state.acs_auto_submit)).into_response()
}
