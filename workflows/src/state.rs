//! The workflow's state: what one run knows (its input, status, the first payment's progress,
//! the paid subscription's [`ActiveState`] with its period, dunning and pending changes, the
//! test clock), how a new or continued run builds it, the view the `state` query returns, and
//! the clock every due time is computed from. The phases below (`first_payment`, `three_ds`,
//! `active`, `renewal`) change it through the workflow context; `handlers` is the one
//! `#[workflow_methods]` block.

use billing_domain::messages::{
    ActiveState, FirstPaymentRequest, GatewayTransaction, PaymentOutcome, PaymentState,
    SubscriptionInput, SubscriptionStatus, SubscriptionView, ThreeDsAnswer, REJECTED_PREFIX,
};
use billing_domain::{CardToken, GatewayTransactionId, InvoiceId, Money};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::time::UNIX_EPOCH;
use temporalio_common::search_attributes::Timestamp;
use temporalio_macros::workflow;
use temporalio_sdk::{ApplicationFailure, WorkflowContext};

#[workflow]
pub struct SubscriptionWorkflow {
    pub(crate) input: SubscriptionInput,
    pub(crate) status: SubscriptionStatus,
    pub(crate) payment_state: PaymentState,
    pub(crate) first_payment: Option<FirstPaymentRequest>,
    /// What the start update answers: the final outcome, or the 3-D Secure challenge.
    pub(crate) start_answer: Option<PaymentOutcome>,
    /// The first payment's final outcome (paid / declined / expired / unavailable).
    pub(crate) outcome: Option<PaymentOutcome>,
    /// The gateway transaction waiting for the bank's 3-D Secure answer.
    pub(crate) awaiting_3ds: Option<GatewayTransactionId>,
    pub(crate) three_ds_answer: Option<ThreeDsAnswer>,
    /// Answers received so far; an answer the gateway rejected (forged or another transaction's
    /// PaRes) is reported back to its caller by number, and the challenge stays open.
    pub(crate) three_ds_answers: u32,
    pub(crate) three_ds_rejected: Option<(u32, String)>,
    pub(crate) period_start: Option<DateTime<Utc>>,
    pub(crate) period_end: Option<DateTime<Utc>>,
    pub(crate) failed_attempts: u32,
    pub(crate) last_decline_code: Option<i32>,
    /// Saved card of the first payment.
    pub(crate) token: Option<CardToken>,
    /// The paid subscription's billing state (renewals, dunning, pending changes).
    pub(crate) active: Option<ActiveState>,
    pub(crate) cancel_now_requested: bool,
    /// The cancellation came from a Temporal cancellation request (`crate::cancel`): the run
    /// closes as Canceled.
    pub(crate) operator_cancel: bool,
    /// Bumped by every update that can move the next due time (the loop re-plans).
    pub(crate) changes: u64,
    /// Test clock: advances requested / fully processed.
    pub(crate) clock_epoch: u64,
    pub(crate) settled_epoch: u64,
    /// The search attributes last published by `search::publish` in this run (repeats are
    /// skipped); cleared by any other upsert.
    pub(crate) published: Option<String>,
    /// Parked (`needs_attention`): why, and what an operator may do.
    pub(crate) attention: Option<Attention>,
    /// An operator's validated repair, until the parked step takes it.
    pub(crate) repair: Option<Resolution>,
    /// A cancel-now that arrived while a charge was running: the renewals paid when it arrived
    /// (if more are paid when it is acted on, the paid period is kept).
    pub(crate) cancel_now_at_renewals: Option<u32>,
    /// Cancel updates received / handled (a cancel-now answers once its own is handled).
    pub(crate) cancels_requested: u64,
    pub(crate) cancels_handled: u64,
    /// What the last change did when it is not what was asked (shown in the view).
    pub(crate) note: Option<String>,
    /// Money-moving calls made by this run so far (deterministic: the test hooks' key).
    pub(crate) money_calls: u32,
    /// Workflow time (since the Unix epoch) when the last money-moving call was scheduled (the
    /// test hook's clock).
    pub(crate) money_sent_at: Option<std::time::Duration>,
}

/// Why a run is parked in `needs_attention` and what a repair may do.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    /// Shown to operators (the workflow's current details, the `state` query).
    pub reason: String,
    /// A charge whose outcome is unresolved: its invoice and amount (a repair may adopt a
    /// gateway transaction of it, or void it). `None`: a step failed; only a retry helps.
    pub charge: Option<(InvoiceId, Money)>,
    /// The status to go back to once repaired.
    pub resume_status: SubscriptionStatus,
}

/// What an operator's repair resolved to (validated by the `repair` update).
#[derive(Debug, Clone)]
pub(crate) enum Resolution {
    /// Run the parked step again.
    Retry,
    /// The charge was made: this completed transaction of the invoice.
    Adopt(GatewayTransaction),
    /// Nothing was charged: close the invoice.
    Void,
}

/// The context every phase works with.
pub(crate) type Ctx = WorkflowContext<SubscriptionWorkflow>;

