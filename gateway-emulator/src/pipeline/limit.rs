//! Stage 2: the real API serves at most a few requests in flight per terminal and answers 429
//! beyond that; so does the emulator (`max_concurrent_per_terminal`). The slot is held until the
//! answer has been delivered, including a held (`timeout`) answer, so a client that keeps too
//! many requests open sees the same 429s it would see in production.

use crate::reply::{Notice, Reply};
use crate::state::{AppState, TerminalState};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use utoipa::openapi::path::Operation;

/// Message of the 429 answer.
const BUSY: &str = "Too many concurrent requests for this terminal";

/// Takes a slot for the request's terminal, or answers 429.
pub async fn stage(
    state: &AppState,
    term: &Arc<TerminalState>,
    req: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let Some(_slot) = Slot::take(term.clone(), state.max_concurrent) else {
        return Reply::with_status(429, &Notice::failure(BUSY)).into_response();
    };
    next(req).await
}

/// One request in flight on a terminal; dropping it frees the slot.
struct Slot(Arc<TerminalState>);

impl Slot {
    fn take(term: Arc<TerminalState>, max: usize) -> Option<Self> {
        let before = term.inflight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(term);
        (before < max).then_some(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) fn document(op: &mut Operation) {
    super::document_notice(
        op,
        429,
        &format!("More requests in flight on this terminal than `max_concurrent_per_terminal` (`{BUSY}`), or an injected `rate_limit` fault"),
    );
}
