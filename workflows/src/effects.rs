//! Side effects the workflow asks for, each an idempotent activity keyed by a business id:
//! shared by the first payment and the renewal loop so both record, grant, revoke, notify and
//! remember answers the same way. (Money moves only in `crate::charge`.)
//!
//! Store writes go through [`persist`]: a write the store refuses for good (a ledger conflict,
//! refused data) parks the subscription for an operator instead of failing the workflow, since
//! money may already have moved (`crate::attention`). Access and notification calls retry until
//! the peer answers.

use crate::attention;
use crate::patches::{self, patched};
use crate::state::Ctx;
use crate::step::{side_effect_opts, step, step_failure};
use billing_activities::BillingActivities;
use billing_domain::messages::{
    CloseUnpaid, GatewayTransaction, GrantAccess, NotificationKind, Notify, OpenInvoice,
    PaymentOutcome, RecordTransaction, RevokeAccess, SaveStartOutcome, SubscriptionInput,
    SubscriptionStatus, SyncSubscription, TariffSnapshot, ThreeDsChallenge,
};
use billing_domain::{InvoiceId, Money, TransactionUuid};
use chrono::{DateTime, Utc};
use temporalio_common::ActivityDefinition;
use temporalio_sdk::WorkflowResult;

/// Runs a store step; if the store refuses it for good, parks the run until an operator asks
/// for a retry (histories recorded before the money-safety patch fail the run as they did).
async fn persist<AD>(
    ctx: &Ctx,
    activity: impl Fn() -> AD,
    input: AD::Input,
    what: &str,
) -> WorkflowResult<AD::Output>
where
    AD: ActivityDefinition,
    AD::Input: Clone,
{
    let opts = side_effect_opts(&ctx.state(|s| s.input.clone()), what);
    loop {
        match step(ctx, activity(), input.clone(), opts.clone()).await {
            Ok(out) => return Ok(out),
            Err(e) if patched(ctx, patches::MONEY_SAFETY) => {
                let why = step_failure(&e)
                    .map(|f| f.message)
                    .unwrap_or_else(|| e.to_string());
                attention::park(ctx, format!("{what} was refused: {why}"), None).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Opens (idempotently) the account, the subscription row and the period's invoice.
pub(crate) async fn open_invoice(ctx: &Ctx, req: OpenInvoice, what: &str) -> WorkflowResult<()> {
    persist(ctx, || BillingActivities::open_invoice, req, what).await?;
    Ok(())
}

/// Records a pending 3-D Secure challenge so the TermUrl can route the bank's answer.
pub(crate) async fn record_3ds_challenge(ctx: &Ctx, req: ThreeDsChallenge) -> WorkflowResult<()> {
    persist(
        ctx,
        || BillingActivities::record_3ds_challenge,
        req,
        "record 3-D Secure challenge",
    )
    .await
}

pub(crate) async fn record(
    ctx: &Ctx,
    invoice_id: InvoiceId,
    t: &GatewayTransaction,
    period_end: DateTime<Utc>,
) -> WorkflowResult<TransactionUuid> {
    let input = ctx.state(|s| s.input.clone());
    persist(
        ctx,
        || BillingActivities::record_transaction,
        RecordTransaction {
            subscription_id: input.subscription_id,
            account_id: input.account_id,
            invoice_id,
            transaction: t.clone(),
            period_end,
        },
        "record transaction",
    )
    .await
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
    persist(
        ctx,
        || BillingActivities::sync_subscription,
        SyncSubscription {
            subscription_id: input.subscription_id,
            status,
            tariff,
        },
        "sync subscription",
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
    persist(
        ctx,
        || BillingActivities::close_unpaid,
        CloseUnpaid {
            subscription_id: input.subscription_id,
            invoice_id,
            invoice_status: invoice_status.to_string(),
            subscription_status,
        },
        "close unpaid invoice",
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
    persist(
        ctx,
        || BillingActivities::save_start_outcome,
        SaveStartOutcome {
            account_id: input.account_id,
            request_id: input.request_id.clone(),
            outcome: outcome.clone(),
        },
        "remember the answer",
    )
    .await?;
    Ok(())
}
