//! `billing.v1.BillingService` over tonic. Errors are mapped exhaustively to gRPC statuses.

use crate::service::{account_named, ApiError, BillingApi, StartCommand, StartFields};
use billing_domain::messages::{CancelMode, PaymentOutcome, SubscriptionView};
use billing_domain::{Money, SubscriptionId};
use billing_proto::billing::v1 as pb;
use billing_proto::billing::v1::billing_service_server::BillingService;
use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};
use tracing::error;

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::InvalidArgument { field, message } => {
                Status::invalid_argument(format!("{field}: {message}"))
            }
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::AlreadyExists(m) => Status::already_exists(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::Unavailable(m) => Status::unavailable(m),
            ApiError::Internal(m) => {
                error!(error = %m, "internal error");
                Status::internal("internal error")
            }
            ApiError::Unauthenticated(e) => Status::unauthenticated(e.to_string()),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
        }
    }
}

/// The request's `authorization` metadata, if it is text.
fn authorization<T>(req: &Request<T>) -> Option<&str> {
    req.metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
}

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn money(m: Money) -> pb::Money {
    pb::Money {
        amount_minor: m.minor,
        currency: m.currency.code().to_string(),
    }
}

/// `Unavailable` never reaches here (the service turns it into an error); if it did, it must
/// not look like a decline.
pub fn outcome_to_pb(
    o: PaymentOutcome,
    term_url: &str,
) -> Result<pb::StartSubscriptionResponse, Status> {
    use pb::start_subscription_response::Outcome;
    let outcome = match o {
        PaymentOutcome::Paid {
            subscription_id,
            invoice_id,
            transaction_id,
            gateway_transaction_id,
            amount,
            access_until,
        } => Outcome::Paid(pb::Paid {
            subscription_id: subscription_id.to_string(),
            invoice_id: invoice_id.to_string(),
            transaction_id: transaction_id.to_string(),
            gateway_transaction_id: gateway_transaction_id.0,
            amount: Some(money(amount)),
            access_until: Some(ts(access_until)),
        }),
        PaymentOutcome::Declined {
            subscription_id,
            invoice_id,
            gateway_transaction_id,
            reason_code,
            message,
        } => Outcome::Declined(pb::Declined {
            subscription_id: subscription_id.to_string(),
            invoice_id: invoice_id.to_string(),
            gateway_transaction_id: gateway_transaction_id.map(|g| g.0).unwrap_or(0),
            reason_code,
            message,
        }),
        PaymentOutcome::ThreeDsRequired {
            subscription_id,
            gateway_transaction_id,
            acs_url,
            pa_req,
            ..
        } => Outcome::ThreeDs(pb::ThreeDsChallenge {
            subscription_id: subscription_id.to_string(),
            gateway_transaction_id: gateway_transaction_id.0,
            acs_url,
            pa_req,
            md: gateway_transaction_id.0.to_string(),
            term_url: term_url.to_string(),
        }),
        PaymentOutcome::Expired {
            subscription_id,
            invoice_id,
            message,
        } => Outcome::Expired(pb::Expired {
            subscription_id: subscription_id.to_string(),
            invoice_id: invoice_id.to_string(),
            message,
        }),
        PaymentOutcome::Unavailable { message, .. } => return Err(Status::unavailable(message)),
    };
    Ok(pb::StartSubscriptionResponse {
        outcome: Some(outcome),
    })
}

pub fn view_to_pb(v: SubscriptionView) -> pb::Subscription {
    pb::Subscription {
        subscription_id: v.subscription_id.to_string(),
        user_id: v.account_id.to_string(),
        status: v.status.as_str().to_string(),
        payment_state: v.payment_state.as_str().to_string(),
        tariff_code: v.tariff_code.to_string(),
        price: Some(money(v.price)),
        current_period_start: v.current_period_start.map(ts),
        current_period_end: v.current_period_end.map(ts),
        next_charge_at: v.next_charge_at.map(ts),
        failed_attempts: v.failed_attempts,
        last_decline_code: v.last_decline_code.unwrap_or(0),
        cancel_at_period_end: v.cancel_at_period_end,
        pending_tariff_code: v
            .pending_tariff_code
            .map(|c| c.to_string())
            .unwrap_or_default(),
        renewals: v.renewals,
        attention: v.attention.unwrap_or_default(),
        note: v.note.unwrap_or_default(),
    }
}

pub struct Grpc(pub BillingApi);

