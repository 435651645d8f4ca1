//! The workflow's entry points, in one `#[workflow_methods]` block: `run` (a new subscription
//! starts with its first payment, a continued run goes straight back to its loop), the updates
//! (first payment, 3-D Secure answer, cancel, resume, change tariff, test clock, an operator's
//! repair) with their validators, and the `state` query. Updates only change the state and wake the run; the
//! phases below do the work.

use crate::active;
use crate::cancel;
use crate::first_payment;
use crate::search::*;
use crate::state::{Ctx, Resolution, SubscriptionWorkflow};
use crate::step::{side_effect_opts, step};
use billing_activities::BillingActivities;
use billing_domain::messages::{
    CancelMode, FirstPaymentRequest, GatewayTransaction, GetPayment, PaymentOutcome, PaymentState,
    RepairAction, RepairRequest, SubscriptionInput, SubscriptionStatus, SubscriptionView,
    TariffSnapshot, ThreeDsAnswer, ALREADY_EXISTS_PREFIX, GATEWAY_REJECTED, NOT_AWAITING_3DS,
    REJECTED_PREFIX,
};
use billing_domain::GatewayTransactionId;
use temporalio_macros::workflow_methods;
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

#[workflow_methods]
impl SubscriptionWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: SubscriptionInput) -> Self {
        Self::from_input(input)
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<SubscriptionStatus> {
        // Before anything else, so that every command below is decided by the same code version.
        crate::patches::adopt_baseline(ctx);
        if ctx.state(|s| s.input.resume.is_some()) {
            // A continued run (state restored by `new`): go on billing.
            return active::run(ctx).await;
        }
        first_payment::run(ctx).await
    }

    /// The bank's 3-D Secure answer (from the TermUrl or gRPC `Confirm3ds`). Refused unless the
    /// subscription is waiting for exactly this transaction. Waits for the final outcome.
    #[update_validator(confirm_3ds)]
    pub fn validate_confirm_3ds(
        &self,
        _ctx: &WorkflowContextView,
        answer: &ThreeDsAnswer,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.awaiting_3ds != Some(answer.gateway_transaction_id) {
            return Err(format!(
                "{NOT_AWAITING_3DS}: subscription {} is not waiting for a 3-D Secure answer for transaction {} (status {}, payment {})",
                self.input.subscription_id,
                answer.gateway_transaction_id,
                self.status.as_str(),
                self.payment_state.as_str()
            )
            .into());
        }
        if self.three_ds_answer.is_some() {
            return Err(format!(
                "{NOT_AWAITING_3DS}: another 3-D Secure answer for transaction {} is being processed",
                answer.gateway_transaction_id
            )
            .into());
        }
        if answer.pa_res.expose().trim().is_empty() {
            return Err(format!("{NOT_AWAITING_3DS}: PaRes is empty").into());
        }
        Ok(())
    }

    #[update]
    pub async fn confirm_3ds(
        ctx: &mut WorkflowContext<Self>,
        answer: ThreeDsAnswer,
    ) -> Result<PaymentOutcome, Box<dyn std::error::Error + Send + Sync>> {
        let seq = ctx.state_mut(|s| {
            s.three_ds_answers += 1;
            s.three_ds_answer = Some(answer);
            s.three_ds_answers
        });
        cancel::until(ctx, move |s: &Self| {
            s.outcome.is_some() || s.three_ds_rejected.as_ref().is_some_and(|(n, _)| *n == seq)
        })
        .await;
        if let Some((_, reason)) = ctx
            .state(|s| s.three_ds_rejected.clone())
            .filter(|(n, _)| *n == seq)
        {
            return Err(
                format!("{GATEWAY_REJECTED}: the gateway refused this PaRes: {reason}").into(),
            );
        }
        Ok(ctx
            .state(|s| s.outcome.clone())
            .unwrap_or(PaymentOutcome::Unavailable {
                subscription_id: ctx.state(|s| s.input.subscription_id),
                message: "the subscription ended before the payment finished".into(),
            }))
    }

    /// The first payment, sent with the start. Waits for the outcome.
    #[update_validator(first_payment)]
    pub fn validate_first_payment(
        &self,
        _ctx: &WorkflowContextView,
        req: &FirstPaymentRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if req.request_id != self.input.request_id {
            return Err(format!(
                "{ALREADY_EXISTS_PREFIX}: account already has subscription {} ({})",
                self.input.subscription_id,
                self.status.as_str()
            )
            .into());
        }
        Ok(())
    }

    #[update]
    pub async fn first_payment(
        ctx: &mut WorkflowContext<Self>,
        req: FirstPaymentRequest,
    ) -> PaymentOutcome {
        ctx.state_mut(|s| {
            if s.first_payment.is_none() {
                s.first_payment = Some(req);
            }
        });
        // The run loop always sets an answer; the workflow cannot end before it does.
        cancel::until(ctx, |s: &Self| s.start_answer.is_some()).await;
        ctx.state(|s| s.start_answer.clone())
            .unwrap_or(PaymentOutcome::Unavailable {
                subscription_id: ctx.state(|s| s.input.subscription_id),
                message: "the subscription ended before its first payment".into(),
            })
    }

