//! Parking: what the workflow cannot resolve by itself once money may have moved (a charge
//! whose outcome stays unknown past `reconcile_window`, a charge the gateway refuses when it is
//! sent again, a store write refused for good: a ledger conflict, bad data) is never a failed
//! workflow. The run parks in `needs_attention`: the status and the `SubscriptionStatus` search
//! attribute say so, the workflow's current details say why, access stays as the last paid
//! period left it, and it waits, answering queries, until an operator's `repair` update
//! (`handlers`) resolves it: retry the step, adopt a named gateway transaction, or void the
//! invoice.

use crate::cancel;
use crate::search::publish;
use crate::state::{Attention, Ctx, Resolution};
use billing_domain::messages::SubscriptionStatus;
use billing_domain::{InvoiceId, Money};
use temporalio_sdk::WorkflowResult;

/// Parks the run until a repair; returns it. `charge`: the invoice of an unresolved charge (a
/// repair may adopt or void); `None` for a failed step (only a retry).
pub(crate) async fn park(
    ctx: &Ctx,
    reason: String,
    charge: Option<(InvoiceId, Money)>,
) -> WorkflowResult<Resolution> {
    ctx.state_mut(|s| {
        let resume_status = s.status;
        s.attention = Some(Attention {
            reason: reason.clone(),
            charge,
            resume_status,
        });
        s.status = SubscriptionStatus::NeedsAttention;
        s.repair = None;
    });
    publish(ctx);
    ctx.set_current_details(format!(
        "needs attention: {reason}. Repair with the `repair` update (README, \"Operators\")"
    ));
    cancel::until(ctx, |s| s.repair.is_some()).await;
    let resolution = ctx.state_mut(|s| {
        if let Some(att) = s.attention.take() {
            s.status = att.resume_status;
        }
        s.repair.take()
    });
    publish(ctx);
    ctx.set_current_details("repaired; resuming");
    Ok(resolution.unwrap_or(Resolution::Retry))
}
