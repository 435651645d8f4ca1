//! Stage 3: answers that are not sent. An operation that decided to hold the request (an
//! injected `timeout`, the EMU1 `timeout` scenario) returns at once with a [`HoldThenClose`]
//! marker; this stage waits, then closes the connection. Waiting here rather than in the
//! operation matters: the idempotency stage behind has already let the `X-Request-ID` go, so a
//! client retry is processed afresh while this connection still hangs, and the limit stage in
//! front still counts the request. [`crate::reply::DropConnection`] answers pass through to the
//! server loop, which closes the connection.

use crate::reply::{dropped, HoldThenClose, LateCommit};
use axum::extract::Request;
use axum::response::Response;
use std::time::Duration;

/// Carries out a hold, or passes the answer on.
pub async fn stage(req: Request, next: impl AsyncFnOnce(Request) -> Response) -> Response {
    let resp = next(req).await;
    if let Some(late) = resp.extensions().get::<LateCommit>() {
        // No `X-Request-ID` took it: commit later all the same.
        late.spawn(|_| {});
    }
    match resp.extensions().get::<HoldThenClose>() {
        Some(&HoldThenClose(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            dropped()
        }
        None => resp,
    }
}
