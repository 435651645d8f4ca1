//! The start of a subscription: the first-payment update arrives with the workflow start
//! (update-with-start); the run opens the period's invoice, charges the cryptogram
//! (`crate::charge`), goes through 3-D Secure if the bank asks (`crate::three_ds`), records the
//! outcome, grants access and notifies, answers the start call, and then either ends (declined,
//! expired, unavailable) or hands the paid subscription to its loop (`crate::active`).

use crate::active;
use crate::cancel;
use crate::charge::{self, ChargeFate};
use crate::effects::{close_unpaid, grant, notify, open_invoice, record, remember_answer};
use crate::search::*;
use crate::sleep::sleep;
use crate::state::{now, ts, Ctx, SubscriptionWorkflow};
use crate::three_ds;
use billing_domain::catalogue::{self, Ending};
use billing_domain::messages::{
    ActiveState, NotificationKind, OpenInvoice, PaymentOutcome, PaymentState, SubscriptionInput,
    SubscriptionStatus,
};
use billing_domain::{InvoiceId, TransactionUuid};
use std::time::Duration;
use temporalio_sdk::workflows::select;
use temporalio_sdk::{ApplicationFailure, TimerResult, WorkflowResult, WorkflowTermination};

/// How long a started workflow waits for its first-payment update before giving up (a start
/// without the update only happens if a client bypasses the API).
const FIRST_PAYMENT_WAIT: Duration = Duration::from_secs(600);

