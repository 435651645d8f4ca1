//! The CloudPayments API: the operation families of [`crate::ops`], each behind the
//! [`pipeline`](crate::pipeline) (auth → 429 limit → idempotency → faults), and the 404 that
//! unknown paths get.

pub use crate::ops::payments::REUSED_CRYPTOGRAM_CODE;
use crate::ops::{after_payment, notifications, payments, queries, subscriptions, three_ds};
use crate::reply::{Notice, Reply};
use crate::routing::Routes;

/// The CloudPayments endpoints, each family's from its module (which also says where the
/// family's fault rules apply).
pub fn routes() -> Routes {
    queries::routes()
        .merge(payments::routes())
        .merge(three_ds::routes())
        .merge(after_payment::routes())
        .merge(notifications::routes())
        .merge(subscriptions::routes())
}

/// Fallback for unknown paths: a CloudPayments-shaped 404 (no authentication needed).
pub async fn not_found() -> Reply {
    Reply::with_status(404, &Notice::failure("Unknown API method"))
}
