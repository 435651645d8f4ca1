//! 3-D Secure: the bank asked to authenticate the first payment. The challenge goes back to the
//! caller; the run waits durably (`awaiting_3ds`) for the bank's answer (the TermUrl or gRPC
//! `Confirm3ds` hands it in through the `confirm_3ds` update), its expiry, or a Temporal
//! cancellation request, whichever comes first, then finishes the payment with `post3ds`
//! (`crate::charge`). A PaRes the gateway refuses leaves the challenge open.

use crate::cancel;
use crate::charge::{self, ChargeFate, Post3dsAnswer};
use crate::effects::{notify, record_3ds_challenge};
use crate::search::PAYMENT_STATE;
use crate::sleep::sleep;
use crate::state::{Ctx, SubscriptionWorkflow};
use billing_domain::messages::{
    NotificationKind, PaymentOutcome, PaymentState, Post3ds, SubscriptionInput, ThreeDsChallenge,
};
use billing_domain::{GatewayTransactionId, InvoiceId, TransactionUuid};
use temporalio_sdk::workflows::select;
use temporalio_sdk::{TimerResult, WorkflowResult};

/// Parks the payment until the bank's 3-D Secure answer or the expiry, whichever comes
/// first, then finishes it with `post3ds`.
pub(crate) async fn challenge(
    ctx: &Ctx,
    input: &SubscriptionInput,
    invoice_id: InvoiceId,
    gateway_transaction_id: GatewayTransactionId,
    acs_url: String,
    pa_req: String,
) -> WorkflowResult<ChargeFate> {
    record_3ds_challenge(
        ctx,
        ThreeDsChallenge {
            gateway_transaction_id,
            subscription_id: input.subscription_id,
            account_id: input.account_id,
            invoice_id,
        },
    )
    .await?;
    ctx.state_mut(|s| {
        s.payment_state = PaymentState::Awaiting3ds;
        s.awaiting_3ds = Some(gateway_transaction_id);
        s.start_answer = Some(PaymentOutcome::ThreeDsRequired {
            subscription_id: input.subscription_id,
            invoice_id,
            gateway_transaction_id,
            acs_url,
            pa_req,
        });
    });
    ctx.upsert_search_attributes([
        PAYMENT_STATE.value_set(PaymentState::Awaiting3ds.as_str().to_string())
    ]);
    ctx.set_current_details(format!(
        "waiting for the bank's 3-D Secure answer on gateway transaction {gateway_transaction_id} (expires in {}s)",
        input.config.three_ds_expiry.as_secs()
    ));
    notify(
        ctx,
        NotificationKind::ThreeDsRequired,
        TransactionUuid::from_gateway(gateway_transaction_id.0),
        Some(input.tariff.price),
        None,
        billing_domain::catalogue::three_ds_required(),
        None,
    )
    .await?;

    let opts =
        charge::gateway_call_opts(&input.config, format!("post3ds {gateway_transaction_id}"));
    let mut expiry = sleep(
        ctx,
        input.config.three_ds_expiry,
        "3-D Secure expiry".into(),
    );
    loop {
        let woke = select! {
            _ = cancel::until(ctx, |s: &SubscriptionWorkflow| s.three_ds_answer.is_some()) => None,
            r = &mut expiry => Some(r),
            _ = cancel::request(ctx) => None,
        };
        if woke == Some(TimerResult::Cancelled) {
            return cancel::bug(ctx, "the 3-D Secure expiry timer was cancelled".into()).await;
        }
        if cancel::requested(ctx) {
            // Nothing was charged: the bank's answer (if any) is not used. A late answer is
            // refused by the validator from now on.
            expiry.cancel();
            ctx.state_mut(|s| {
                s.awaiting_3ds = None;
                s.three_ds_answer = None;
            });
            return Ok(ChargeFate::Cancelled);
        }
        let Some(answer) = ctx
            .state(|s| s.three_ds_answer.clone())
            .filter(|_| woke.is_none())
        else {
            // Expired: a late answer is refused by the validator from now on.
            ctx.state_mut(|s| s.awaiting_3ds = None);
            return Ok(ChargeFate::Expired);
        };
        ctx.state_mut(|s| s.payment_state = PaymentState::Charging);
        ctx.upsert_search_attributes([
            PAYMENT_STATE.value_set(PaymentState::Charging.as_str().to_string())
        ]);
        ctx.set_current_details(format!(
            "finishing 3-D Secure payment {gateway_transaction_id}"
        ));
        let post = Post3ds {
            invoice_id,
            currency: input.tariff.price.currency,
            answer,
        };
        let fate = match charge::post3ds(ctx, input, post, opts.clone()).await? {
            Post3dsAnswer::Fate(fate) => fate,
            // Nothing happened: tell the caller and keep waiting for the real answer.
            Post3dsAnswer::Refused(reason) => {
                ctx.state_mut(|s| {
                    s.three_ds_rejected = Some((s.three_ds_answers, reason));
                    s.three_ds_answer = None;
                    s.payment_state = PaymentState::Awaiting3ds;
                });
                ctx.upsert_search_attributes([
                    PAYMENT_STATE.value_set(PaymentState::Awaiting3ds.as_str().to_string())
                ]);
                continue;
            }
            Post3dsAnswer::Unknown(error) => {
                expiry.cancel();
                charge::legacy_reconcile(ctx, input, invoice_id, error).await?
            }
        };
        expiry.cancel();
        ctx.state_mut(|s| s.awaiting_3ds = None);
        return Ok(fate);
    }
}
