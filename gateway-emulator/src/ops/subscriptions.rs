//! The subscriptions API (`/subscriptions/create`, `get`, `find`, `update`, `cancel`) is not
//! emulated: billing schedules its own token charges, so a client that calls it gets a clear
//! `Success:false` instead of a 404 that looks like a wrong base URL. Any other path under
//! `/subscriptions/` gets the same answer.

use super::TAG;
use crate::pipeline::Call;
use crate::pipeline::FaultPoint::Pipeline;
use crate::reply::{Notice, Reply};
use crate::routing::{operation, Endpoint, Routes};

/// The five methods, and everything else under `/subscriptions/`.
pub fn routes() -> Routes {
    let documented = METHODS.into_iter().map(|method| {
        operation!(not_supported, Pipeline).at(
            &format!("/subscriptions/{method}"),
            &format!("subscriptions_{method}"),
        )
    });
    let rest = Endpoint::undocumented_operation(
        "/subscriptions/{*rest}",
        not_supported,
        Pipeline,
        "any other path under /subscriptions/, for any method: OpenAPI has no wildcard paths",
    );
    documented.fold(Routes::default(), Routes::with).with(rest)
}

/// The five documented methods; each is served at `/subscriptions/<method>`.
pub const METHODS: [&str; 5] = ["create", "get", "find", "update", "cancel"];

/// Answers that the subscriptions API is not supported.
#[utoipa::path(post, path = "/subscriptions/create", tag = TAG,
    responses((status = 200, description = "Always `Success:false`: schedule charges with /payments/tokens/charge", body = Notice)))]
pub async fn not_supported(_call: Call) -> Reply {
    Reply::error(
        "The subscriptions API is not supported by this emulator: schedule charges yourself with /payments/tokens/charge",
    )
}
