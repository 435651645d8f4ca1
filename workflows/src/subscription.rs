//! `SubscriptionWorkflow`: owns one subscription's life.
//!
//! Start (update-with-start, update id = client request id) → first payment by cryptogram →
//! paid: record, grant access until the period end, notify, stay alive in `active` until the
//! period end | declined: record, void the invoice, notify, end | gateway unreachable: reconcile
//! with `/payments/find` before giving up, never charge an invoice twice.

use crate::cancel;
use crate::effects::{close_unpaid, grant, notify, record};
use crate::search::*;
use crate::sleep::sleep;
use crate::step::{step, step_failure, StepOptions};
use billing_activities::BillingActivities;
use billing_domain::decline::describe;
use billing_domain::messages::{
    ActiveState, CancelMode, Post3ds, ThreeDsAnswer, ThreeDsChallenge, NOT_AWAITING_3DS,
    REJECTED_PREFIX,
};
use billing_domain::messages::{
    ChargeResult, CryptogramCharge, FindPayment, FirstPaymentRequest, GatewayTransaction,
    NotificationKind, OpenInvoice, PaymentOutcome, PaymentState, SaveStartOutcome,
    SubscriptionInput, SubscriptionStatus, SubscriptionView, TariffSnapshot, CARD_DECLINED,
    GATEWAY_REJECTED,
};
use billing_domain::{GatewayTransactionId, InvoiceId, TransactionUuid};
use chrono::{DateTime, Utc};
use std::time::{Duration, UNIX_EPOCH};
use temporalio_common::search_attributes::Timestamp;
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflows::select;
use temporalio_sdk::{
    ActivityExecutionError, ApplicationFailure, SyncWorkflowContext, TimerResult, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination,
};

/// How long a started workflow waits for its first-payment update before giving up (a start
/// without the update only happens if a client bypasses the API).
const FIRST_PAYMENT_WAIT: Duration = Duration::from_secs(600);

/// Prefix of the validator's rejection when the account already has a live subscription; the
/// API maps it to `ALREADY_EXISTS`.
pub const ALREADY_EXISTS_PREFIX: &str = "ALREADY_EXISTS";

#[workflow]
pub struct SubscriptionWorkflow {
    pub(crate) input: SubscriptionInput,
    pub(crate) status: SubscriptionStatus,
    pub(crate) payment_state: PaymentState,
    first_payment: Option<FirstPaymentRequest>,
    /// What the start update answers: the final outcome, or the 3-D Secure challenge.
    start_answer: Option<PaymentOutcome>,
    /// The first payment's final outcome (paid / declined / expired / unavailable).
    outcome: Option<PaymentOutcome>,
    /// The gateway transaction waiting for the bank's 3-D Secure answer.
    awaiting_3ds: Option<GatewayTransactionId>,
    three_ds_answer: Option<ThreeDsAnswer>,
    /// Answers received so far; an answer the gateway rejected (forged or another transaction's
    /// PaRes) is reported back to its caller by number, and the challenge stays open.
    three_ds_answers: u32,
    three_ds_rejected: Option<(u32, String)>,
    period_start: Option<DateTime<Utc>>,
    period_end: Option<DateTime<Utc>>,
    pub(crate) failed_attempts: u32,
    pub(crate) last_decline_code: Option<i32>,
    /// Saved card of the first payment.
    token: Option<billing_domain::CardToken>,
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
    /// The search attributes last published by `billing::publish` in this run (repeats are
    /// skipped); cleared by any other upsert.
    pub(crate) published: Option<String>,
}

