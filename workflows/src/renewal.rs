//! What falls due for a paid subscription, one action each: a renewal (open the period's
//! invoice, charge the saved card, then paid → access extended, or declined → dunning), a
//! dunning retry, the suspension at the grace end, and the end (cancelled now, at period end or
//! for non-payment). [`crate::active`] decides when; [`crate::dunning`] plans.

use crate::charge::{self, ChargeFate};
use crate::dunning::{add, next_charge};
use crate::effects::{close_unpaid, grant, notify, open_invoice, record, revoke, sync};
use crate::search::publish;
use crate::state::{active, set_status, Ctx};
use billing_domain::catalogue::{self, Ending};
use billing_domain::decline::{classify, DeclineClass};
use billing_domain::messages::{
    Dunning, GatewayTransaction, NotificationKind, OpenInvoice, PaymentState, SubscriptionStatus,
};
use billing_domain::{InvoiceId, TransactionUuid};
use chrono::{DateTime, Utc};
use temporalio_sdk::{ApplicationFailure, WorkflowResult};

/// A paid period: record, extend access, notify, move the period forward.
pub(crate) async fn paid(
    ctx: &Ctx,
    invoice_id: InvoiceId,
    t: GatewayTransaction,
    index: u32,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> WorkflowResult<()> {
    let tx = record(ctx, invoice_id, &t, end).await?;
    // Access and the notification are independent once the payment is recorded: both at once.
    futures::try_join!(
        grant(ctx, end, tx),
        notify(
            ctx,
            NotificationKind::RenewalSucceeded,
            tx,
            Some(t.amount),
            None,
            catalogue::renewed(end),
            Some(end),
        )
    )?;
    ctx.state_mut(|s| {
        if let Some(a) = s.active.as_mut() {
            a.period_index = index;
            a.period_start = start;
            a.period_end = end;
            a.dunning = None;
            a.renewals += 1;
        }
        s.status = SubscriptionStatus::Active;
        s.payment_state = PaymentState::Idle;
        s.failed_attempts = 0;
        s.last_decline_code = None;
    });
    publish(ctx);
    Ok(())
}

/// A failed attempt: record the decline, enter or continue dunning, notify once per attempt.
pub(crate) async fn failed(
    ctx: &Ctx,
    invoice_id: InvoiceId,
    fate: ChargeFate,
    attempt: u32,
) -> WorkflowResult<()> {
    let (t, code, why) = match fate {
        ChargeFate::Declined(t, code, why) => (t, code, why),
        ChargeFate::NotCharged(why) => (None, 0, why),
        ChargeFate::Expired
        | ChargeFate::Cancelled
        | ChargeFate::ThreeDs { .. }
        | ChargeFate::Approved(_) => {
            return Err(
                ApplicationFailure::non_retryable("unexpected charge result in dunning").into(),
            );
        }
    };
    let d = ctx
        .state(|s| s.active.as_ref().and_then(|a| a.dunning.clone()))
        .ok_or_else(|| ApplicationFailure::non_retryable("no dunning state"))?;
    let tx = match &t {
        Some(t) => record(ctx, invoice_id, t, d.period_end).await?,
        None => TransactionUuid::for_event(invoice_id, &format!("attempt-{attempt}-failed")),
    };
    let hard = code != 0
        && matches!(
            classify(code),
            DeclineClass::Hard | DeclineClass::Authentication
        );
    ctx.state_mut(|s| {
        if let Some(d) = s.active.as_mut().and_then(|a| a.dunning.as_mut()) {
            d.attempts = attempt;
            d.hard |= hard;
            d.last_code = Some(code);
        }
        s.failed_attempts = attempt;
        s.last_decline_code = Some(code);
        s.payment_state = PaymentState::Failed;
    });
    ctx.set_current_details(format!(
        "renewal of invoice {invoice_id}, attempt {attempt}, declined ({code}): {why}"
    ));
    // Tell the user whether billing tries again by itself (the plan says), never internal text.
    let retry = ctx.state(|s| {
        s.active
            .as_ref()
            .and_then(|a| next_charge(a, &s.input.config))
            .is_some()
    });
    notify(
        ctx,
        NotificationKind::RenewalFailed,
        tx,
        Some(d.amount),
        Some(code),
        catalogue::renewal_failed(code, retry),
        None,
    )
    .await?;
    publish(ctx);
    Ok(())
}

pub(crate) async fn renew(ctx: &Ctx) -> WorkflowResult<()> {
    let a = active(ctx)?;
    let input = ctx.state(|s| s.input.clone());
    // A pending tariff change takes effect now; a different period length re-anchors the calendar.
    let (tariff, anchor, index) = match &a.pending_tariff {
        Some(t) if t.period != a.tariff.period => (t.clone(), a.period_end, 0),
        Some(t) => (t.clone(), a.anchor, a.period_index + 1),
        None => (a.tariff.clone(), a.anchor, a.period_index + 1),
    };
    let start = a.period_end;
    let end = tariff
        .period
        .nth_end(anchor, index)
        .ok_or_else(|| ApplicationFailure::non_retryable("period end overflows the calendar"))?;
    if a.pending_tariff.is_some() {
        ctx.state_mut(|s| {
            if let Some(x) = s.active.as_mut() {
                x.tariff = tariff.clone();
                x.anchor = anchor;
                x.period_index = index.saturating_sub(1);
                x.pending_tariff = None;
            }
        });
        sync(ctx, SubscriptionStatus::Active, Some(tariff.clone())).await?;
    }
    let invoice_id = InvoiceId::derive(input.subscription_id, start);
    open_invoice(
        ctx,
        OpenInvoice {
            subscription_id: input.subscription_id,
            account_id: input.account_id,
            email: a.email.clone(),
            tariff: tariff.clone(),
            invoice_id,
            period_start: start,
            period_end: end,
        },
        "open renewal invoice",
    )
    .await?;
    match charge::by_token(ctx, invoice_id, tariff.price, 1).await? {
        ChargeFate::Approved(t) => paid(ctx, invoice_id, t, index, start, end).await,
        fate => {
            let grace_until = add(start, input.config.dunning.grace);
            ctx.state_mut(|s| {
                if let Some(x) = s.active.as_mut() {
                    x.dunning = Some(Dunning {
                        invoice_id,
                        period_index: index,
                        due_at: start,
                        period_end: end,
                        amount: tariff.price,
                        attempts: 1,
                        hard: false,
                        suspended: false,
                        last_code: None,
                    });
                }
                s.status = SubscriptionStatus::PastDue;
            });
            sync(ctx, SubscriptionStatus::PastDue, None).await?;
            // Access is kept through the grace period.
            grant(
                ctx,
                grace_until,
                TransactionUuid::for_event(invoice_id, "grace"),
            )
            .await?;
            failed(ctx, invoice_id, fate, 1).await
        }
    }
}

pub(crate) async fn retry(ctx: &Ctx) -> WorkflowResult<()> {
    let d = active(ctx)?
        .dunning
        .ok_or_else(|| ApplicationFailure::non_retryable("retry without dunning"))?;
    let attempt = d.attempts + 1;
    match charge::by_token(ctx, d.invoice_id, d.amount, attempt).await? {
        ChargeFate::Approved(t) => {
            paid(ctx, d.invoice_id, t, d.period_index, d.due_at, d.period_end).await?;
            sync(ctx, SubscriptionStatus::Active, None).await
        }
        fate => failed(ctx, d.invoice_id, fate, attempt).await,
    }
}

pub(crate) async fn suspend(ctx: &Ctx) -> WorkflowResult<()> {
    let d = active(ctx)?
        .dunning
        .ok_or_else(|| ApplicationFailure::non_retryable("suspend without dunning"))?;
    revoke(
        ctx,
        TransactionUuid::for_event(d.invoice_id, "suspended"),
        "renewal unpaid after the grace period",
    )
    .await?;
    ctx.state_mut(|s| {
        if let Some(d) = s.active.as_mut().and_then(|a| a.dunning.as_mut()) {
            d.suspended = true;
        }
        s.status = SubscriptionStatus::Suspended;
    });
    sync(ctx, SubscriptionStatus::Suspended, None).await?;
    notify(
        ctx,
        NotificationKind::AccessSuspended,
        TransactionUuid::for_event(d.invoice_id, "suspended"),
        Some(d.amount),
        d.last_code,
        catalogue::suspended(),
        None,
    )
    .await?;
    publish(ctx);
    Ok(())
}

/// The reason an ending gives the access service and the workflow's details (the user is told
/// [`catalogue::ended`]).
fn label(why: Ending) -> &'static str {
    match why {
        Ending::ByUser => "cancelled by the user",
        Ending::AtPeriodEnd => "cancelled at the end of the paid period",
        Ending::NonPayment => "cancelled for non-payment",
        Ending::ByOperator => "cancelled by the service operator",
        Ending::ByOperatorBeforePayment => {
            "cancelled by the service operator before the payment was confirmed"
        }
    }
}

