//! Stage 5: `X-Request-ID`. The key is (terminal, path, header value); the first answer is
//! stored and replayed byte for byte for an hour ([`crate::store::IDEMPOTENCY_TTL_MS`]).
//!
//! - A duplicate that arrives while the first is running waits for it and gets the same bytes,
//!   so a retry never charges twice.
//! - The same key with a different body (SHA-256 of the raw bytes) is refused; the stored answer
//!   stays.
//! - Only answers marked [`Replayable`] are stored: injected faults (5xx, 429, holds) are not,
//!   so a retry is processed afresh; a charge whose answer was dropped after commit is.

use super::body::RawBody;
use crate::reply::{LateCommit, Replayable, Reply};
use crate::state::{AppState, TerminalState};
use crate::store::{body_hash, now_ms, IdemBegin, IdemKey, StoredResponse};
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};

/// The header.
const HEADER: &str = "X-Request-ID";
/// Longest key accepted, in bytes.
const MAX_KEY_LEN: usize = 1024;

/// Replays, waits for, or runs and stores the request.
pub async fn stage(
    state: &AppState,
    term: &TerminalState,
    raw: &RawBody,
    req: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let Some(request_id) = request_id(req.headers()) else {
        return next(req).await;
    };
    if request_id.len() > MAX_KEY_LEN {
        return Reply::error("X-Request-ID is too long (at most 1024 characters)").into_response();
    }
    let hash = body_hash(&raw.bytes);
    let key = IdemKey {
        public_id: term.terminal.public_id.clone(),
        path: req.uri().path().to_owned(),
        key: request_id,
    };
    loop {
        match state.store.idem_begin(key.clone()) {
            IdemBegin::Done(stored) => {
                if stored.request_hash != hash {
                    return Reply::error(
                        "X-Request-ID was already used with a different request body",
                    )
                    .into_response();
                }
                return Reply {
                    status: stored.status,
                    body: stored.body.clone(),
                }
                .into_response();
            }
            IdemBegin::Wait(mut rx) => {
                // Woken when the first request stores its answer or gives the key up.
                let _ = rx.wait_for(|done| *done).await;
            }
            IdemBegin::Owner(guard) => {
                let resp = next(req).await;
                if let Some(late) = resp.extensions().get::<LateCommit>() {
                    // The key stays busy until the late commit: a duplicate waits for its answer.
                    late.spawn(move |r| {
                        guard.complete(Arc::new(StoredResponse {
                            status: r.status,
                            body: r.body.clone(),
                            request_hash: hash,
                            created_ms: now_ms(),
                        }))
                    });
                    return resp;
                }
                match resp.extensions().get::<Replayable>() {
                    Some(Replayable(r)) => guard.complete(Arc::new(StoredResponse {
                        status: r.status,
                        body: r.body.clone(),
                        request_hash: hash,
                        created_ms: now_ms(),
                    })),
                    None => drop(guard),
                }
                return resp;
            }
        }
    }
}

/// The trimmed header value; a missing or blank header means "no idempotency".
fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

pub(super) fn document(op: &mut Operation) {
    let param = ParameterBuilder::new()
        .name(HEADER)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Idempotency key (at most 1024 characters), scoped to terminal + path. The first \
             answer is replayed byte for byte for 1 hour; a duplicate in flight waits for it; the \
             same key with a different body gets `Success:false`. Answers of injected faults are \
             not stored.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).build()))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(param);
}
