//! gRPC clients of the services billing calls: access (auth) and notification.
//! Channels connect lazily, so the worker starts even if a peer is down; calls then fail and
//! the activity retries.

use billing_domain::messages::{GrantAccess, NotificationKind, Notify};
use billing_proto::access::v1::{
    access_service_client::AccessServiceClient, GrantAccessRequest, RevokeAccessRequest,
};
use billing_proto::notification::v1::{
    notification_service_client::NotificationServiceClient, EventKind, SendEventRequest,
};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The configured URL is not a valid endpoint: fix the configuration.
    #[error("invalid endpoint `{0}`")]
    BadEndpoint(String),
    /// The call failed; retry (calls are idempotent by transaction id).
    #[error("{service} call failed: {status}")]
    Call {
        service: &'static str,
        status: tonic::Status,
    },
}

fn channel(url: &str, timeout: Duration) -> Result<Channel, PeerError> {
    Ok(Endpoint::from_shared(url.to_string())
        .map_err(|_| PeerError::BadEndpoint(url.to_string()))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(timeout)
        .connect_lazy())
}

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

#[derive(Clone)]
pub struct Peers {
    access: AccessServiceClient<Channel>,
    notification: NotificationServiceClient<Channel>,
}

impl Peers {
    pub fn new(
        access_url: &str,
        notification_url: &str,
        timeout: Duration,
    ) -> Result<Self, PeerError> {
        Ok(Self {
            access: AccessServiceClient::new(channel(access_url, timeout)?),
            notification: NotificationServiceClient::new(channel(notification_url, timeout)?),
        })
    }

    pub async fn grant(&self, g: &GrantAccess) -> Result<(), PeerError> {
        self.access
            .clone()
            .grant_access(GrantAccessRequest {
                user_id: g.account_id.to_string(),
                subscription_id: g.subscription_id.to_string(),
                until: Some(timestamp(g.until)),
                transaction_id: g.transaction_id.to_string(),
            })
            .await
            .map_err(|status| PeerError::Call {
                service: "access",
                status,
            })?;
        Ok(())
    }

    pub async fn revoke(&self, r: RevokeAccessRequest) -> Result<(), PeerError> {
        self.access
            .clone()
            .revoke_access(r)
            .await
            .map_err(|status| PeerError::Call {
                service: "access",
                status,
            })?;
        Ok(())
    }

    pub async fn notify(&self, n: &Notify) -> Result<(), PeerError> {
        let kind = match n.kind {
            NotificationKind::PaymentSucceeded => EventKind::PaymentSucceeded,
            NotificationKind::PaymentDeclined => EventKind::PaymentDeclined,
            NotificationKind::ThreeDsRequired => EventKind::ThreeDsRequired,
            NotificationKind::PaymentExpired => EventKind::PaymentExpired,
            NotificationKind::RenewalSucceeded => EventKind::RenewalSucceeded,
            NotificationKind::RenewalFailed => EventKind::RenewalFailed,
            NotificationKind::AccessSuspended => EventKind::AccessSuspended,
            NotificationKind::SubscriptionCancelled => EventKind::SubscriptionCancelled,
        };
        self.notification
            .clone()
            .send_event(SendEventRequest {
                kind: kind as i32,
                user_id: n.account_id.to_string(),
                subscription_id: n.subscription_id.to_string(),
                transaction_id: n.transaction_id.to_string(),
                amount_minor: n.amount.map(|m| m.minor).unwrap_or(0),
                currency: n
                    .amount
                    .map(|m| m.currency.code().to_string())
                    .unwrap_or_default(),
                email: n.email.clone(),
                reason_code: n.reason_code.unwrap_or(0),
                message: n.message.clone(),
                access_until: n.access_until.map(timestamp),
            })
            .await
            .map_err(|status| PeerError::Call {
                service: "notification",
                status,
            })?;
        Ok(())
    }
}
