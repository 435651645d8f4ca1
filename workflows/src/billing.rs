//! The life of a paid subscription: durable sleep until the next due time, renewal by saved
//! token, dunning (retries, grace, suspension, cancellation for non-payment), cancel and tariff
//! changes, the test clock, and continue-as-new at each period boundary.
//!
//! Every due time is an absolute instant computed from the state (anchor + calendar periods,
//! due date + policy offsets), so nothing drifts and a re-plan after any change is exact.

use crate::cancel;
use crate::effects::{close_unpaid, grant, notify, record, revoke, sync};
use crate::patches::patched;
use crate::search::*;
use crate::sleep::sleep;
use crate::step::step;
use crate::subscription::{
    classify_charge_error, gateway_call_opts, now, side_effect_opts, ts, ChargeFate,
    SubscriptionWorkflow,
};
use billing_activities::BillingActivities;
use billing_domain::decline::{classify, describe, DeclineClass};
use billing_domain::messages::{
    ActiveState, BillingConfig, Dunning, GatewayTransaction, NotificationKind, OpenInvoice,
    PaymentState, SubscriptionStatus, TokenCharge,
};
use billing_domain::{InvoiceId, Money, TransactionUuid};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::time::Duration;
use temporalio_sdk::workflows::select;
use temporalio_sdk::{
    ApplicationFailure, ContinueAsNewOptions, TimerResult, WorkflowContext, WorkflowResult,
    WorkflowTermination,
};

type Ctx = WorkflowContext<SubscriptionWorkflow>;

/// What falls due next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Renew,
    EndAtPeriodEnd,
    Retry,
    Suspend,
    CancelForNonPayment,
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

/// The next due action and its instant.
fn plan(a: &ActiveState, c: &BillingConfig) -> (DateTime<Utc>, Due) {
    let Some(d) = &a.dunning else {
        return if a.cancel_at_period_end {
            (a.period_end, Due::EndAtPeriodEnd)
        } else {
            (a.period_end, Due::Renew)
        };
    };
    let grace_end = add(d.due_at, c.dunning.grace);
    let retry_index = d.attempts.saturating_sub(1) as usize;
    let next_retry = (!d.hard)
        .then(|| c.dunning.retry_after.get(retry_index))
        .flatten()
        .map(|off| add(d.due_at, *off));
    match next_retry {
        Some(r) if d.suspended || r <= grace_end => (r, Due::Retry),
        Some(_) => (grace_end, Due::Suspend),
        None if !d.suspended => (grace_end, Due::Suspend),
        // Suspended and no retry left: give up now.
        None => (grace_end, Due::CancelForNonPayment),
    }
}

/// The next planned charge (renewal or retry), for the query and the search attribute.
pub(crate) fn next_charge(a: &ActiveState, c: &BillingConfig) -> Option<DateTime<Utc>> {
    match plan(a, c) {
        (t, Due::Renew | Due::Retry) => Some(t),
        (_, Due::Suspend) => {
            let d = a.dunning.as_ref()?;
            (!d.hard)
                .then(|| {
                    c.dunning
                        .retry_after
                        .get(d.attempts.saturating_sub(1) as usize)
                })
                .flatten()
                .map(|o| add(d.due_at, *o))
        }
        _ => None,
    }
}

fn active(ctx: &Ctx) -> Result<ActiveState, ApplicationFailure> {
    ctx.state(|s| s.active.clone())
        .ok_or_else(|| ApplicationFailure::non_retryable("no active billing state"))
}

/// The subscription's clock: workflow time plus the test-clock offset.
fn clock(ctx: &Ctx) -> Result<DateTime<Utc>, ApplicationFailure> {
    let offset = ctx.state(|s| s.active.as_ref().map(|a| a.clock_offset_secs).unwrap_or(0));
    Ok(now(ctx)? + ChronoDuration::seconds(offset))
}