#[tonic::async_trait]
impl BillingService for Grpc {
    async fn list_tariffs(
        &self,
        req: Request<pb::ListTariffsRequest>,
    ) -> Result<Response<pb::ListTariffsResponse>, Status> {
        self.0.caller(authorization(&req)).await?;
        let tariffs = self.0.list_tariffs().await?;
        Ok(Response::new(pb::ListTariffsResponse {
            tariffs: tariffs
                .into_iter()
                .map(|t| pb::Tariff {
                    code: t.snapshot.code.to_string(),
                    name: t.snapshot.name,
                    price: Some(money(t.snapshot.price)),
                    period_unit: t.snapshot.period.unit.as_str().to_string(),
                    period_count: t.snapshot.period.count,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(tariff_code = %req.get_ref().tariff_code))]
    async fn start_subscription(
        &self,
        req: Request<pb::StartSubscriptionRequest>,
    ) -> Result<Response<pb::StartSubscriptionResponse>, Status> {
        let caller = self.0.caller(authorization(&req)).await?;
        let r = req.into_inner();
        let cmd = StartCommand::parse(
            &caller,
            StartFields {
                user_id: &r.user_id,
                tariff_code: &r.tariff_code,
                card_cryptogram: &r.card_cryptogram,
                cardholder_name: &r.cardholder_name,
                payer_ip: &r.payer_ip,
                email: &r.email,
                client_request_id: &r.client_request_id,
            },
        )?;
        let outcome = self.0.start(cmd).await?;
        Ok(Response::new(outcome_to_pb(outcome, &self.0.term_url)?))
    }

    async fn confirm3ds(
        &self,
        req: Request<pb::Confirm3dsRequest>,
    ) -> Result<Response<pb::StartSubscriptionResponse>, Status> {
        let caller = self.0.caller(authorization(&req)).await?;
        let r = req.into_inner();
        let outcome = self
            .0
            .confirm_3ds(Some(&caller), r.transaction_id, &r.pa_res)
            .await?;
        Ok(Response::new(outcome_to_pb(outcome, &self.0.term_url)?))
    }

    async fn cancel_subscription(
        &self,
        req: Request<pb::CancelSubscriptionRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let caller = self.0.caller(authorization(&req)).await?;
        let r = req.into_inner();
        let s = r.subscription.unwrap_or_default();
        let account = self
            .0
            .account_of(&caller, &s.subscription_id, &s.user_id)
            .await?;
        let mode = if r.immediately {
            CancelMode::Now
        } else {
            CancelMode::AtPeriodEnd
        };
        Ok(Response::new(view_to_pb(
            self.0.cancel(account, mode).await?,
        )))
    }

    async fn resume_subscription(
        &self,
        req: Request<pb::SubscriptionRef>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let caller = self.0.caller(authorization(&req)).await?;
        let s = req.into_inner();
        let account = self
            .0
            .account_of(&caller, &s.subscription_id, &s.user_id)
            .await?;
        Ok(Response::new(view_to_pb(self.0.resume(account).await?)))
    }

    async fn change_tariff(
        &self,
        req: Request<pb::ChangeTariffRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let caller = self.0.caller(authorization(&req)).await?;
        let r = req.into_inner();
        let s = r.subscription.unwrap_or_default();
        let account = self
            .0
            .account_of(&caller, &s.subscription_id, &s.user_id)
            .await?;
        Ok(Response::new(view_to_pb(
            self.0.change_tariff(account, &r.tariff_code).await?,
        )))
    }

    async fn advance_test_clock(
        &self,
        req: Request<pb::AdvanceTestClockRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let caller = self.0.caller(authorization(&req)).await?;
        let r = req.into_inner();
        let s = r.subscription.unwrap_or_default();
        let account = self
            .0
            .account_of(&caller, &s.subscription_id, &s.user_id)
            .await?;
        Ok(Response::new(view_to_pb(
            self.0.advance_clock(&caller, account, r.seconds).await?,
        )))
    }

    async fn get_subscription(
        &self,
        req: Request<pb::GetSubscriptionRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let caller = self.0.caller(authorization(&req)).await?;
        let r = req.into_inner();
        let view = if !r.subscription_id.is_empty() && r.user_id.is_empty() {
            let id = SubscriptionId::parse(&r.subscription_id)
                .map_err(|e| Status::invalid_argument(format!("subscription_id: {e}")))?;
            self.0.get_by_id(&caller, id).await?
        } else {
            let acc = account_named(&caller, &r.user_id)?;
            self.0.get_by_account(acc).await?
        };
        Ok(Response::new(view_to_pb(view)))
    }
}