pub(crate) fn now(
    ctx: &WorkflowContext<SubscriptionWorkflow>,
) -> Result<DateTime<Utc>, ApplicationFailure> {
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

/// Options of a money-moving gateway call (charge, post3ds): bounded attempts and retry window;
/// declines and rejections are final. The gateway deduplicates retries by `X-Request-ID`.
pub(crate) fn gateway_call_opts(
    c: &billing_domain::messages::BillingConfig,
    summary: String,
) -> StepOptions {
    StepOptions {
        start_to_close: c.charge_attempt_timeout,
        schedule_to_close: Some(c.charge_retry_window),
        retry: RetryPolicy::builder()
            .initial_interval(c.retry_initial_interval)
            .maximum_interval(c.retry_max_interval)
            .non_retryable_error_types([CARD_DECLINED, GATEWAY_REJECTED])
            .build(),
        summary,
    }
}

/// What the workflow learned from the gateway about one invoice charge.
pub(crate) enum ChargeFate {
    Approved(GatewayTransaction),
    Declined(Option<GatewayTransaction>, i32, String),
    /// Nothing was charged and the gateway could not be reached in time.
    NotCharged(String),
    /// The bank asks for 3-D Secure.
    ThreeDs {
        gateway_transaction_id: GatewayTransactionId,
        acs_url: String,
        pa_req: String,
    },
    /// The 3-D Secure challenge was not answered in time.
    Expired,
    /// A Temporal cancellation request arrived before anything was charged.
    Cancelled,
}

#[workflow_methods]
impl SubscriptionWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: SubscriptionInput) -> Self {
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
        };
        // A continued run must be fully live from its first task: updates that arrive with it
        // are validated against this state before `run` executes.
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

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<SubscriptionStatus> {
        // Before anything else, so that every command below is decided by the same code version.
        crate::patches::adopt_baseline(ctx);
        let input = ctx.state(|s| s.input.clone());
        if input.resume.is_some() {
            // A continued run (state restored by `new`): go on billing.
            return crate::billing::run_loop(ctx).await;
        }
        ctx.upsert_search_attributes([
            SUBSCRIPTION_STATUS.value_set(SubscriptionStatus::Pending.as_str().to_string()),
            TARIFF_CODE.value_set(input.tariff.code.to_string()),
            PAYMENT_STATE.value_set(PaymentState::Idle.as_str().to_string()),
        ]);

        // The first-payment update arrives with the start; wait for it (bounded).
        {
            let mut wait = sleep(ctx, FIRST_PAYMENT_WAIT, "waiting for first payment".into());
            let woke = select! {
                _ = cancel::until(ctx, |s: &Self| s.first_payment.is_some()) => None,
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
            return Self::cancelled_before_payment(ctx, &input).await;
        }
        let payment = ctx
            .state(|s| s.first_payment.clone())
            .ok_or_else(|| ApplicationFailure::new("first payment vanished"))?;

        let period_start = now(ctx)?;
        let period_end = input
            .tariff
            .period
            .nth_end(period_start, 0)
            .ok_or_else(|| {
                ApplicationFailure::non_retryable("period end overflows the calendar")
            })?;
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

        step(
            ctx,
            BillingActivities::open_invoice,
            OpenInvoice {
                subscription_id: input.subscription_id,
                account_id: input.account_id,
                email: payment.email.clone(),
                tariff: input.tariff.clone(),
                invoice_id,
                period_start,
                period_end,
            },
            side_effect_opts(&input, "open first invoice"),
        )
        .await?;

        let mut fate = Self::charge_first(ctx, &input, invoice_id, payment.clone()).await?;
        if let ChargeFate::ThreeDs {
            gateway_transaction_id,
            acs_url,
            pa_req,
        } = fate
        {
            fate = Self::three_ds(
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
                let message = format!(
                    "Subscription {} is paid until {}",
                    input.tariff.name,
                    period_end.to_rfc3339()
                );
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
            ChargeFate::Declined(t, code, message) => {
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
                return Err(ApplicationFailure::non_retryable(
                    "3-D Secure challenge after 3-D Secure",
                )
                .into());
            }
            ChargeFate::Expired => {
                let transaction_id = TransactionUuid::for_event(invoice_id, "3ds-expired");
                close_unpaid(ctx, invoice_id, "void", SubscriptionStatus::Expired).await?;
                let message =
                    "the 3-D Secure confirmation was not completed in time; nothing was charged"
                        .to_string();
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
                let message = format!(
                    "{}: the subscription was cancelled before the payment was confirmed; nothing was charged",
                    cancel::BY_OPERATOR
                );
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
        crate::billing::run_loop(ctx).await
    }

    /// A Temporal cancellation request before the first payment started: nothing was charged and
    /// nothing was written; the start request is answered "unavailable" (not final: a retry with
    /// the same request id starts again).
    async fn cancelled_before_payment(
        ctx: &mut WorkflowContext<Self>,
        input: &SubscriptionInput,
    ) -> WorkflowResult<SubscriptionStatus> {
        let outcome = PaymentOutcome::Unavailable {
            subscription_id: input.subscription_id,
            message: format!("{} before the first payment", cancel::BY_OPERATOR),
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

    /// Charges the first invoice; on an unknown outcome asks the gateway before giving up.
    async fn charge_first(
        ctx: &mut WorkflowContext<Self>,
        input: &SubscriptionInput,
        invoice_id: InvoiceId,
        payment: FirstPaymentRequest,
    ) -> WorkflowResult<ChargeFate> {
        let charge_opts = gateway_call_opts(
            &input.config,
            format!("charge invoice {invoice_id} by cryptogram"),
        );
        let charge = CryptogramCharge {
            invoice_id,
            account_id: input.account_id,
            amount: input.tariff.price,
            request_key: invoice_id.charge_request_key(1),
            description: format!("{} subscription", input.tariff.name),
            payment,
        };
        match step(
            ctx,
            BillingActivities::charge_cryptogram,
            charge,
            charge_opts,
        )
        .await
        {
            Ok(ChargeResult::Approved { transaction }) => Ok(ChargeFate::Approved(transaction)),
            Ok(ChargeResult::ThreeDsRequired {
                gateway_transaction_id,
                acs_url,
                pa_req,
            }) => Ok(ChargeFate::ThreeDs {
                gateway_transaction_id,
                acs_url,
                pa_req,
            }),
            Err(err) => match classify_charge_error(&err) {
                Some(fate) => Ok(fate),
                // Unknown outcome: the gateway may have charged. Ask before giving up.
                None => Self::reconcile(ctx, input, invoice_id, err.to_string()).await,
            },
        }
    }

    pub(crate) async fn reconcile(
        ctx: &WorkflowContext<Self>,
        input: &SubscriptionInput,
        invoice_id: InvoiceId,
        last_error: String,
    ) -> WorkflowResult<ChargeFate> {
        ctx.state_mut(|s| {
            s.payment_state = PaymentState::Reconciling;
            s.published = None;
        });
        ctx.upsert_search_attributes([
            PAYMENT_STATE.value_set(PaymentState::Reconciling.as_str().to_string())
        ]);
        ctx.set_current_details(format!(
            "charge outcome unknown ({last_error}); asking the gateway about invoice {invoice_id}"
        ));
        let c = &input.config;
        // Retried without limit: we must learn the truth before voiding an invoice.
        let opts = StepOptions {
            start_to_close: c.charge_attempt_timeout,
            schedule_to_close: None,
            retry: RetryPolicy::builder()
                .initial_interval(c.retry_initial_interval)
                .maximum_interval(c.retry_max_interval)
                .non_retryable_error_types([GATEWAY_REJECTED])
                .build(),
            summary: format!("find payment of invoice {invoice_id}"),
        };
        let found = step(
            ctx,
            BillingActivities::find_payment,
            FindPayment {
                invoice_id,
                currency: input.tariff.price.currency,
            },
            opts,
        )
        .await?;
        ctx.state_mut(|s| s.payment_state = PaymentState::Charging);
        Ok(match found {
            Some(t) if t.is_completed() => ChargeFate::Approved(t),
            Some(t) if t.status == "Declined" => {
                let code = t.reason_code;
                ChargeFate::Declined(Some(t), code, describe(code).to_string())
            }
            Some(t) => ChargeFate::Declined(
                None,
                5207,
                format!(
                    "gateway transaction {} is {}",
                    t.gateway_transaction_id, t.status
                ),
            ),
            None => ChargeFate::NotCharged(format!("payment gateway unavailable: {last_error}")),
        })
    }

    /// Parks the payment until the bank's 3-D Secure answer or the expiry, whichever comes
    /// first, then finishes it with `post3ds`.
    async fn three_ds(
        ctx: &mut WorkflowContext<Self>,
        input: &SubscriptionInput,
        invoice_id: InvoiceId,
        gateway_transaction_id: GatewayTransactionId,
        acs_url: String,
        pa_req: String,
    ) -> WorkflowResult<ChargeFate> {
        step(
            ctx,
            BillingActivities::record_3ds_challenge,
            ThreeDsChallenge {
                gateway_transaction_id,
                subscription_id: input.subscription_id,
                account_id: input.account_id,
                invoice_id,
            },
            side_effect_opts(input, "record 3-D Secure challenge"),
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
            "confirm the payment with your bank (3-D Secure)".into(),
            None,
        )
        .await?;

        let opts = gateway_call_opts(&input.config, format!("post3ds {gateway_transaction_id}"));
        let mut expiry = sleep(
            ctx,
            input.config.three_ds_expiry,
            "3-D Secure expiry".into(),
        );
        loop {
            let woke = select! {
                _ = cancel::until(ctx, |s: &Self| s.three_ds_answer.is_some()) => None,
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
            let fate = match step(ctx, BillingActivities::post3ds, post, opts.clone()).await {
                Ok(t) if t.is_completed() => ChargeFate::Approved(t),
                Ok(t) => {
                    let code = if t.reason_code == 0 {
                        5207
                    } else {
                        t.reason_code
                    };
                    ChargeFate::Declined(Some(t), code, describe(code).to_string())
                }
                Err(err) => match step_failure(&err)
                    .filter(|f| f.type_name.as_deref() == Some(GATEWAY_REJECTED))
                    .map(|f| f.message)
                {
                    // The gateway refused this PaRes (not this transaction's, forged, malformed):
                    // nothing happened; tell the caller and keep waiting for the real answer.
                    Some(reason) => {
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
                    None => match classify_charge_error(&err) {
                        Some(fate) => fate,
                        None => {
                            expiry.cancel();
                            Self::reconcile(ctx, input, invoice_id, err.to_string()).await?
                        }
                    },
                },
            };
            expiry.cancel();
            ctx.state_mut(|s| s.awaiting_3ds = None);
            return Ok(fate);
        }
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

    /// When the next charge (renewal or dunning retry) is planned, if any.
    fn next_charge_at(&self) -> Option<DateTime<Utc>> {
        let a = self.active.as_ref()?;
        if self.status.is_terminal() {
            return None;
        }
        crate::billing::next_charge(a, &self.input.config)
    }

    fn reject_unless_live(&self) -> Result<&ActiveState, Box<dyn std::error::Error + Send + Sync>> {
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
            ctx.state_mut(|s| {
                s.cancel_now_requested = true;
                s.changes += 1;
            });
            cancel::until(ctx, |s: &Self| s.status.is_terminal()).await;
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
        }
    }
}

/// Keeps the start request's final answer (table `start_requests`).
async fn remember_answer(
    ctx: &WorkflowContext<SubscriptionWorkflow>,
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

/// A decline or a rejection is final; anything else leaves the outcome unknown (`None`).
pub(crate) fn classify_charge_error(err: &ActivityExecutionError) -> Option<ChargeFate> {
    let f = step_failure(err)?;
    match f.type_name.as_deref() {
        Some(CARD_DECLINED) => {
            let code = f
                .transaction
                .as_ref()
                .map(|t| t.reason_code)
                .unwrap_or(5005);
            Some(ChargeFate::Declined(
                f.transaction,
                code,
                describe(code).to_string(),
            ))
        }
        Some(GATEWAY_REJECTED) => Some(ChargeFate::Declined(
            None,
            0,
            format!("the gateway rejected the payment: {}", f.message),
        )),
        _ => None,
    }
}