fn publish(ctx: &Ctx) {
    let (status, payment, a, failed, code, config) = ctx.state(|s| {
        (
            s.status,
            s.payment_state,
            s.active.clone(),
            s.failed_attempts,
            s.last_decline_code,
            s.input.config.clone(),
        )
    });
    let mut attrs = vec![
        SUBSCRIPTION_STATUS.value_set(status.as_str().to_string()),
        PAYMENT_STATE.value_set(payment.as_str().to_string()),
        FAILED_ATTEMPTS.value_set(i64::from(failed)),
        LAST_DECLINE_CODE.value_set(code.map(|c| c.to_string()).unwrap_or_default()),
    ];
    if let Some(a) = &a {
        attrs.push(TARIFF_CODE.value_set(a.tariff.code.to_string()));
        attrs.push(BILLING_PERIOD.value_set(i64::from(a.renewals)));
        attrs.push(CANCEL_AT_PERIOD_END.value_set(a.cancel_at_period_end));
        if let Some(t) = next_charge(a, &config).filter(|_| !status.is_terminal()) {
            attrs.push(NEXT_CHARGE_AT.value_set(ts(t)));
        }
    }
    if patched(ctx, QUIET_UPSERTS_PATCH) {
        // Every upsert is a history event and a visibility write: skip a repeat of the last.
        let key = format!("{attrs:?}");
        if ctx.state(|s| s.published.as_deref() == Some(key.as_str())) {
            return;
        }
        ctx.state_mut(|s| s.published = Some(key));
    }
    ctx.upsert_search_attributes(attrs);
}

/// Patch id: `publish` skips repeats, and a renewal charge does not publish `charging` (its
/// outcome is published in the same workflow task; a charge whose outcome stays unknown shows as
/// `reconciling`). Histories recorded before it replay with every upsert.
pub const QUIET_UPSERTS_PATCH: &str = "quiet-upserts";

fn set_status(ctx: &Ctx, status: SubscriptionStatus, payment: PaymentState) {
    ctx.state_mut(|s| {
        s.status = status;
        s.payment_state = payment;
    });
}

/// Charges `invoice` by saved token, attempt `attempt`; unknown outcomes are reconciled.
async fn charge(
    ctx: &Ctx,
    invoice_id: InvoiceId,
    amount: Money,
    attempt: u32,
) -> WorkflowResult<ChargeFate> {
    let (input, a) = ctx.state(|s| (s.input.clone(), s.active.clone()));
    let a = a.ok_or_else(|| ApplicationFailure::non_retryable("no active billing state"))?;
    let Some(token) = a.token.clone() else {
        return Ok(ChargeFate::Declined(
            None,
            0,
            "no saved card to charge".into(),
        ));
    };
    set_status(ctx, ctx.state(|s| s.status), PaymentState::Charging);
    if !patched(ctx, QUIET_UPSERTS_PATCH) {
        ctx.upsert_search_attributes([
            PAYMENT_STATE.value_set(PaymentState::Charging.as_str().to_string())
        ]);
    }
    ctx.set_current_details(format!("charging invoice {invoice_id}, attempt {attempt}"));
    let opts = gateway_call_opts(
        &input.config,
        format!("charge invoice {invoice_id} by token, attempt {attempt}"),
    );
    let req = TokenCharge {
        invoice_id,
        account_id: input.account_id,
        amount,
        token,
        request_key: invoice_id.charge_request_key(attempt),
        description: format!("{} renewal", a.tariff.name),
        email: a.email.clone(),
    };
    Ok(
        match step(ctx, BillingActivities::charge_token, req, opts).await {
            Ok(t) if t.is_completed() => ChargeFate::Approved(t),
            Ok(t) => {
                let code = t.reason_code;
                ChargeFate::Declined(Some(t), code, describe(code).to_string())
            }
            Err(err) => match classify_charge_error(&err) {
                Some(f) => f,
                None => {
                    SubscriptionWorkflow::reconcile(ctx, &input, invoice_id, err.to_string())
                        .await?
                }
            },
        },
    )
}

