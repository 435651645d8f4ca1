//! Use cases behind both edges (gRPC and REST), with one error type mapped at each edge.

use billing_domain::messages::{
    CancelMode, FirstPaymentRequest, PaymentOutcome, SubscriptionInput, SubscriptionView,
    ThreeDsAnswer, ALREADY_EXISTS_PREFIX, GATEWAY_REJECTED, NOT_AWAITING_3DS, REJECTED_PREFIX,
};
use billing_domain::GatewayTransactionId;
use billing_domain::{AccountId, RequestId, SubscriptionId, TariffCode};
use billing_store::{Store, StoreError, Tariff};
use billing_workflows::SubscriptionWorkflow;
use std::net::IpAddr;
use temporalio_client::errors::{
    WorkflowQueryError, WorkflowUpdateError, WorkflowUpdateWithStartError,
};
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowQueryOptions, WorkflowUpdateWithStartOptions,
};
use tracing::{info, warn};

use crate::auth::{AuthError, Caller, Denied, Verifier};
use std::sync::Arc;

/// Errors of the use cases. Each edge maps every variant explicitly.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; the message names the field to fix.
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    /// The account already has a live subscription (named in the message).
    #[error("{0}")]
    AlreadyExists(String),
    /// The subscription is not in a state that accepts this call (e.g. no 3-D Secure pending).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A dependency (gateway, Temporal, database) is unreachable; retry with the same request id.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or corrupt data; logged once at the edge, the caller sees an opaque message.
    #[error("internal error: {0}")]
    Internal(String),
    /// No valid bearer token: `UNAUTHENTICATED` / 401 with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthenticated(AuthError),
    /// The caller may not act on this user or subscription (whether or not it exists).
    #[error("{0}")]
    PermissionDenied(String),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Unauthenticated(e)
    }
}

