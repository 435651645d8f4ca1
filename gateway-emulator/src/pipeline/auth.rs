//! Stage 1: who is calling. HTTP Basic (Public ID : API Secret) must name a configured terminal,
//! which is handed to the rest of the pipeline: everything behind this stage (the limit,
//! idempotency keys, fault scopes, the operation) is per terminal. A missing or wrong header gets
//! 401 with a CloudPayments-shaped body, before anything else happens.

use crate::reply::{Notice, Reply};
use crate::state::{AppState, TerminalState};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::sync::Arc;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, OpenApi};

/// Name of the security scheme in the OpenAPI document.
const SCHEME: &str = "basic";
/// Body of the 401 answer.
const DENIED: &str = "Authorization has been denied for this request.";

/// Authenticates the request and hands the terminal on, or answers 401.
pub async fn stage(
    state: &AppState,
    req: Request,
    next: impl AsyncFnOnce(Request, Arc<TerminalState>) -> Response,
) -> Response {
    let Some(term) = authenticate(state, req.headers()).cloned() else {
        return unauthorized();
    };
    next(req, term).await
}

/// The terminal named by a Basic `Authorization` header, if the secret matches.
pub fn authenticate<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
) -> Option<&'a Arc<TerminalState>> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    if let Some(t) = state.terminals_by_header.get(value) {
        return Some(t);
    }
    let s = std::str::from_utf8(value).ok()?;
    let (scheme, b64) = s.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(b64.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    let t = state.terminals.get(user)?;
    constant_eq(t.terminal.api_secret.as_bytes(), pass.as_bytes()).then_some(t)
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 401 answer.
fn unauthorized() -> Response {
    let mut r = Reply::with_status(401, &Notice::failure(DENIED)).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"CloudPayments\""),
    );
    r
}

pub(super) fn document(op: &mut Operation) {
    op.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
    super::document_notice(
        op,
        401,
        &format!("Missing or wrong Basic credentials: `{DENIED}`"),
    );
}

pub(super) fn document_components(doc: &mut OpenApi) {
    let mut basic = Http::new(HttpAuthScheme::Basic);
    basic.description = Some("Public ID : API Secret of a configured terminal".into());
    doc.components
        .get_or_insert_with(Components::new)
        .add_security_scheme(SCHEME, SecurityScheme::Http(basic));
}
