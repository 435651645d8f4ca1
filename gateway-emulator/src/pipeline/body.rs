//! Stages 4 and 6: the body is read once, before idempotency (which hashes the raw bytes), and
//! parsed after it (so a body that does not parse is an answer stored like any other). Both
//! answer a bad body with HTTP 200 and `{"Success":false,"Message":…}`, as the real API does.
//!
//! The real gateway binds keys case-insensitively and takes JSON or form bodies; [`Params`]
//! does the same, and `document` says so in every operation's request body.

use crate::params::{BodyKind, Params, MAX_BODY_BYTES};
use crate::reply::{Answer, Reply};
use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use utoipa::openapi::path::Operation;

/// The request body as received, with the encoding its `Content-Type` announced.
#[derive(Debug, Clone)]
pub struct RawBody {
    /// From the `Content-Type` header.
    pub kind: BodyKind,
    /// At most [`MAX_BODY_BYTES`].
    pub bytes: Bytes,
}

/// Stage 4: reads the body into a [`RawBody`] for the stages behind; a body that is too large or
/// breaks off is answered here (and not stored for `X-Request-ID`).
pub async fn read(req: Request, next: impl AsyncFnOnce(Request, RawBody) -> Response) -> Response {
    let (parts, body) = req.into_parts();
    let kind = BodyKind::from_header(
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let bytes = match http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let msg = if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                "Request body is too large"
            } else {
                "Request body could not be read"
            };
            return Reply::error(msg).into_response();
        }
    };
    next(
        Request::from_parts(parts, Body::empty()),
        RawBody { kind, bytes },
    )
    .await
}

/// Stage 6: parses the [`RawBody`] into [`Params`] for the operation.
pub async fn parse(
    raw: &RawBody,
    req: Request,
    next: impl AsyncFnOnce(Request, Params) -> Response,
) -> Response {
    match Params::parse(raw.kind, &raw.bytes) {
        Ok(params) => next(req, params).await,
        Err(e) => Answer::Reply(e.into()).into_response(),
    }
}

/// The form encoding [`read`] accepts besides JSON.
const FORM: &str = "application/x-www-form-urlencoded";

pub(super) fn document(op: &mut Operation) {
    let Some(body) = op.request_body.as_mut() else {
        return;
    };
    if let Some(json) = body.content.get("application/json").cloned() {
        body.content.entry(FORM.to_owned()).or_insert(json);
    }
    let note = "JSON or form, at most 1 MiB; keys match case-insensitively (`amount`, `AMOUNT`). \
                With no `Content-Type`, a body starting with `{` is read as JSON and one with `=` as a form.";
    body.description = Some(match body.description.take() {
        Some(d) => format!("{d} {note}"),
        None => note.to_owned(),
    });
}