/// Ends the subscription for `why` (told to the user from the catalogue); an unpaid invoice is
/// closed as `invoice_status`; access is revoked unless it already was.
pub(crate) async fn end(
    ctx: &Ctx,
    why: Ending,
    invoice_status: &str,
    revoke_access: bool,
) -> WorkflowResult<SubscriptionStatus> {
    let reason = label(why);
    let (input, a) = ctx.state(|s| (s.input.clone(), s.active.clone()));
    let a = a.ok_or_else(|| ApplicationFailure::non_retryable("no active billing state"))?;
    let key = match &a.dunning {
        Some(d) => d.invoice_id,
        None => InvoiceId::derive(input.subscription_id, a.period_end),
    };
    let tx = TransactionUuid::for_event(key, "cancelled");
    if let Some(d) = &a.dunning {
        close_unpaid(
            ctx,
            d.invoice_id,
            invoice_status,
            SubscriptionStatus::Cancelled,
        )
        .await?;
    } else {
        sync(ctx, SubscriptionStatus::Cancelled, None).await?;
    }
    if revoke_access {
        revoke(ctx, tx, reason).await?;
    }
    notify(
        ctx,
        NotificationKind::SubscriptionCancelled,
        tx,
        None,
        a.dunning.as_ref().and_then(|d| d.last_code),
        catalogue::ended(why),
        None,
    )
    .await?;
    // Terminal only once every effect is done: callers waiting on it see the whole result.
    set_status(ctx, SubscriptionStatus::Cancelled, PaymentState::Idle);
    publish(ctx);
    ctx.set_current_details(format!("cancelled: {reason}"));
    Ok(SubscriptionStatus::Cancelled)
}