impl From<Denied> for ApiError {
    fn from(e: Denied) -> Self {
        ApiError::PermissionDenied(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict { constraint } => {
                ApiError::AlreadyExists(format!("conflict on {constraint}"))
            }
            StoreError::Database(e) => ApiError::Unavailable(format!("database unavailable: {e}")),
            StoreError::Refused { sqlstate, message } => {
                ApiError::Internal(format!("database refused (SQLSTATE {sqlstate}): {message}"))
            }
            StoreError::Corrupt(m) => ApiError::Internal(m),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidArgument {
        field,
        message: message.into(),
    }
}

/// A validated `StartSubscription` request.
#[derive(Debug, Clone)]
pub struct StartCommand {
    pub account: AccountId,
    pub tariff: TariffCode,
    pub payment: FirstPaymentRequest,
}

/// Raw fields of a start request, as received.
pub struct StartFields<'a> {
    pub user_id: &'a str,
    pub tariff_code: &'a str,
    pub card_cryptogram: &'a str,
    pub cardholder_name: &'a str,
    pub payer_ip: &'a str,
    pub email: &'a str,
    pub client_request_id: &'a str,
}

impl StartCommand {
    /// Validates the fields and whether `caller` may start a subscription for the user named
    /// (`user_id` empty: the caller's own).
    pub fn parse(caller: &Caller, f: StartFields<'_>) -> Result<Self, ApiError> {
        let account = account_named(caller, f.user_id)?;
        let tariff =
            TariffCode::parse(f.tariff_code).map_err(|e| invalid("tariff_code", e.to_string()))?;
        let request_id = RequestId::parse(f.client_request_id)
            .map_err(|e| invalid("client_request_id", e.to_string()))?;
        let crypto = f.card_cryptogram.trim();
        if crypto.is_empty() {
            return Err(invalid("card_cryptogram", "is required"));
        }
        if crypto.len() < 16 || crypto.len() > 8192 || !crypto.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(invalid(
                "card_cryptogram",
                "is not a card cryptogram packet (16..8192 printable ASCII characters expected)",
            ));
        }
        let name = f.cardholder_name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(invalid(
                "cardholder_name",
                "is required (1..100 characters, as on the card)",
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphabetic() || " .-'".contains(c))
        {
            return Err(invalid(
                "cardholder_name",
                "must be Latin letters, spaces, dots, hyphens or apostrophes",
            ));
        }
        let ip: IpAddr = f.payer_ip.trim().parse().map_err(|_| {
            invalid(
                "payer_ip",
                format!(
                    "`{}` is not an IPv4 or IPv6 address",
                    f.payer_ip.chars().take(64).collect::<String>()
                ),
            )
        })?;
        let email = f.email.trim();
        if !valid_email(email) {
            return Err(invalid("email", "is not a valid e-mail address"));
        }
        Ok(Self {
            account,
            tariff,
            payment: FirstPaymentRequest {
                request_id,
                cryptogram: billing_domain::Cryptogram::new(crypto),
                cardholder_name: name.to_string(),
                payer_ip: ip.to_string(),
                email: email.to_string(),
            },
        })
    }
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && e.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

/// The account a request names by `user_id`, if `caller` may act on it. Empty: the caller's
/// own (a service or admin token must name the user).
pub fn account_named(caller: &Caller, user_id: &str) -> Result<AccountId, ApiError> {
    if user_id.trim().is_empty() {
        if caller.admin || caller.service {
            return Err(invalid(
                "user_id",
                "is required: a service or admin token acts on the user the request names",
            ));
        }
        return Ok(caller.subject);
    }
    let account = AccountId::parse(user_id).map_err(|e| invalid("user_id", e.to_string()))?;
    caller.may_act_on(account)?;
    Ok(account)
}

/// What a caller that may not see `NotFound` for a lookup gets instead: a plain user asking
/// about someone else's (or nobody's) subscription is refused the same way either way.
fn hide_absence(caller: &Caller, not_found: ApiError) -> ApiError {
    if caller.admin || caller.service {
        not_found
    } else {
        Denied.into()
    }
}

#[derive(Clone)]
pub struct BillingApi {
    pub store: Store,
    /// Verifies bearer tokens; `None`: auth disabled (dev only).
    pub auth: Option<Arc<Verifier>>,
    pub temporal: Client,
    pub settings: crate::Settings,
    /// Where the ACS posts the bank's answer back (`.../api/v1/3ds/callback`).
    pub term_url: String,
    pub three_ds_success_url: String,
    pub three_ds_failure_url: String,
}

impl BillingApi {
    /// Who is calling, from the request's `Authorization` value.
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        match &self.auth {
            Some(v) => Ok(v.caller(authorization).await?),
            None => Ok(Caller::unchecked()),
        }
    }

    pub async fn list_tariffs(&self) -> Result<Vec<Tariff>, ApiError> {
        Ok(self.store.list_active_tariffs().await?)
    }