/// A new subscription's run, from the first payment on.
pub(crate) async fn run(ctx: &mut Ctx) -> WorkflowResult<SubscriptionStatus> {
    let input = ctx.state(|s| s.input.clone());
    ctx.upsert_search_attributes([
        SUBSCRIPTION_STATUS.value_set(SubscriptionStatus::Pending.as_str().to_string()),
        TARIFF_CODE.value_set(input.tariff.code.to_string()),
        PAYMENT_STATE.value_set(PaymentState::Idle.as_str().to_string()),
    ]);

    // The first-payment update arrives with the start; wait for it (bounded).
    {
        let mut wait = sleep(ctx, FIRST_PAYMENT_WAIT, "waiting for first payment".into());
        let woke = select! {
            _ = cancel::until(ctx, |s: &SubscriptionWorkflow| s.first_payment.is_some()) => None,
            r = &mut wait => Some(r),
            _ = cancel::request(ctx) => None,
        };
        match woke {
            None => wait.cancel(),
            Some(TimerResult::Fired) => {
                ctx.state_mut(|s| s.status = SubscriptionStatus::Ended);
                return Ok(SubscriptionStatus::Ended);
            }
            Some(TimerResult::Cancelled) => {
                return cancel::bug(ctx, "the first-payment wait was cancelled".into()).await
            }
        }
    }
    if cancel::requested(ctx) {
        // Nothing has been charged yet: cancel wins.
        return cancelled_before_payment(ctx, &input).await;
    }
    let payment = ctx
        .state(|s| s.first_payment.clone())
        .ok_or_else(|| ApplicationFailure::new("first payment vanished"))?;

    let period_start = now(ctx)?;
    let period_end = input
        .tariff
        .period
        .nth_end(period_start, 0)
        .ok_or_else(|| ApplicationFailure::non_retryable("period end overflows the calendar"))?;
    let invoice_id = InvoiceId::derive(input.subscription_id, period_start);
    ctx.state_mut(|s| {
        s.status = SubscriptionStatus::AwaitingPayment;
        s.payment_state = PaymentState::Charging;
    });
    ctx.upsert_search_attributes([
        SUBSCRIPTION_STATUS.value_set(SubscriptionStatus::AwaitingPayment.as_str().to_string()),
        PAYMENT_STATE.value_set(PaymentState::Charging.as_str().to_string()),
    ]);
    ctx.set_current_details(format!("charging first invoice {invoice_id}"));

    open_invoice(
        ctx,
        OpenInvoice {
            subscription_id: input.subscription_id,
            account_id: input.account_id,
            email: payment.email.clone(),
            tariff: input.tariff.clone(),
            invoice_id,
            period_start,
            period_end,
        },
        "open first invoice",
    )
    .await?;

    let mut fate = charge::by_cryptogram(ctx, &input, invoice_id, payment.clone()).await?;
    if let ChargeFate::ThreeDs {
        gateway_transaction_id,
        acs_url,
        pa_req,
    } = fate
    {
        fate = three_ds::challenge(
            ctx,
            &input,
            invoice_id,
            gateway_transaction_id,
            acs_url,
            pa_req,
        )
        .await?;
    }
    let outcome = match fate {
        ChargeFate::Approved(t) => {
            let transaction_id = record(ctx, invoice_id, &t, period_end).await?;
            let paid = PaymentOutcome::Paid {
                subscription_id: input.subscription_id,
                invoice_id,
                transaction_id,
                gateway_transaction_id: t.gateway_transaction_id,
                amount: t.amount,
                access_until: period_end,
            };
            let message = catalogue::paid(&input.tariff.name, period_end);
            // Once the payment is recorded, access, the notification and the remembered
            // answer are independent of each other: all three at once.
            futures::try_join!(
                grant(ctx, period_end, transaction_id),
                notify(
                    ctx,
                    NotificationKind::PaymentSucceeded,
                    transaction_id,
                    Some(t.amount),
                    None,
                    message,
                    Some(period_end),
                ),
                remember_answer(ctx, &input, &paid),
            )?;
            ctx.state_mut(|s| {
                s.status = SubscriptionStatus::Active;
                s.payment_state = PaymentState::Idle;
                s.period_start = Some(period_start);
                s.period_end = Some(period_end);
                s.token = t.token.clone();
            });
            paid
        }
        ChargeFate::Declined(t, code, why) => {
            // Operators read the gateway's words; the user is told the catalogue's.
            ctx.set_current_details(format!("first payment declined ({code}): {why}"));
            let message = if code == 0 {
                catalogue::refused()
            } else {
                catalogue::declined(code)
            };
            let transaction_id = match &t {
                Some(t) => record(ctx, invoice_id, t, period_end).await?,
                None => TransactionUuid::for_event(invoice_id, "declined"),
            };
            close_unpaid(ctx, invoice_id, "void", SubscriptionStatus::Declined).await?;
            notify(
                ctx,
                NotificationKind::PaymentDeclined,
                transaction_id,
                Some(input.tariff.price),
                Some(code),
                message.clone(),
                None,
            )
            .await?;
            ctx.state_mut(|s| {
                s.status = SubscriptionStatus::Declined;
                s.payment_state = PaymentState::Failed;
                s.failed_attempts += 1;
                s.last_decline_code = Some(code);
            });
            PaymentOutcome::Declined {
                subscription_id: input.subscription_id,
                invoice_id,
                gateway_transaction_id: t.map(|t| t.gateway_transaction_id),
                reason_code: code,
                message,
            }
        }
        ChargeFate::ThreeDs { .. } => {
            return Err(
                ApplicationFailure::non_retryable("3-D Secure challenge after 3-D Secure").into(),
            );
        }
        ChargeFate::Expired => {
            let transaction_id = TransactionUuid::for_event(invoice_id, "3ds-expired");
            close_unpaid(ctx, invoice_id, "void", SubscriptionStatus::Expired).await?;
            let message = catalogue::three_ds_expired();
            notify(
                ctx,
                NotificationKind::PaymentExpired,
                transaction_id,
                Some(input.tariff.price),
                None,
                message.clone(),
                None,
            )
            .await?;
            ctx.state_mut(|s| {
                s.status = SubscriptionStatus::Expired;
                s.payment_state = PaymentState::Failed;
            });
            PaymentOutcome::Expired {
                subscription_id: input.subscription_id,
                invoice_id,
                message,
            }
        }
        ChargeFate::Cancelled => {
            let message = catalogue::ended(Ending::ByOperatorBeforePayment);
            close_unpaid(ctx, invoice_id, "void", SubscriptionStatus::Cancelled).await?;
            notify(
                ctx,
                NotificationKind::SubscriptionCancelled,
                TransactionUuid::for_event(invoice_id, "cancelled"),
                None,
                None,
                message.clone(),
                None,
            )
            .await?;
            ctx.state_mut(|s| {
                s.status = SubscriptionStatus::Cancelled;
                s.payment_state = PaymentState::Idle;
                s.operator_cancel = true;
            });
            ctx.set_current_details(format!(
                "cancelled by a Temporal cancellation request while waiting for 3-D Secure; invoice {invoice_id} voided, nothing charged"
            ));
            // Final: the same request id gets this answer again; a new start may follow.
            PaymentOutcome::Expired {
                subscription_id: input.subscription_id,
                invoice_id,
                message,
            }
        }
        ChargeFate::NotCharged(message) => {
            close_unpaid(ctx, invoice_id, "void", SubscriptionStatus::Ended).await?;
            ctx.state_mut(|s| {
                s.status = SubscriptionStatus::Ended;
                s.payment_state = PaymentState::Failed;
            });
            PaymentOutcome::Unavailable {
                subscription_id: input.subscription_id,
                message,
            }
        }
    };

    // Remember final answers (paid: above; declined / expired) so a retry after this
    // workflow closed gets the same answer; "unavailable" is not final: a retry should try
    // again.
    if outcome.is_final() && !matches!(outcome, PaymentOutcome::Paid { .. }) {
        remember_answer(ctx, &input, &outcome).await?;
    }
    let status = ctx.state(|s| s.status);
    let mut attrs = vec![
        SUBSCRIPTION_STATUS.value_set(status.as_str().to_string()),
        PAYMENT_STATE.value_set(ctx.state(|s| s.payment_state).as_str().to_string()),
    ];
    if let Some(code) = ctx.state(|s| s.last_decline_code) {
        attrs.push(LAST_DECLINE_CODE.value_set(code.to_string()));
        attrs.push(FAILED_ATTEMPTS.value_set(i64::from(ctx.state(|s| s.failed_attempts))));
    }
    if status == SubscriptionStatus::Active {
        attrs.push(NEXT_CHARGE_AT.value_set(ts(period_end)));
        attrs.push(BILLING_PERIOD.value_set(0));
    }
    ctx.upsert_search_attributes(attrs);
    ctx.state_mut(|s| {
        s.awaiting_3ds = None;
        if s.start_answer.is_none() {
            s.start_answer = Some(outcome.clone());
        }
        s.outcome = Some(outcome);
    });

    if status != SubscriptionStatus::Active {
        // Let the update handler deliver the answer before the run finishes.
        let handlers = ctx.clone();
        cancel::until(ctx, move |_| handlers.all_handlers_finished()).await;
        if ctx.state(|s| s.operator_cancel) {
            return Err(WorkflowTermination::cancelled());
        }
        return Ok(status);
    }

    // Active: from here on the renewal loop owns the subscription.
    let start_answer = ctx.state(|s| s.start_answer.clone());
    let token = ctx.state(|s| s.token.clone());
    ctx.state_mut(|s| {
        s.active = Some(ActiveState {
            anchor: period_start,
            period_index: 0,
            period_start,
            period_end,
            token,
            tariff: input.tariff.clone(),
            pending_tariff: None,
            cancel_at_period_end: false,
            dunning: None,
            renewals: 0,
            clock_offset_secs: 0,
            start_answer,
            email: payment.email.clone(),
        })
    });
    active::run(ctx).await
}

/// A Temporal cancellation request before the first payment started: nothing was charged and
/// nothing was written; the start request is answered "unavailable" (not final: a retry with
/// the same request id starts again).
async fn cancelled_before_payment(
    ctx: &mut Ctx,
    input: &SubscriptionInput,
) -> WorkflowResult<SubscriptionStatus> {
    let outcome = PaymentOutcome::Unavailable {
        subscription_id: input.subscription_id,
        message: catalogue::ended(Ending::ByOperatorBeforePayment),
    };
    ctx.state_mut(|s| {
        s.status = SubscriptionStatus::Cancelled;
        s.operator_cancel = true;
        s.start_answer.get_or_insert(outcome.clone());
        s.outcome = Some(outcome);
    });
    ctx.upsert_search_attributes([
        SUBSCRIPTION_STATUS.value_set(SubscriptionStatus::Cancelled.as_str().to_string())
    ]);
    ctx.set_current_details(
        "cancelled by a Temporal cancellation request before the first payment; nothing charged",
    );
    let handlers = ctx.clone();
    cancel::until(ctx, move |_| handlers.all_handlers_finished()).await;
    Err(WorkflowTermination::cancelled())
}
