//! The CloudPayments operations, one module per family of endpoints. An operation is an
//! `async fn` that takes a [`Call`] (what the [`pipeline`](crate::pipeline) established:
//! terminal, path, parsed body) and returns an [`Answer`](crate::reply::Answer) or a
//! `Result<Reply, ParamError>`. Its `#[utoipa::path]` attribute is both its OpenAPI entry and,
//! through the module's `routes()` and [`crate::routing`], the route it is served at. Its request
//! type is what it parses the body into and the schema the document shows (most are declared
//! with [`request!`](crate::params) so the key read and the key shown are one string), so the
//! document cannot disagree with the code.
//!
//! * [`payments`]: card (cryptogram) and token charges and authorisations;
//! * [`three_ds`]: the 3-D Secure challenge, `PaRes` and post3ds;
//! * [`outcome`]: deciding and committing a payment's result (shared by the two above);
//! * [`after_payment`]: confirm, void, refund;
//! * [`queries`]: `/test`, get, find, lists;
//! * [`notifications`]: webhook settings;
//! * [`subscriptions`]: not supported, answered as such.

pub mod after_payment;
pub mod notifications;
pub mod outcome;
pub mod payments;
pub mod queries;
pub mod subscriptions;
pub mod three_ds;

use crate::model::{Status, Transaction, WireTransaction};
use crate::params::{request, ParamError};
use crate::pipeline::Call;
use crate::reply::{Envelope, Notice, Reply};
use crate::state::AppState;
use crate::store::now_ms;
use rand::Rng as _;
use utoipa::ToSchema;

/// OpenAPI tag of the CloudPayments operations.
pub const TAG: &str = "CloudPayments";

/// What an operation that reads or settles one transaction answers: the transaction (`Success`
/// true for `Authorized` and `Completed`, false with the Model otherwise), or a refusal naming
/// the bad field.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code, clippy::large_enum_variant)] // a schema only: each variant is a type the handlers send
pub enum TransactionAnswer<'a> {
    /// The transaction.
    Transaction(Envelope<WireTransaction<'a>>),
    /// Malformed request, unknown transaction.
    Refused(Notice),
}

request! {
    /// A body that names one transaction of the caller's terminal.
    pub struct TransactionRef {
        /// The transaction (payments and refunds share one id sequence).
        transaction_id: i64 = req_i64("TransactionId"),
    }
}

/// A transaction in the approved or declined shape: `Success` only for approved states.
pub(crate) fn transaction_reply(state: &AppState, t: &Transaction) -> Reply {
    Reply::json(&Envelope {
        model: t.wire(&state.base_url),
        success: t.is_success(),
        message: None,
    })
}

/// A transaction of the caller's terminal; an abandoned 3-DS payment is declined on the way.
pub(crate) fn own_txn(call: &Call, id: i64) -> Result<Transaction, ParamError> {
    let store = &call.state.store;
    let mut t = store
        .get_txn(id)
        .filter(|t| t.public_id == call.term.terminal.public_id)
        .ok_or_else(txn_not_found)?;
    if t.status == Status::AwaitingAuthentication && t.expire_if_abandoned(now_ms()) {
        store.update_txn(id, |s| s.expire_if_abandoned(now_ms()));
    }
    Ok(t)
}

/// "Transaction not found".
pub(crate) fn txn_not_found() -> ParamError {
    ParamError("Transaction not found".into())
}

/// `n` random digits in `radix` (10 or 16).
pub(crate) fn random_digits(n: usize, radix: u32) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from_digit(rng.gen_range(0..radix), radix).unwrap_or('0'))
        .collect()
}

/// A retrieval reference number: 12 digits.
pub(crate) fn rrn() -> String {
    random_digits(12, 10)
}