    /// Starts a subscription with its first payment and waits (bounded) for the outcome.
    pub async fn start(&self, cmd: StartCommand) -> Result<PaymentOutcome, ApiError> {
        let request_id = cmd.payment.request_id.clone();
        // Both lookups at once (two round trips to the database in the time of one).
        let (tariff, stored) = tokio::join!(
            self.store.tariff(&cmd.tariff),
            self.store.start_outcome(cmd.account, request_id.as_str())
        );
        let tariff = match tariff {
            Ok(t) if t.active => t,
            Ok(_) => {
                return Err(ApiError::NotFound(format!(
                    "tariff `{}` is no longer offered",
                    cmd.tariff
                )))
            }
            Err(StoreError::NotFound(_)) => {
                return Err(ApiError::NotFound(format!(
                    "tariff `{}` does not exist",
                    cmd.tariff
                )))
            }
            Err(e) => return Err(e.into()),
        };
        // A final answer given earlier for this request id (the workflow may have closed since).
        if let Some(stored) = stored? {
            let outcome: PaymentOutcome =
                serde_json::from_value(stored).map_err(|e| ApiError::Internal(e.to_string()))?;
            return Ok(outcome);
        }
        let subscription_id = SubscriptionId::derive(cmd.account, &request_id);
        let input = SubscriptionInput {
            resume: None,
            subscription_id,
            account_id: cmd.account,
            request_id: request_id.clone(),
            tariff: tariff.snapshot,
            email: cmd.payment.email.clone(),
            config: self.settings.billing.clone(),
            // The workflow decides its own code version (replay-safe); see `patches`.
            patch_baseline: 0,
        };
        let workflow_id = cmd.account.workflow_id();
        let opts = WorkflowUpdateWithStartOptions::new(
            self.settings.temporal.task_queue.clone(),
            workflow_id.clone(),
            WorkflowIdConflictPolicy::UseExisting,
        )
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
        .update_id(request_id.to_string())
        .static_summary(format!("subscription {subscription_id}"))
        .build();
        let call = self.temporal.execute_update_with_start_workflow(
            SubscriptionWorkflow::run,
            input,
            SubscriptionWorkflow::first_payment,
            cmd.payment,
            opts,
        );
        let outcome = match tokio::time::timeout(self.settings.start_timeout, call).await {
            Err(_) => {
                warn!(%workflow_id, "payment outcome not known within the start timeout");
                return Err(ApiError::Unavailable(
                    "the payment is still being processed; retry with the same client_request_id to get its outcome".into(),
                ));
            }
            Ok(Err(e)) => return Err(map_update_error(e)),
            Ok(Ok(o)) => o,
        };
        info!(%workflow_id, outcome = ?outcome_kind(&outcome), "start subscription answered");
        into_answer(outcome, "retry later with the same client_request_id")
    }