/// A paid period: record, extend access, notify, move the period forward.
async fn paid(
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
            format!("renewed until {}", end.to_rfc3339()),
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
async fn failed(
    ctx: &Ctx,
    invoice_id: InvoiceId,
    fate: ChargeFate,
    attempt: u32,
) -> WorkflowResult<()> {
    let (t, code, message) = match fate {
        ChargeFate::Declined(t, code, message) => (t, code, message),
        ChargeFate::NotCharged(message) => (None, 0, message),
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
    let hint = if hard {
        "; update your card to keep watching"
    } else {
        "; we will retry"
    };
    notify(
        ctx,
        NotificationKind::RenewalFailed,
        tx,
        Some(d.amount),
        Some(code),
        format!("{message}{hint}"),
        None,
    )
    .await?;
    publish(ctx);
    Ok(())
}

async fn renew(ctx: &Ctx) -> WorkflowResult<()> {
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
    step(
        ctx,
        BillingActivities::open_invoice,
        OpenInvoice {
            subscription_id: input.subscription_id,
            account_id: input.account_id,
            email: a.email.clone(),
            tariff: tariff.clone(),
            invoice_id,
            period_start: start,
            period_end: end,
        },
        side_effect_opts(&input, "open renewal invoice"),
    )
    .await?;
    match charge(ctx, invoice_id, tariff.price, 1).await? {
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

async fn retry(ctx: &Ctx) -> WorkflowResult<()> {
    let d = active(ctx)?
        .dunning
        .ok_or_else(|| ApplicationFailure::non_retryable("retry without dunning"))?;
    let attempt = d.attempts + 1;
    match charge(ctx, d.invoice_id, d.amount, attempt).await? {
        ChargeFate::Approved(t) => {
            paid(ctx, d.invoice_id, t, d.period_index, d.due_at, d.period_end).await?;
            sync(ctx, SubscriptionStatus::Active, None).await
        }
        fate => failed(ctx, d.invoice_id, fate, attempt).await,
    }
}

async fn suspend(ctx: &Ctx) -> WorkflowResult<()> {
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
        "access suspended: the renewal is unpaid".into(),
        None,
    )
    .await?;
    publish(ctx);
    Ok(())
}

/// Ends the subscription: `reason` is told to the user; an unpaid invoice is closed as
/// `invoice_status`; access is revoked unless it already was.
async fn end(
    ctx: &Ctx,
    reason: &str,
    invoice_status: &str,
    revoke_access: bool,
) -> WorkflowResult<SubscriptionStatus> {
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
        reason.to_string(),
        None,
    )
    .await?;
    // Terminal only once every effect is done: callers waiting on it see the whole result.
    set_status(ctx, SubscriptionStatus::Cancelled, PaymentState::Idle);
    publish(ctx);
    ctx.set_current_details(format!("cancelled: {reason}"));
    Ok(SubscriptionStatus::Cancelled)
}

/// Patch id: runs continue as new after `renewals_per_run` paid renewals instead of after each.
pub const RENEWALS_PER_RUN_PATCH: &str = "renewals-per-run";

/// Whether this run should hand over to a fresh one now (nothing is due, `renewed` paid
/// renewals so far). Histories recorded before the `renewals-per-run` patch continued after every
/// renewal and keep doing so on replay.
fn continue_now(ctx: &Ctx, renewed: u32) -> bool {
    if ctx.continue_as_new_suggested() {
        return true;
    }
    if renewed == 0 {
        return false;
    }
    if !patched(ctx, RENEWALS_PER_RUN_PATCH) {
        return true;
    }
    renewed >= ctx.state(|s| s.input.config.renewals_per_run).max(1)
}

/// Runs the paid subscription until it ends. Continues as new at a period boundary after
/// `renewals_per_run` paid renewals.
pub(crate) async fn run_loop(ctx: &mut Ctx) -> WorkflowResult<SubscriptionStatus> {
    publish(ctx);
    // Paid renewals in this run (continue-as-new after `renewals_per_run` of them).
    let mut renewed_in_run = 0u32;
    loop {
        if cancel::requested(ctx) && !ctx.state(|s| s.operator_cancel) {
            // A Temporal cancellation request: cancel now, as `cancel(Now)` does (`crate::cancel`).
            // Checked here, between steps, so a step in flight always finished first.
            ctx.state_mut(|s| {
                s.cancel_now_requested = true;
                s.operator_cancel = true;
                s.changes += 1;
            });
            ctx.set_current_details("Temporal cancellation requested: cancelling now");
        }
        if ctx.state(|s| s.cancel_now_requested) {
            let (suspended, by_operator) = ctx.state(|s| {
                let suspended = s
                    .active
                    .as_ref()
                    .and_then(|a| a.dunning.as_ref())
                    .is_some_and(|d| d.suspended);
                (suspended, s.operator_cancel)
            });
            let reason = if by_operator {
                cancel::BY_OPERATOR
            } else {
                "cancelled by the user"
            };
            return finish(ctx, end(ctx, reason, "void", !suspended).await?).await;
        }
        let (a, config) = ctx.state(|s| (s.active.clone(), s.input.config.clone()));
        let a = a.ok_or_else(|| ApplicationFailure::non_retryable("no active billing state"))?;
        let (at, due) = plan(&a, &config);
        let now = clock(ctx)?;
        if at <= now {
            let renewals_before = a.renewals;
            match due {
                Due::Renew => renew(ctx).await?,
                Due::Retry => retry(ctx).await?,
                Due::Suspend => suspend(ctx).await?,
                Due::EndAtPeriodEnd => {
                    return finish(
                        ctx,
                        end(ctx, "cancelled at the end of the paid period", "void", true).await?,
                    )
                    .await;
                }
                Due::CancelForNonPayment => {
                    let reason = "cancelled for non-payment";
                    return finish(ctx, end(ctx, reason, "uncollectible", false).await?).await;
                }
            }
            if ctx.state(|s| {
                s.active
                    .as_ref()
                    .is_some_and(|x| x.renewals > renewals_before && x.dunning.is_none())
            }) {
                renewed_in_run += 1;
            }
            continue;
        }
        // Nothing due: everything the clock reached has run.
        ctx.state_mut(|s| s.settled_epoch = s.clock_epoch);
        publish(ctx);
        if continue_now(ctx, renewed_in_run) {
            // At a period boundary: start a fresh history carrying the whole state, once
            // in-flight update handlers (e.g. a test-clock advance) have answered.
            let handlers = ctx.clone();
            cancel::until(ctx, move |_| handlers.all_handlers_finished()).await;
            if cancel::requested(ctx) {
                // A cancellation request is for this run: act on it here, not in the next one.
                continue;
            }
            let mut next = ctx.state(|s| s.input.clone());
            next.resume = ctx.state(|s| s.active.clone());
            // The next run starts on this code: every patch it knows applies to all of it.
            next.patch_baseline = crate::patches::BASELINE;
            ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
        }
        ctx.set_current_details(format!("{:?} due at {}", due, at.to_rfc3339()));
        let seen = ctx.state(|s| s.changes);
        let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
        let mut timer = sleep(ctx, wait, format!("{due:?} at {}", at.to_rfc3339()));
        let woke = select! {
            _ = cancel::until(ctx, move |s: &SubscriptionWorkflow| s.changes != seen) => None,
            r = &mut timer => Some(r),
            _ = cancel::request(ctx) => None,
        };
        match woke {
            // A change or a cancellation request: re-plan (the timer is obsolete).
            None => timer.cancel(),
            Some(TimerResult::Fired) => {}
            // Only `timer.cancel()` above cancels this timer. Re-planning now would find the same
            // due time and loop without waiting (issue 11): fail the task instead.
            Some(TimerResult::Cancelled) => {
                return cancel::bug(ctx, format!("the {due:?} timer was cancelled")).await;
            }
        }
    }
}

/// Waits for in-flight update handlers, then ends the run with `status`.
async fn finish(ctx: &mut Ctx, status: SubscriptionStatus) -> WorkflowResult<SubscriptionStatus> {
    ctx.state_mut(|s| s.settled_epoch = s.clock_epoch);
    let handlers = ctx.clone();
    cancel::until(ctx, move |_| handlers.all_handlers_finished()).await;
    if ctx.state(|s| s.operator_cancel) {
        // The operator asked Temporal to cancel this run: it closes as Canceled.
        return Err(WorkflowTermination::cancelled());
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_domain::messages::{DunningPolicy, TariffSnapshot};
    use billing_domain::{BillingPeriod, Currency, PeriodUnit, TariffCode};

    fn state(dunning: Option<Dunning>) -> ActiveState {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        ActiveState {
            anchor: t0,
            period_index: 0,
            period_start: t0,
            period_end: t0 + ChronoDuration::days(30),
            token: Some(billing_domain::CardToken::new("tk")),
            tariff: TariffSnapshot {
                code: TariffCode::parse("basic").unwrap(),
                name: "b".into(),
                price: Money {
                    minor: 100,
                    currency: Currency::Rub,
                },
                period: BillingPeriod {
                    unit: PeriodUnit::Month,
                    count: 1,
                },
            },
            pending_tariff: None,
            cancel_at_period_end: false,
            dunning,
            renewals: 0,
            clock_offset_secs: 0,
            start_answer: None,
            email: String::new(),
        }
    }

    fn dunning(attempts: u32, hard: bool, suspended: bool) -> Dunning {
        let due = DateTime::from_timestamp(1_800_000_000, 0).unwrap() + ChronoDuration::days(30);
        Dunning {
            invoice_id: InvoiceId(uuid::Uuid::nil()),
            period_index: 1,
            due_at: due,
            period_end: due + ChronoDuration::days(30),
            amount: Money {
                minor: 100,
                currency: Currency::Rub,
            },
            attempts,
            hard,
            suspended,
            last_code: Some(5051),
        }
    }

    #[test]
    fn dunning_plan_follows_the_policy() {
        let day = Duration::from_secs(86_400);
        let c = BillingConfig {
            dunning: DunningPolicy {
                retry_after: vec![day, 3 * day, 5 * day],
                grace: 4 * day,
            },
            ..Default::default()
        };
        let s = state(None);
        assert_eq!(plan(&s, &c), (s.period_end, Due::Renew));
        let d = dunning(1, false, false);
        let due = d.due_at;
        assert_eq!(plan(&state(Some(d)), &c), (add(due, day), Due::Retry));
        assert_eq!(
            plan(&state(Some(dunning(2, false, false))), &c),
            (add(due, 3 * day), Due::Retry)
        );
        // the 5-day retry comes after the 4-day grace: suspend first, then retry
        assert_eq!(
            plan(&state(Some(dunning(3, false, false))), &c),
            (add(due, 4 * day), Due::Suspend)
        );
        assert_eq!(
            plan(&state(Some(dunning(3, false, true))), &c),
            (add(due, 5 * day), Due::Retry)
        );
        assert_eq!(
            plan(&state(Some(dunning(4, false, true))), &c).1,
            Due::CancelForNonPayment
        );
        // hard decline: no retries, wait for the grace end, then give up
        assert_eq!(
            plan(&state(Some(dunning(1, true, false))), &c),
            (add(due, 4 * day), Due::Suspend)
        );
        assert_eq!(
            plan(&state(Some(dunning(1, true, true))), &c).1,
            Due::CancelForNonPayment
        );
        let mut s = state(None);
        s.cancel_at_period_end = true;
        assert_eq!(plan(&s, &c).1, Due::EndAtPeriodEnd);
    }
}
