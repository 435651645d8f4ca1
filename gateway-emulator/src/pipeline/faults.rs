//! Stage 7, and the charge operations: injected faults ([`crate::faults`], set through
//! `POST /_emulator/faults`). A rule may add latency, answer an HTTP status (429, 5xx) or hold
//! the request without processing it; those effects come before the operation runs and are
//! applied by [`before_operation`]. Declines and "drop the answer after commit" are for charges
//! only, which is why charges look their rules up themselves (card, token and invoice known)
//! while every other operation gets them here, scoped by path and `InvoiceId`.

use crate::faults::{Effects, FaultCtx};
use crate::params::Params;
use crate::reply::{Answer, Notice, Reply};
use crate::state::{AppState, TerminalState};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use utoipa::openapi::path::Operation;

/// Applies the rules matching this request before the operation runs.
pub async fn stage(
    state: &AppState,
    term: &TerminalState,
    req: Request,
    params: Params,
    next: impl AsyncFnOnce(Request, Params) -> Response,
) -> Response {
    let invoice = params.opt_str("InvoiceId").ok().flatten();
    let fx = state.faults.take(&FaultCtx {
        public_id: &term.terminal.public_id,
        path: req.uri().path(),
        invoice_id: invoice.as_deref(),
        ..Default::default()
    });
    if let Some(answer) = before_operation(&fx).await {
        return answer.into_response();
    }
    next(req, params).await
}

/// Latency, then an injected status or a hold; `Some` is the answer to give instead of running
/// the operation (never stored for `X-Request-ID`).
pub async fn before_operation(fx: &Effects) -> Option<Answer> {
    if fx.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fx.latency_ms)).await;
    }
    if let Some(s) = fx.http_status {
        let msg = if s == 429 {
            "Too many requests"
        } else {
            "Internal server error (injected fault)"
        };
        return Some(Answer::Abort(Reply::with_status(s, &Notice::failure(msg))));
    }
    fx.timeout_ms.map(Answer::Hold)
}

pub(super) fn document(op: &mut Operation) {
    super::document_notice(
        op,
        500,
        "Only from an injected `http_status` fault (any 5xx) or the EMU1 `5xx` scenario; nothing was processed",
    );
}