    #[update_validator(cancel)]
    pub fn validate_cancel(
        &self,
        _ctx: &WorkflowContextView,
        _mode: &CancelMode,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.reject_unless_live().map(|_| ())
    }

    /// Cancel at period end (access kept, no further charge; undo with `resume`) or now
    /// (access revoked now). A cancel while a renewal is unpaid ends the subscription now.
    #[update]
    pub async fn cancel(ctx: &mut WorkflowContext<Self>, mode: CancelMode) -> SubscriptionView {
        let dunning = ctx.state(|s| s.active.as_ref().is_some_and(|a| a.dunning.is_some()));
        if mode == CancelMode::Now || dunning {
            let mine = ctx.state_mut(|s| {
                s.cancel_now_requested = true;
                s.changes += 1;
                // A charge is running: if it gets paid, the paid period is kept (`active`).
                if matches!(
                    s.payment_state,
                    PaymentState::Charging | PaymentState::Reconciling
                ) {
                    s.cancel_now_at_renewals = s.active.as_ref().map(|a| a.renewals);
                }
                s.note = None;
                s.cancels_requested += 1;
                s.cancels_requested
            });
            cancel::until(ctx, move |s: &Self| {
                s.status.is_terminal() || s.cancels_handled >= mine
            })
            .await;
        } else {
            ctx.state_mut(|s| {
                if let Some(a) = s.active.as_mut() {
                    a.cancel_at_period_end = true;
                }
                s.changes += 1;
            });
            ctx.upsert_search_attributes([CANCEL_AT_PERIOD_END.value_set(true)]);
            ctx.state_mut(|s| s.published = None);
        }
        ctx.state(|s| s.view())
    }

    /// Operators: resolves a subscription parked in `needs_attention` (README, "Operators"):
    /// `retry_step`; `adopt_transaction` (the gateway must know the transaction, completed, for
    /// this invoice, amount and account); `void_invoice` (nothing was charged). A reason is
    /// required. Answers once the run has taken the repair.
    #[update_validator(repair)]
    pub fn validate_repair(
        &self,
        _ctx: &WorkflowContextView,
        req: &RepairRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        req.validate()
            .map_err(|e| format!("{REJECTED_PREFIX}: {e}"))?;
        let Some(att) = &self.attention else {
            return Err(format!(
                "{REJECTED_PREFIX}: subscription {} does not need attention (status {})",
                self.input.subscription_id,
                self.status.as_str()
            )
            .into());
        };
        if self.repair.is_some() {
            return Err(format!("{REJECTED_PREFIX}: a repair is already being applied").into());
        }
        if att.charge.is_none() && req.action != RepairAction::RetryStep {
            return Err(format!(
                "{REJECTED_PREFIX}: the subscription is parked on a failed step ({}); only retry_step repairs it",
                att.reason
            )
            .into());
        }
        Ok(())
    }

    #[update]
    pub async fn repair(
        ctx: &mut WorkflowContext<Self>,
        req: RepairRequest,
    ) -> Result<SubscriptionView, Box<dyn std::error::Error + Send + Sync>> {
        let resolution = match req.action {
            RepairAction::RetryStep => Resolution::Retry,
            RepairAction::VoidInvoice => Resolution::Void,
            RepairAction::AdoptTransaction {
                gateway_transaction_id,
            } => Resolution::Adopt(adoptable(ctx, gateway_transaction_id).await?),
        };
        if ctx.state(|s| s.attention.is_none()) {
            return Err(
                format!("{REJECTED_PREFIX}: the subscription no longer needs attention").into(),
            );
        }
        ctx.set_current_details(format!(
            "repair by an operator ({:?}): {}",
            req.action,
            req.reason.trim()
        ));
        ctx.state_mut(|s| s.repair = Some(resolution));
        cancel::until(ctx, |s: &Self| s.attention.is_none()).await;
        Ok(ctx.state(|s| s.view()))
    }

    #[update_validator(resume)]
    pub fn validate_resume(
        &self,
        _ctx: &WorkflowContextView,
        _unit: &(),
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let a = self.reject_unless_live()?;
        if !a.cancel_at_period_end {
            return Err(format!(
                "{REJECTED_PREFIX}: subscription {} has no pending cancellation",
                self.input.subscription_id
            )
            .into());
        }
        Ok(())
    }

    /// Undoes a pending cancel-at-period-end.
    #[update]
    pub fn resume(&mut self, ctx: &mut SyncWorkflowContext<Self>, _unit: ()) -> SubscriptionView {
        if let Some(a) = self.active.as_mut() {
            a.cancel_at_period_end = false;
        }
        self.changes += 1;
        ctx.upsert_search_attributes([CANCEL_AT_PERIOD_END.value_set(false)]);
        self.published = None;
        self.view()
    }

