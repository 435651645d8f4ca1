//! How the workflow runs a step (an activity from `billing-activities`).
//!
//! New histories run every step as a **local activity**: the worker executes it inside the
//! workflow task and records the result as a marker, so a first payment or a renewal costs one or
//! two workflow tasks instead of a server round trip per step (BENCHMARKS.md has the figures).
//! Re-running a local activity after a crash is safe because every step is idempotent by a
//! business key: invoice id, gateway transaction id, `X-Request-ID` derived from invoice and
//! attempt, transaction UUID for access and notification calls.
//!
//! A step is never interrupted by a Temporal cancellation request (its token is detached, see
//! `crate::cancel`): a charge runs to its outcome, and the workflow acts on the request after it.
//!
//! Histories written before that change scheduled ordinary activities. The `local-steps` patch
//! keeps them replaying on their old path (`ctx.patched`), so subscriptions already running keep
//! running across the upgrade; the replay fixtures of both kinds are checked in CI.

use crate::cancel::detached;
use crate::state::Ctx;
use billing_domain::messages::{GatewayTransaction, SubscriptionInput};
use std::time::Duration;
use temporalio_common::error::IncomingError;
use temporalio_common::ActivityDefinition;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityExecutionError, ActivityOptions, LocalActivityOptions};

/// Options of one step, whichever way it runs.
#[derive(Clone, Debug)]
pub(crate) struct StepOptions {
    pub start_to_close: Duration,
    /// Total time over all attempts; `None` retries until success.
    pub schedule_to_close: Option<Duration>,
    pub retry: RetryPolicy,
    pub summary: String,
}

impl StepOptions {
    fn local(self) -> LocalActivityOptions {
        match self.schedule_to_close {
            Some(total) => LocalActivityOptions::builder()
                .schedule_to_close_timeout(total)
                .start_to_close_timeout(self.start_to_close)
                .retry_policy(self.retry)
                .summary(self.summary)
                .cancellation_token(detached())
                .build(),
            None => LocalActivityOptions::builder()
                .start_to_close_timeout(self.start_to_close)
                .retry_policy(self.retry)
                .summary(self.summary)
                .cancellation_token(detached())
                .build(),
        }
    }

    fn remote(self) -> ActivityOptions {
        match self.schedule_to_close {
            Some(total) => ActivityOptions::with_close_timeouts(
                temporalio_common::ActivityCloseTimeouts::ScheduleAndStartToClose {
                    schedule_to_close: total,
                    start_to_close: self.start_to_close,
                },
            )
            .retry_policy(self.retry)
            .summary(self.summary)
            .cancellation_token(detached())
            .build(),
            None => ActivityOptions::with_start_to_close_timeout(self.start_to_close)
                .retry_policy(self.retry)
                .summary(self.summary)
                .cancellation_token(detached())
                .build(),
        }
    }
}

/// Options of database / access / notification steps: retried until they succeed (they are
/// idempotent), with a bounded attempt time.
pub(crate) fn side_effect_opts(input: &SubscriptionInput, summary: &str) -> StepOptions {
    let c = &input.config;
    StepOptions {
        start_to_close: c.side_effect_timeout,
        schedule_to_close: None,
        retry: RetryPolicy::builder()
            .initial_interval(c.retry_initial_interval)
            .maximum_interval(c.retry_max_interval)
            .non_retryable_error_types([billing_activities::activities::STORE_CONFLICT])
            .build(),
        summary: summary.to_string(),
    }
}

/// Runs one step: a local activity in new histories, an ordinary activity in histories recorded
/// before the `local-steps` patch.
pub(crate) async fn step<AD>(
    ctx: &Ctx,
    activity: AD,
    input: impl Into<AD::Input>,
    opts: StepOptions,
) -> Result<AD::Output, ActivityExecutionError>
where
    AD: ActivityDefinition,
{
    if crate::patches::patched(ctx, crate::patches::LOCAL_STEPS) {
        ctx.execute_local_activity(activity, input, opts.local())
            .await
    } else {
        ctx.execute_activity(activity, input, opts.remote()).await
    }
}

/// Runs a money-moving call (charge, post3ds). Since the money-safety patch it is an ordinary
/// activity: its result is recorded in the history (`ActivityTaskCompleted`) before the next
/// step runs, so a workflow task that fails afterwards, for however long, never runs the charge
/// again. A local activity's result is durable only once its whole workflow task completes, and
/// every retry of a failing task re-ran the charge: a replay inside the gateway's one-hour
/// `X-Request-ID` window, a second payment after it. It costs a server round trip per charge
/// (BENCHMARKS.md). Older histories keep their local (or, older still, ordinary) step.
pub(crate) async fn money_step<AD>(
    ctx: &Ctx,
    activity: AD,
    input: impl Into<AD::Input>,
    opts: StepOptions,
) -> Result<AD::Output, ActivityExecutionError>
where
    AD: ActivityDefinition,
{
    let sent_at = crate::testing::since_epoch(ctx);
    ctx.state_mut(|s| s.money_sent_at = sent_at);
    let result = if crate::patches::patched(ctx, crate::patches::MONEY_SAFETY) {
        ctx.execute_activity(activity, input, opts.remote()).await
    } else {
        step(ctx, activity, input, opts).await
    };
    crate::testing::after_charge(ctx).await;
    ctx.state_mut(|s| s.money_calls += 1);
    result
}

/// A typed failure raised by an activity (`ApplicationFailure` with a type name), read the same
/// way whether it came from an ordinary activity (wrapped as the cause of an activity failure)
/// or a local activity (the application failure itself).
pub(crate) struct StepFailure {
    pub type_name: Option<String>,
    pub message: String,
    /// The gateway transaction a decline carries as its details.
    pub transaction: Option<GatewayTransaction>,
}

pub(crate) fn step_failure(err: &ActivityExecutionError) -> Option<StepFailure> {
    if let Some(IncomingError::Application(a)) = err.cause() {
        return Some(StepFailure {
            type_name: a.type_name().map(str::to_string),
            message: a.to_string(),
            transaction: a.details().ok().flatten(),
        });
    }
    let failure = err.failure()?;
    let info = failure.maybe_application_failure()?;
    let transaction = info
        .details
        .as_ref()
        .and_then(|d| d.payloads.first())
        .and_then(|p| serde_json::from_slice(&p.data).ok());
    Some(StepFailure {
        type_name: (!info.r#type.is_empty()).then(|| info.r#type.clone()),
        message: failure.message.clone(),
        transaction,
    })
}
