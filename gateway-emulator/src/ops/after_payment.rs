//! What happens to a payment after its first answer: an authorisation is captured
//! (`/payments/confirm`) or cancelled (`/payments/void`), a completed payment is refunded
//! (`/payments/refund`). Each checks the state under the transaction's lock, so two concurrent
//! calls cannot both succeed, and sends its notification (Confirm, Cancel, Refund).

use super::{own_txn, rrn, txn_not_found, TransactionRef, TAG};
use crate::model::{OpType, Status, Transaction};
use crate::money::Minor;
use crate::params::{request, ParamError};
use crate::pipeline::Call;
use crate::pipeline::FaultPoint::Pipeline;
use crate::reply::{Envelope, Notice, Reply};
use crate::routing::{operation, Routes};
use crate::store::now_ms;
use crate::webhooks::Kind;
use serde::Serialize;
use utoipa::ToSchema;

request! {
    /// Body of `/payments/confirm`. A `JsonData` field is accepted and ignored.
    pub struct Confirm {
        /// An `Authorized` payment of this terminal.
        transaction_id: i64 = req_i64("TransactionId"),
        /// Roubles to capture: at most the authorised amount; it becomes the payment's `Amount`.
        #[schema(value_type = f64)]
        amount: Minor = req_amount("Amount"),
    }
}

request! {
    /// Body of `/payments/refund`.
    pub struct Refund {
        /// A `Completed` payment of this terminal.
        transaction_id: i64 = req_i64("TransactionId"),
        /// Roubles: at most what is left to refund (partial refunds add up).
        #[schema(value_type = f64)]
        amount: Minor = req_amount("Amount"),
        /// Kept on the refund; default: the payment's.
        #[schema(value_type = Option<Object>)]
        json_data: Option<String> = opt_json("JsonData"),
    }
}

/// `Model` of a refund answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct RefundModel {
    /// The new refund transaction (`Type` 2); the payment now shows `Refunded:true`.
    pub transaction_id: i64,
}

/// Confirm, void and refund.
pub fn routes() -> Routes {
    Routes::default()
        .with(operation!(confirm, Pipeline))
        .with(operation!(void, Pipeline))
        .with(operation!(refund, Pipeline))
}

/// Captures an `Authorized` payment, fully or partly → `{Success:true, Message:null}`.
#[utoipa::path(post, path = "/payments/confirm", tag = TAG, request_body = Confirm,
    responses((status = 200, description = "Done, or refused (wrong state, amount)", body = Notice)))]
pub async fn confirm(call: Call) -> Result<Reply, ParamError> {
    let req = Confirm::parse(&call.params)?;
    let t = change_authorized(&call, req.transaction_id, "confirmed", |t| {
        if req.amount.0 > t.amount_minor {
            return Err(ParamError(
                "Invalid Amount value: more than the authorized amount".into(),
            ));
        }
        t.amount_minor = req.amount.0;
        t.status = Status::Completed;
        t.confirm_ms = Some(now_ms());
        Ok(())
    })?;
    call.state.notify(&call.term, Kind::Confirm, &t);
    Ok(Reply::done())
}

/// Cancels an `Authorized` payment (→ `Cancelled`) → `{Success:true, Message:null}`.
#[utoipa::path(post, path = "/payments/void", tag = TAG, request_body = TransactionRef,
    responses((status = 200, description = "Done, or refused (wrong state)", body = Notice)))]
pub async fn void(call: Call) -> Result<Reply, ParamError> {
    let req = TransactionRef::parse(&call.params)?;
    let t = change_authorized(&call, req.transaction_id, "voided", |t| {
        t.status = Status::Cancelled;
        Ok(())
    })?;
    call.state.notify(&call.term, Kind::Cancel, &t);
    Ok(Reply::done())
}

/// Applies `change` to an `Authorized` payment under its lock; the changed payment.
fn change_authorized(
    call: &Call,
    id: i64,
    verb: &str,
    change: impl FnOnce(&mut Transaction) -> Result<(), ParamError>,
) -> Result<Transaction, ParamError> {
    own_txn(call, id)?;
    let res = call.state.store.update_txn(id, |t| {
        if t.status != Status::Authorized {
            return Err(wrong_state(t, verb));
        }
        change(t)?;
        Ok(t.clone())
    });
    res.ok_or_else(txn_not_found)?
}

fn wrong_state(t: &Transaction, verb: &str) -> ParamError {
    ParamError(format!(
        "Transaction {} can not be {verb}: its status is {}",
        t.id,
        t.status.name()
    ))
}

/// Refunds a `Completed` payment, fully or partly; the answer names the refund transaction.
#[utoipa::path(post, path = "/payments/refund", tag = TAG, request_body = Refund,
    responses((status = 200, description = "The refund, or refused (wrong state, amount)", body = Envelope<RefundModel>)))]
pub async fn refund(call: Call) -> Result<Reply, ParamError> {
    let req = Refund::parse(&call.params)?;
    let (state, id, amount) = (&call.state, req.transaction_id, req.amount.0);
    own_txn(&call, id)?;
    let refund_id = state.store.next_id();
    let res = state.store.update_txn(id, |t| {
        if t.op_type != OpType::Payment || t.status != Status::Completed {
            return Err(wrong_state(t, "refunded"));
        }
        if amount > t.amount_minor - t.refunded_minor {
            return Err(ParamError(
                "Invalid Amount value: more than what is left to refund".into(),
            ));
        }
        t.refunded_minor += amount;
        Ok(t.clone())
    });
    let orig = res.ok_or_else(txn_not_found)??;
    let now = now_ms();
    let r = Transaction {
        id: refund_id,
        op_type: OpType::Refund,
        amount_minor: amount,
        status: Status::Completed,
        reason_code: 0,
        created_ms: now,
        auth_ms: Some(now),
        confirm_ms: Some(now),
        refunded_minor: 0,
        original_transaction_id: Some(orig.id),
        json_data: req.json_data.or(orig.json_data.clone()),
        three_ds: None,
        tr_initiator_code: None,
        payment_scheduled: None,
        rrn: Some(rrn()),
        pending_until_ms: None,
        ..orig.clone()
    };
    state.notify(&call.term, Kind::Refund, &r);
    state.store.insert_txn(r);
    Ok(Reply::json(&Envelope::ok(RefundModel {
        transaction_id: refund_id,
    })))
}
