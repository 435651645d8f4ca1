//! The paid subscription's loop, from the first payment until it ends: sleep durably until the
//! next due time ([`crate::dunning::plan`]), act ([`crate::renewal`]), re-plan after any change
//! (cancel, resume, tariff change, test clock) or a Temporal cancellation request, and continue
//! as new at a period boundary after `renewals_per_run` paid renewals.

use crate::cancel;
use crate::dunning::{plan, Due};
use crate::effects::notify;
use crate::patches::{self, patched};
use crate::renewal;
use crate::search::publish;
use crate::sleep::sleep;
use crate::state::{clock, Ctx, SubscriptionWorkflow};
use billing_domain::catalogue::{self, Ending};
use billing_domain::messages::{NotificationKind, SubscriptionStatus};
use billing_domain::TransactionUuid;
use std::time::Duration;
use temporalio_sdk::workflows::select;
use temporalio_sdk::{
    ApplicationFailure, ContinueAsNewOptions, TimerResult, WorkflowResult, WorkflowTermination,
};

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
    if !patched(ctx, patches::RENEWALS_PER_RUN) {
        return true;
    }
    renewed >= ctx.state(|s| s.input.config.renewals_per_run).max(1)
}

/// A cancel-now arrived while a renewal was being charged, and the charge went through: the
/// user has paid for the new period, so it is kept and the subscription ends at its end (no
/// more charges). The cancel's answer and a notification say so. (A refund of the period is an
/// operator's or, later, the user's choice; it is not made here.)
async fn keep_paid_period(ctx: &Ctx) -> WorkflowResult<()> {
    let a = crate::state::active(ctx)?;
    let note = catalogue::cancelled_after_paid_period(a.period_end);
    ctx.state_mut(|s| {
        s.cancel_now_requested = false;
        s.cancel_now_at_renewals = None;
        if let Some(x) = s.active.as_mut() {
            x.cancel_at_period_end = true;
        }
        s.note = Some(note.clone());
        s.changes += 1;
    });
    let invoice =
        billing_domain::InvoiceId::derive(ctx.state(|s| s.input.subscription_id), a.period_start);
    notify(
        ctx,
        NotificationKind::SubscriptionCancelled,
        TransactionUuid::for_event(invoice, "cancel-kept-paid-period"),
        None,
        None,
        note,
        Some(a.period_end),
    )
    .await?;
    ctx.state_mut(|s| {
        s.cancels_handled = s.cancels_requested;
        s.published = None;
    });
    publish(ctx);
    ctx.set_current_details(format!(
        "cancel-now arrived while the renewal was being paid; ends at {}",
        a.period_end.to_rfc3339()
    ));
    Ok(())
}

/// Runs the paid subscription until it ends. Continues as new at a period boundary after
/// `renewals_per_run` paid renewals.
pub(crate) async fn run(ctx: &mut Ctx) -> WorkflowResult<SubscriptionStatus> {
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
            let (suspended, by_operator, paid_since) = ctx.state(|s| {
                let a = s.active.as_ref();
                let suspended = a
                    .and_then(|a| a.dunning.as_ref())
                    .is_some_and(|d| d.suspended);
                // A renewal charge was running when the cancel arrived, and it got paid.
                let paid_since = s
                    .cancel_now_at_renewals
                    .zip(a)
                    .is_some_and(|(at, a)| a.renewals > at && a.dunning.is_none());
                (suspended, s.operator_cancel, paid_since)
            });
            if paid_since && !by_operator && patched(ctx, patches::MONEY_SAFETY) {
                keep_paid_period(ctx).await?;
                continue;
            }
            let why = if by_operator {
                Ending::ByOperator
            } else {
                Ending::ByUser
            };
            return finish(ctx, renewal::end(ctx, why, "void", !suspended).await?).await;
        }
        let (a, config) = ctx.state(|s| (s.active.clone(), s.input.config.clone()));
        let a = a.ok_or_else(|| ApplicationFailure::non_retryable("no active billing state"))?;
        let (at, due) = plan(&a, &config);
        let now = clock(ctx)?;
        if at <= now {
            let renewals_before = a.renewals;
            match due {
                Due::Renew => renewal::renew(ctx).await?,
                Due::Retry => renewal::retry(ctx).await?,
                Due::Suspend => renewal::suspend(ctx).await?,
                Due::EndAtPeriodEnd => {
                    return finish(
                        ctx,
                        renewal::end(ctx, Ending::AtPeriodEnd, "void", true).await?,
                    )
                    .await;
                }
                Due::CancelForNonPayment => {
                    // Revoke access unless the suspension already did (a policy whose grace
                    // lasts until the cancellation never suspends).
                    let suspended = a.dunning.as_ref().is_some_and(|d| d.suspended);
                    return finish(
                        ctx,
                        renewal::end(ctx, Ending::NonPayment, "uncollectible", !suspended).await?,
                    )
                    .await;
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