    /// Hands the bank's 3-D Secure answer to the subscription waiting for it; waits (bounded)
    /// for the final outcome. Repeats for the same transaction get the first answer.
    /// `caller`: `None` for the TermUrl (the bank's page posts it without a token; the answer
    /// is bound to the transaction and its PaRes).
    pub async fn confirm_3ds(
        &self,
        caller: Option<&Caller>,
        transaction_id: i64,
        pa_res: &str,
    ) -> Result<PaymentOutcome, ApiError> {
        let pa_res = pa_res.trim();
        if pa_res.is_empty() || pa_res.len() > 16_384 {
            return Err(invalid(
                "pa_res",
                "is required (the PaRes the bank's ACS posted, at most 16 KiB)",
            ));
        }
        if transaction_id <= 0 {
            return Err(invalid(
                "transaction_id",
                "must be the positive gateway transaction id (MD)",
            ));
        }
        let challenge = self
            .store
            .three_ds_challenge(transaction_id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => {
                    let nf = ApiError::NotFound(format!(
                        "no 3-D Secure payment with transaction id {transaction_id}"
                    ));
                    match caller {
                        Some(c) => hide_absence(c, nf),
                        None => nf,
                    }
                }
                other => other.into(),
            })?;
        if let Some(c) = caller {
            c.may_act_on(challenge.account_id)?;
        }
        let handle = self
            .temporal
            .get_workflow_handle::<SubscriptionWorkflow>(challenge.account_id.workflow_id());
        let answer = ThreeDsAnswer {
            gateway_transaction_id: GatewayTransactionId(transaction_id),
            pa_res: billing_domain::PaRes::new(pa_res),
        };
        // One update per (transaction, PaRes): a repeated post of the same answer (browser retry,
        // double click) gets the first result; a different PaRes is a new answer.
        let answer_key = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, pa_res.as_bytes());
        let opts = WorkflowExecuteUpdateOptions::builder()
            .update_id(format!("3ds-{transaction_id}-{answer_key}"))
            .build();
        let call = handle.execute_update(SubscriptionWorkflow::confirm_3ds, answer, opts);
        let outcome = match tokio::time::timeout(self.settings.start_timeout, call).await {
            Err(_) => {
                return Err(ApiError::Unavailable(
                    "the payment is still being processed; repeat the call to get its outcome"
                        .into(),
                ))
            }
            Ok(Err(WorkflowUpdateError::Failed(f))) if f.message.starts_with(NOT_AWAITING_3DS) => {
                return Err(ApiError::FailedPrecondition(
                    f.message
                        .trim_start_matches(NOT_AWAITING_3DS)
                        .trim_start_matches(':')
                        .trim()
                        .to_string(),
                ))
            }
            Ok(Err(WorkflowUpdateError::Failed(f))) if f.message.starts_with(GATEWAY_REJECTED) => {
                return Err(invalid(
                    "pa_res",
                    f.message
                        .trim_start_matches(GATEWAY_REJECTED)
                        .trim_start_matches(':')
                        .trim()
                        .to_string(),
                ))
            }
            Ok(Err(WorkflowUpdateError::NotFound(_))) => {
                return Err(ApiError::FailedPrecondition(format!(
                    "subscription {} is no longer waiting for a 3-D Secure answer",
                    challenge.subscription_id
                )))
            }
            Ok(Err(WorkflowUpdateError::Rpc(s)))
                if s.code() == tonic::Code::NotFound
                    || s.code() == tonic::Code::FailedPrecondition =>
            {
                return Err(ApiError::FailedPrecondition(format!(
                    "subscription {} is no longer waiting for a 3-D Secure answer: {}",
                    challenge.subscription_id,
                    s.message()
                )))
            }
            Ok(Err(WorkflowUpdateError::Rpc(s))) => {
                return Err(ApiError::Unavailable(format!("temporal: {}", s.message())))
            }
            Ok(Err(e)) => {
                return Err(ApiError::Internal(format!(
                    "confirm_3ds update failed: {e}"
                )))
            }
            Ok(Ok(o)) => o,
        };
        info!(transaction_id, outcome = ?outcome_kind(&outcome), "3-D Secure answer processed");
        into_answer(
            outcome,
            "start a new subscription with a new client_request_id",
        )
    }

    /// Resolves a subscription reference (by user id, by subscription id, or neither: the
    /// caller's own) to its account (the workflow id), if `caller` may act on it.
    pub async fn account_of(
        &self,
        caller: &Caller,
        subscription_id: &str,
        user_id: &str,
    ) -> Result<AccountId, ApiError> {
        if !user_id.trim().is_empty() || subscription_id.trim().is_empty() {
            return account_named(caller, user_id);
        }
        let id = SubscriptionId::parse(subscription_id)
            .map_err(|e| invalid("subscription_id", e.to_string()))?;
        Ok(self.owner_of(caller, id).await?.account_id)
    }

    /// The stored subscription `id`, if `caller` may act on it (a plain user is refused the
    /// same way whether it is someone else's or does not exist).
    async fn owner_of(
        &self,
        caller: &Caller,
        id: SubscriptionId,
    ) -> Result<billing_store::SubscriptionRow, ApiError> {
        let row = self.store.subscription(id).await.map_err(|e| match e {
            StoreError::NotFound(_) => hide_absence(
                caller,
                ApiError::NotFound(format!("subscription {id} does not exist")),
            ),
            other => other.into(),
        })?;
        caller.may_act_on(row.account_id)?;
        Ok(row)
    }

    async fn update<U>(
        &self,
        account: AccountId,
        update: U,
        input: U::Input,
    ) -> Result<SubscriptionView, ApiError>
    where
        U: temporalio_common::UpdateDefinition<
            Workflow = <SubscriptionWorkflow as temporalio_common::HasWorkflowDefinition>::Run,
            Output = SubscriptionView,
        >,
        U::Input: Send,
    {
        let handle = self
            .temporal
            .get_workflow_handle::<SubscriptionWorkflow>(account.workflow_id());
        let call = handle.execute_update(update, input, WorkflowExecuteUpdateOptions::default());
        match tokio::time::timeout(self.settings.start_timeout, call).await {
            Err(_) => Err(ApiError::Unavailable(
                "the subscription did not answer in time; retry".into(),
            )),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(WorkflowUpdateError::Failed(f))) if f.message.starts_with(REJECTED_PREFIX) => {
                Err(ApiError::FailedPrecondition(
                    f.message
                        .trim_start_matches(REJECTED_PREFIX)
                        .trim_start_matches(':')
                        .trim()
                        .to_string(),
                ))
            }
            Ok(Err(WorkflowUpdateError::NotFound(_))) => Err(ApiError::NotFound(format!(
                "user {account} has no live subscription"
            ))),
            Ok(Err(WorkflowUpdateError::Rpc(s)))
                if s.code() == tonic::Code::NotFound
                    || s.code() == tonic::Code::FailedPrecondition =>
            {
                Err(ApiError::FailedPrecondition(format!(
                    "user {account} has no live subscription: {}",
                    s.message()
                )))
            }
            Ok(Err(WorkflowUpdateError::Rpc(s))) => {
                Err(ApiError::Unavailable(format!("temporal: {}", s.message())))
            }
            Ok(Err(e)) => Err(ApiError::Internal(format!("update failed: {e}"))),
        }
    }

    pub async fn cancel(
        &self,
        account: AccountId,
        mode: CancelMode,
    ) -> Result<SubscriptionView, ApiError> {
        self.update(account, SubscriptionWorkflow::cancel, mode)
            .await
    }

    pub async fn resume(&self, account: AccountId) -> Result<SubscriptionView, ApiError> {
        self.update(account, SubscriptionWorkflow::resume, ()).await
    }

    /// Validates the tariff against the catalogue, then asks the workflow.
    pub async fn change_tariff(
        &self,
        account: AccountId,
        code: &str,
    ) -> Result<SubscriptionView, ApiError> {
        let code = TariffCode::parse(code).map_err(|e| invalid("tariff_code", e.to_string()))?;
        let tariff = match self.store.tariff(&code).await {
            Ok(t) if t.active => t.snapshot,
            Ok(_) => {
                return Err(ApiError::FailedPrecondition(format!(
                    "tariff `{code}` is no longer offered"
                )))
            }
            Err(StoreError::NotFound(_)) => {
                return Err(ApiError::NotFound(format!(
                    "tariff `{code}` does not exist"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        self.update(account, SubscriptionWorkflow::change_tariff, tariff)
            .await
    }

    /// Admin only, and only with the test clock on (never in production).
    pub async fn advance_clock(
        &self,
        caller: &Caller,
        account: AccountId,
        seconds: u64,
    ) -> Result<SubscriptionView, ApiError> {
        caller.require_admin()?;
        if !self.settings.billing.test_clock {
            return Err(ApiError::FailedPrecondition(
                "the test clock is off (BILLING_TEST_CLOCK, tests and dev stacks only)".into(),
            ));
        }
        if seconds == 0 {
            return Err(invalid("seconds", "must be positive"));
        }
        self.update(account, SubscriptionWorkflow::advance_clock, seconds)
            .await
    }

    /// The final answer stored for a subscription's first payment, if it has one.
    pub async fn stored_outcome(
        &self,
        subscription: SubscriptionId,
    ) -> Result<Option<PaymentOutcome>, ApiError> {
        match self
            .store
            .start_outcome_by_subscription(subscription)
            .await?
        {
            Some(v) => Ok(Some(
                serde_json::from_value(v).map_err(|e| ApiError::Internal(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    /// The live state of the account's subscription (workflow query).
    pub async fn get_by_account(&self, account: AccountId) -> Result<SubscriptionView, ApiError> {
        let handle = self
            .temporal
            .get_workflow_handle::<SubscriptionWorkflow>(account.workflow_id());
        handle
            .query(
                SubscriptionWorkflow::state,
                (),
                WorkflowQueryOptions::default(),
            )
            .await
            .map_err(|e| match e {
                WorkflowQueryError::NotFound(_) => {
                    ApiError::NotFound(format!("user {account} has no subscription"))
                }
                other => ApiError::Unavailable(format!("temporal query failed: {other}")),
            })
    }

    pub async fn get_by_id(
        &self,
        caller: &Caller,
        id: SubscriptionId,
    ) -> Result<SubscriptionView, ApiError> {
        let row = self.owner_of(caller, id).await?;
        let view = self.get_by_account(row.account_id).await?;
        if view.subscription_id != id {
            return Err(ApiError::NotFound(format!(
                "subscription {id} is no longer live (status {}); the account's current one is {}",
                row.status, view.subscription_id
            )));
        }
        Ok(view)
    }
}

/// A payment answer for the caller: "the gateway could not be reached and nothing was charged"
/// is an `UNAVAILABLE` error, never a decline; every other outcome is an answer.
fn into_answer(outcome: PaymentOutcome, retry_hint: &str) -> Result<PaymentOutcome, ApiError> {
    match outcome {
        PaymentOutcome::Unavailable { message, .. } => Err(ApiError::Unavailable(format!(
            "{message}; nothing was charged, {retry_hint}"
        ))),
        o => Ok(o),
    }
}

pub fn outcome_kind(o: &PaymentOutcome) -> &'static str {
    match o {
        PaymentOutcome::Paid { .. } => "paid",
        PaymentOutcome::Declined { .. } => "declined",
        PaymentOutcome::Unavailable { .. } => "unavailable",
        PaymentOutcome::ThreeDsRequired { .. } => "three_ds_required",
        PaymentOutcome::Expired { .. } => "expired",
    }
}

fn map_update_error(e: WorkflowUpdateWithStartError) -> ApiError {
    match e {
        WorkflowUpdateWithStartError::Update(WorkflowUpdateError::Failed(f)) => {
            if f.message.starts_with(ALREADY_EXISTS_PREFIX) {
                ApiError::AlreadyExists(
                    f.message
                        .trim_start_matches(ALREADY_EXISTS_PREFIX)
                        .trim_start_matches(':')
                        .trim()
                        .to_string(),
                )
            } else {
                ApiError::Internal(format!("first-payment update failed: {}", f.message))
            }
        }
        WorkflowUpdateWithStartError::Update(WorkflowUpdateError::Rpc(s))
        | WorkflowUpdateWithStartError::Rpc(s) => {
            ApiError::Unavailable(format!("temporal: {}", s.message()))
        }
        WorkflowUpdateWithStartError::Update(WorkflowUpdateError::NotFound(s)) => {
            ApiError::Unavailable(format!("temporal: workflow not found: {}", s.message()))
        }
        WorkflowUpdateWithStartError::Start(s) => {
            ApiError::Unavailable(format!("temporal start failed: {s}"))
        }
        other => ApiError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(admin: bool, service: bool) -> Caller {
        Caller {
            subject: AccountId(uuid::Uuid::new_v4()),
            admin,
            service,
        }
    }

    #[test]
    fn the_user_a_request_acts_on() {
        let other = uuid::Uuid::new_v4().to_string();
        let plain = caller(false, false);
        let me = plain.subject.to_string();
        // A plain token: its own sub, named or not; nobody else.
        assert_eq!(account_named(&plain, "").unwrap(), plain.subject);
        assert_eq!(account_named(&plain, &me).unwrap(), plain.subject);
        assert!(matches!(
            account_named(&plain, &other),
            Err(ApiError::PermissionDenied(_))
        ));
        // service and admin: anyone named, and they must name one.
        for c in [caller(false, true), caller(true, false)] {
            assert_eq!(account_named(&c, &other).unwrap().to_string(), other);
            assert!(matches!(
                account_named(&c, " "),
                Err(ApiError::InvalidArgument {
                    field: "user_id",
                    ..
                })
            ));
        }
        assert!(matches!(
            account_named(&plain, "not-a-uuid"),
            Err(ApiError::InvalidArgument {
                field: "user_id",
                ..
            })
        ));
        // Absence is hidden from plain users only.
        let nf = || ApiError::NotFound("x".into());
        assert!(matches!(
            hide_absence(&plain, nf()),
            ApiError::PermissionDenied(_)
        ));
        assert!(matches!(
            hide_absence(&caller(false, true), nf()),
            ApiError::NotFound(_)
        ));
    }
}