    #[update_validator(change_tariff)]
    pub fn validate_change_tariff(
        &self,
        _ctx: &WorkflowContextView,
        t: &TariffSnapshot,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let a = self.reject_unless_live()?;
        if t.price.currency != a.tariff.price.currency {
            return Err(format!(
                "{REJECTED_PREFIX}: tariff {} is in {}, the subscription pays in {}",
                t.code, t.price.currency, a.tariff.price.currency
            )
            .into());
        }
        if t.code == a.tariff.code && a.pending_tariff.is_none() {
            return Err(format!(
                "{REJECTED_PREFIX}: the subscription is already on tariff {}",
                t.code
            )
            .into());
        }
        Ok(())
    }

    /// Switches tariff from the next renewal on: that period's invoice uses the new price.
    /// Choosing the current tariff again drops a pending change.
    #[update]
    pub fn change_tariff(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        t: TariffSnapshot,
    ) -> SubscriptionView {
        if let Some(a) = self.active.as_mut() {
            a.pending_tariff = if t.code == a.tariff.code {
                None
            } else {
                Some(t)
            };
        }
        self.changes += 1;
        self.view()
    }

    #[update_validator(advance_clock)]
    pub fn validate_advance_clock(
        &self,
        _ctx: &WorkflowContextView,
        secs: &u64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if !self.input.config.test_clock {
            return Err(
                format!("{REJECTED_PREFIX}: the test clock is disabled (test mode only)").into(),
            );
        }
        if *secs == 0 || *secs > 10 * 366 * 86_400 {
            return Err(format!("{REJECTED_PREFIX}: advance by 1 second .. 10 years").into());
        }
        self.reject_unless_live().map(|_| ())
    }

    /// Test mode only: moves this subscription's clock forward and waits until everything that
    /// fell due (renewals, retries, suspension, cancellation) has run.
    #[update]
    pub async fn advance_clock(ctx: &mut WorkflowContext<Self>, secs: u64) -> SubscriptionView {
        let epoch = ctx.state_mut(|s| {
            if let Some(a) = s.active.as_mut() {
                a.clock_offset_secs += secs as i64;
            }
            s.clock_epoch += 1;
            s.changes += 1;
            s.clock_epoch
        });
        cancel::until(ctx, move |s: &Self| {
            s.settled_epoch >= epoch || s.status.is_terminal()
        })
        .await;
        ctx.state(|s| s.view())
    }

    #[query]
    pub fn state(&self, _ctx: &WorkflowContextView) -> SubscriptionView {
        self.view()
    }
}

/// The gateway transaction an operator names for adoption, if it is this parked charge's:
/// completed, of this invoice, for its amount, by this account.
async fn adoptable(
    ctx: &Ctx,
    id: GatewayTransactionId,
) -> Result<GatewayTransaction, Box<dyn std::error::Error + Send + Sync>> {
    let (input, charge) =
        ctx.state(|s| (s.input.clone(), s.attention.as_ref().and_then(|a| a.charge)));
    let Some((invoice_id, amount)) = charge else {
        return Err(
            format!("{REJECTED_PREFIX}: the subscription is not parked on a charge").into(),
        );
    };
    let found = step(
        ctx,
        BillingActivities::get_payment,
        GetPayment {
            gateway_transaction_id: id,
            currency: amount.currency,
        },
        side_effect_opts(&input, "look up the transaction to adopt"),
    )
    .await
    .map_err(|e| format!("the gateway could not be asked about transaction {id}: {e}"))?;
    let refuse = |why: String| -> Box<dyn std::error::Error + Send + Sync> {
        format!("{REJECTED_PREFIX}: transaction {id} cannot be adopted: {why}").into()
    };
    let Some(found) = found else {
        return Err(refuse("the gateway does not know it".into()));
    };
    let t = found.transaction;
    if !t.is_completed() {
        return Err(refuse(format!("its status is {}, not Completed", t.status)));
    }
    if !found
        .invoice_id
        .as_deref()
        .is_some_and(|i| i.eq_ignore_ascii_case(&invoice_id.to_string()))
    {
        return Err(refuse(format!(
            "it is for invoice {:?}, not {invoice_id}",
            found.invoice_id
        )));
    }
    if t.amount != amount {
        return Err(refuse(format!(
            "its amount is {} {}, the invoice's {} {}",
            t.amount.minor, t.amount.currency, amount.minor, amount.currency
        )));
    }
    if let Some(acc) = found.account_id.as_deref() {
        if !acc.eq_ignore_ascii_case(&input.account_id.to_string()) {
            return Err(refuse("it was made by another account".into()));
        }
    }
    Ok(t)
}
