//! Side effects the workflow asks for, each an idempotent activity keyed by a business id:
//! shared by the first payment and the renewal loop so both record, grant, revoke, notify and
//! remember answers the same way. (Money moves only in `crate::charge`.)

use crate::state::Ctx;
use crate::step::{side_effect_opts, step};
use billing_activities::BillingActivities;
use billing_domain::messages::{
    CloseUnpaid, GatewayTransaction, GrantAccess, NotificationKind, Notify, PaymentOutcome,
    RecordTransaction, RevokeAccess, SaveStartOutcome, SubscriptionInput, SubscriptionStatus,
    SyncSubscription, TariffSnapshot,
};
use billing_domain::{InvoiceId, Money, TransactionUuid};
use chrono::{DateTime, Utc};
use temporalio_sdk::WorkflowResult;

pub(crate) async fn record(
    ctx: &Ctx,
    invoice_id: InvoiceId,
    t: &GatewayTransaction,
    period_end: DateTime<Utc>,
) -> WorkflowResult<TransactionUuid> {
    let input = ctx.state(|s| s.input.clone());
    Ok(step(
        ctx,
        BillingActivities::record_transaction,
        RecordTransaction {
            subscription_id: input.subscription_id,
            account_id: input.account_id,
            invoice_id,
            transaction: t.clone(),
            period_end,
        },
        side_effect_opts(&input, "record transaction"),
    )
    .await?)
}

pub(crate) async fn grant(
    ctx: &Ctx,
    until: DateTime<Utc>,
    tx: TransactionUuid,
) -> WorkflowResult<()> {
    let input = ctx.state(|s| s.input.clone());
    step(
        ctx,
        BillingActivities::grant_access,
        GrantAccess {
            account_id: input.account_id,
            subscription_id: input.subscription_id,
            until,
            transaction_id: tx,
        },
        side_effect_opts(&input, "grant access"),
    )
    .await?;
    Ok(())
}

pub(crate) async fn revoke(ctx: &Ctx, tx: TransactionUuid, reason: &str) -> WorkflowResult<()> {
    let input = ctx.state(|s| s.input.clone());
    step(
        ctx,
        BillingActivities::revoke_access,
        RevokeAccess {
            account_id: input.account_id,
            subscription_id: input.subscription_id,
            transaction_id: tx,
            reason: reason.to_string(),
        },
        side_effect_opts(&input, "revoke access"),
    )
    .await?;
    Ok(())
}

pub(crate) async fn notify(
    ctx: &Ctx,
    kind: NotificationKind,
    tx: TransactionUuid,
    amount: Option<Money>,
    code: Option<i32>,
    message: String,
    until: Option<DateTime<Utc>>,
) -> WorkflowResult<()> {
    let input = ctx.state(|s| s.input.clone());
    step(
        ctx,
        BillingActivities::notify,
        Notify {
            kind,
            account_id: input.account_id,
            subscription_id: input.subscription_id,
            transaction_id: tx,
            amount,
            email: input.email.clone(),
            reason_code: code,
            message,
            access_until: until,
        },
        side_effect_opts(&input, "notify"),
    )
    .await?;
    Ok(())
}

pub(crate) async fn sync(
    ctx: &Ctx,
    status: SubscriptionStatus,
    tariff: Option<TariffSnapshot>,
) -> WorkflowResult<()> {
    let input = ctx.state(|s| s.input.clone());
    step(
        ctx,
        BillingActivities::sync_subscription,
        SyncSubscription {
            subscription_id: input.subscription_id,
            status,
            tariff,
        },
        side_effect_opts(&input, "sync subscription"),
    )
    .await?;
    Ok(())
}

/// Closes an unpaid invoice as `invoice_status` and sets the subscription's status.
pub(crate) async fn close_unpaid(
    ctx: &Ctx,
    invoice_id: InvoiceId,
    invoice_status: &str,
    subscription_status: SubscriptionStatus,
) -> WorkflowResult<()> {
    let input = ctx.state(|s| s.input.clone());
    step(
        ctx,
        BillingActivities::close_unpaid,
        CloseUnpaid {
            subscription_id: input.subscription_id,
            invoice_id,
            invoice_status: invoice_status.to_string(),
            subscription_status,
        },
        side_effect_opts(&input, "close unpaid invoice"),
    )
    .await?;
    Ok(())
}

/// Keeps the start request's final answer (table `start_requests`).
pub(crate) async fn remember_answer(
    ctx: &Ctx,
    input: &SubscriptionInput,
    outcome: &PaymentOutcome,
) -> WorkflowResult<()> {
    step(
        ctx,
        BillingActivities::save_start_outcome,
        SaveStartOutcome {
            account_id: input.account_id,
            request_id: input.request_id.clone(),
            outcome: outcome.clone(),
        },
        side_effect_opts(input, "remember the answer"),
    )
    .await?;
    Ok(())
}
