//! Answers: the bytes a request gets back ([`Reply`]), what an operation decided ([`Answer`]),
//! and the two envelopes every CloudPayments answer is made of ([`Envelope`], [`Notice`]).
//!
//! An answer travels back out through the pipeline as an HTTP response. The stages it passes
//! act on markers in the response's extensions, never on its body: [`Replayable`] (the
//! idempotency stage stores it for `X-Request-ID` replays), [`HoldThenClose`] (the delivery stage
//! waits, then closes) and [`DropConnection`] (the server loop closes instead of answering).

use crate::params::ParamError;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A JSON answer, sent (and replayed) exactly as these bytes.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

impl Reply {
    /// HTTP 200 with `v` as JSON.
    pub fn json<T: Serialize + ?Sized>(v: &T) -> Self {
        Self::with_status(200, v)
    }

    /// `status` with `v` as JSON.
    pub fn with_status<T: Serialize + ?Sized>(status: u16, v: &T) -> Self {
        Self {
            status,
            body: Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        }
    }

    /// `{"Success":false,"Message":msg}`: the request could not be carried out.
    pub fn error(msg: impl Into<String>) -> Self {
        Self::json(&Notice::failure(msg))
    }

    /// `{"Success":true,"Message":null}`: done, nothing to return.
    pub fn done() -> Self {
        Self::json(&Notice {
            success: true,
            message: None,
        })
    }
}

impl From<ParamError> for Reply {
    fn from(e: ParamError) -> Self {
        Self::error(e.0)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        r
    }
}

/// What an operation decided; the variants differ in whether the answer is stored for
/// `X-Request-ID` replays and whether the client gets it.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A normal answer, stored for replays.
    Reply(Reply),
    /// An injected error answer, not stored: a retry is processed afresh.
    Abort(Reply),
    /// Hold the request this many milliseconds, then close the connection; nothing stored.
    Hold(u64),
    /// Committed: stored for replays, but this connection is closed without it.
    DropAfterCommit(Reply),
    /// A late bank (fault `late_commit`): this connection is held `hold_ms`, then closed; `commit`
    /// runs `after_ms` after the request and its answer is what an `X-Request-ID` replay gets
    /// (a duplicate waits for it).
    CommitLater { hold_ms: u64, late: LateCommit },
}

impl From<Reply> for Answer {
    fn from(r: Reply) -> Self {
        Self::Reply(r)
    }
}

impl From<Result<Reply, ParamError>> for Answer {
    fn from(r: Result<Reply, ParamError>) -> Self {
        Self::Reply(r.unwrap_or_else(Reply::from))
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Self::Reply(r) => {
                let mut resp = r.clone().into_response();
                resp.extensions_mut().insert(Replayable(r));
                resp
            }
            Self::Abort(r) => r.into_response(),
            Self::Hold(ms) => {
                let mut resp = Response::new(Body::empty());
                resp.extensions_mut().insert(HoldThenClose(ms));
                resp
            }
            Self::DropAfterCommit(r) => {
                let mut resp = dropped();
                resp.extensions_mut().insert(Replayable(r));
                resp
            }
            Self::CommitLater { hold_ms, late } => {
                let mut resp = Response::new(Body::empty());
                resp.extensions_mut().insert(HoldThenClose(hold_ms));
                resp.extensions_mut().insert(late);
                resp
            }
        }
    }
}

/// Response marker: this answer is final; an `X-Request-ID` replay gets these bytes.
#[derive(Debug, Clone)]
pub struct Replayable(pub Reply);

/// Response marker: wait this many milliseconds, then close the connection without answering.
#[derive(Debug, Clone, Copy)]
pub struct HoldThenClose(pub u64);

/// Response marker: commit this later (fault `late_commit`). Taken by the idempotency stage,
/// which stores the late answer for the request's `X-Request-ID`, or else by the delivery stage.
#[derive(Clone)]
pub struct LateCommit {
    /// When to commit, counted from the (missing) answer.
    pub after_ms: u64,
    /// The commit; `None` once a stage took it.
    pub commit: Arc<parking_lot::Mutex<Option<Commit>>>,
}

/// A deferred commit of a charge, yielding its answer.
pub type Commit = Box<dyn FnOnce() -> Reply + Send>;

impl std::fmt::Debug for LateCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateCommit")
            .field("after_ms", &self.after_ms)
            .finish_non_exhaustive()
    }
}

impl LateCommit {
    /// A commit to run `after_ms` later.
    pub fn new(after_ms: u64, commit: impl FnOnce() -> Reply + Send + 'static) -> Self {
        Self {
            after_ms,
            commit: Arc::new(parking_lot::Mutex::new(Some(Box::new(commit)))),
        }
    }

    /// Runs the commit `after_ms` from now on a task of its own; `done` gets its answer.
    pub fn spawn(&self, done: impl FnOnce(Reply) + Send + 'static) {
        if let Some(commit) = self.commit.lock().take() {
            let after = std::time::Duration::from_millis(self.after_ms);
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                done(commit());
            });
        }
    }
}

/// Response marker: close the connection instead of sending this response.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// A response the server loop turns into a closed connection.
pub fn dropped() -> Response {
    let mut r = Response::new(Body::empty());
    r.extensions_mut().insert(DropConnection);
    r
}

/// `{"Model","Success","Message"}`: an answer that carries data.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope<M> {
    /// The data.
    pub model: M,
    /// Whether the request worked; for a payment, whether it was approved.
    pub success: bool,
    /// Null when `Model` is present.
    pub message: Option<String>,
}

impl<M> Envelope<M> {
    /// `Success:true, Message:null` around `model`.
    pub fn ok(model: M) -> Self {
        Self {
            model,
            success: true,
            message: None,
        }
    }
}

/// `{"Success","Message"}`: an answer without data, e.g.
/// `{"Success":false,"Message":"Amount is required"}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Notice {
    /// Whether the request worked.
    pub success: bool,
    /// What went wrong (naming the field), or null.
    pub message: Option<String>,
}

impl Notice {
    /// `Success:false` with a message.
    pub fn failure(msg: impl Into<String>) -> Self {
        Self {
            success: false,
            message: Some(msg.into()),
        }
    }
}