impl SubscriptionWorkflow {
    /// The state a run starts with: empty for a new subscription; for a continued run
    /// (continue-as-new) the carried `ActiveState`, fully live from the run's first task, since
    /// updates that arrive with it are validated against this state before `run` executes.
    pub(crate) fn from_input(input: SubscriptionInput) -> Self {
        let resume = input.resume.clone();
        let mut wf = Self {
            input,
            status: SubscriptionStatus::Pending,
            payment_state: PaymentState::Idle,
            first_payment: None,
            start_answer: None,
            outcome: None,
            awaiting_3ds: None,
            three_ds_answer: None,
            three_ds_answers: 0,
            three_ds_rejected: None,
            period_start: None,
            period_end: None,
            failed_attempts: 0,
            last_decline_code: None,
            token: None,
            active: None,
            cancel_now_requested: false,
            operator_cancel: false,
            changes: 0,
            clock_epoch: 0,
            settled_epoch: 0,
            published: None,
            attention: None,
            repair: None,
            cancel_now_at_renewals: None,
            cancels_requested: 0,
            cancels_handled: 0,
            note: None,
            money_calls: 0,
            money_sent_at: None,
        };
        if let Some(resume) = resume {
            wf.status = match &resume.dunning {
                Some(d) if d.suspended => SubscriptionStatus::Suspended,
                Some(_) => SubscriptionStatus::PastDue,
                None => SubscriptionStatus::Active,
            };
            wf.start_answer = resume.start_answer.clone();
            wf.outcome = resume.start_answer.clone();
            wf.period_start = Some(resume.period_start);
            wf.period_end = Some(resume.period_end);
            wf.failed_attempts = resume.dunning.as_ref().map(|d| d.attempts).unwrap_or(0);
            wf.last_decline_code = resume.dunning.as_ref().and_then(|d| d.last_code);
            wf.active = Some(resume);
        }
        wf
    }

    /// When the next charge (renewal or dunning retry) is planned, if any.
    pub(crate) fn next_charge_at(&self) -> Option<DateTime<Utc>> {
        let a = self.active.as_ref()?;
        if self.status.is_terminal() {
            return None;
        }
        crate::dunning::next_charge(a, &self.input.config)
    }

    pub(crate) fn reject_unless_live(
        &self,
    ) -> Result<&ActiveState, Box<dyn std::error::Error + Send + Sync>> {
        if let Some(att) = &self.attention {
            return Err(format!(
                "{REJECTED_PREFIX}: subscription {} needs attention ({}); an operator must repair it first",
                self.input.subscription_id, att.reason
            )
            .into());
        }
        match &self.active {
            Some(a) if !self.status.is_terminal() && !self.cancel_now_requested => Ok(a),
            _ => Err(format!(
                "{REJECTED_PREFIX}: subscription {} is {} and cannot be changed",
                self.input.subscription_id,
                self.status.as_str()
            )
            .into()),
        }
    }

    pub(crate) fn view(&self) -> SubscriptionView {
        let a = self.active.as_ref();
        SubscriptionView {
            subscription_id: self.input.subscription_id,
            account_id: self.input.account_id,
            status: self.status,
            payment_state: self.payment_state,
            tariff_code: a
                .map(|a| a.tariff.code.clone())
                .unwrap_or_else(|| self.input.tariff.code.clone()),
            price: a.map(|a| a.tariff.price).unwrap_or(self.input.tariff.price),
            current_period_start: a.map(|a| a.period_start).or(self.period_start),
            current_period_end: a.map(|a| a.period_end).or(self.period_end),
            next_charge_at: self.next_charge_at(),
            failed_attempts: self.failed_attempts,
            last_decline_code: self.last_decline_code,
            cancel_at_period_end: self.active.as_ref().is_some_and(|a| a.cancel_at_period_end),
            pending_tariff_code: self
                .active
                .as_ref()
                .and_then(|a| a.pending_tariff.as_ref().map(|t| t.code.clone())),
            renewals: self.active.as_ref().map(|a| a.renewals).unwrap_or(0),
            clock_offset_secs: self
                .active
                .as_ref()
                .map(|a| a.clock_offset_secs)
                .unwrap_or(0),
            attention: self.attention.as_ref().map(|a| a.reason.clone()),
            note: self.note.clone(),
        }
    }
}

/// Workflow time in whole seconds (replay-safe).
pub(crate) fn now(ctx: &Ctx) -> Result<DateTime<Utc>, ApplicationFailure> {
    let t = ctx
        .workflow_time()
        .ok_or_else(|| ApplicationFailure::new("workflow time is not available"))?;
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| ApplicationFailure::new("workflow time before epoch"))?;
    // Whole seconds: periods and invoices are stored with microsecond precision, and a second is
    // fine-grained enough for billing.
    DateTime::from_timestamp(d.as_secs() as i64, 0)
        .ok_or_else(|| ApplicationFailure::new("workflow time out of range"))
}

pub(crate) fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
}

/// The paid subscription's billing state (every phase after the first payment has one).
pub(crate) fn active(ctx: &Ctx) -> Result<ActiveState, ApplicationFailure> {
    ctx.state(|s| s.active.clone())
        .ok_or_else(|| ApplicationFailure::non_retryable("no active billing state"))
}

/// The subscription's clock: workflow time plus the test-clock offset.
pub(crate) fn clock(ctx: &Ctx) -> Result<DateTime<Utc>, ApplicationFailure> {
    let offset = ctx.state(|s| s.active.as_ref().map(|a| a.clock_offset_secs).unwrap_or(0));
    Ok(now(ctx)? + ChronoDuration::seconds(offset))
}

pub(crate) fn set_status(ctx: &Ctx, status: SubscriptionStatus, payment: PaymentState) {
    ctx.state_mut(|s| {
        s.status = status;
        s.payment_state = payment;
    });
}
