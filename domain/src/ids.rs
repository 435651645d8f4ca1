//! Newtype ids, validated at construction, and the deterministic derivations the exactly-once
//! chain relies on (same inputs -> same ids, across retries, restarts and continue-as-new).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

const NS_SUBSCRIPTION: Uuid = Uuid::from_u128(0x6b1c_6a34_0c4e_4f7e_9d0a_51c0_0000_0001);
const NS_INVOICE: Uuid = Uuid::from_u128(0x6b1c_6a34_0c4e_4f7e_9d0a_51c0_0000_0002);
const NS_TRANSACTION: Uuid = Uuid::from_u128(0x6b1c_6a34_0c4e_4f7e_9d0a_51c0_0000_0003);
const NS_EVENT: Uuid = Uuid::from_u128(0x6b1c_6a34_0c4e_4f7e_9d0a_51c0_0000_0004);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The value is not a UUID; send the canonical 36-character form.
    #[error("{field} must be a UUID, got `{value}`")]
    NotUuid { field: &'static str, value: String },
    /// The value is empty or too long.
    #[error("{field} must be 1..={max} printable characters")]
    BadLength { field: &'static str, max: usize },
}

macro_rules! uuid_id {
    ($(#[$m:meta])* $name:ident, $field:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, IdError> {
                Uuid::parse_str(value.trim())
                    .map(Self)
                    .map_err(|_| IdError::NotUuid { field: $field, value: value.chars().take(64).collect() })
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// The billing account; equal to the auth service's user id (one account per user).
    AccountId, "user_id");
uuid_id!(
    /// One subscription (one life of a `SubscriptionWorkflow` chain).
    SubscriptionId, "subscription_id");
uuid_id!(
    /// One invoice: unique per (subscription, period start).
    InvoiceId, "invoice_id");
uuid_id!(
    /// Our id of a gateway transaction; the idempotency key of access and notification calls.
    TransactionUuid, "transaction_id");

impl AccountId {
    /// The Temporal workflow id: one live subscription per account is enforced by Temporal.
    pub fn workflow_id(&self) -> String {
        format!("subscription-{}", self.0)
    }
}

impl SubscriptionId {
    /// Derived from the account and the client's request id, so a retried start names the same
    /// subscription.
    pub fn derive(account: AccountId, request: &RequestId) -> Self {
        Self(Uuid::new_v5(
            &NS_SUBSCRIPTION,
            format!("{}/{}", account.0, request.0).as_bytes(),
        ))
    }
}

impl InvoiceId {
    pub fn derive(subscription: SubscriptionId, period_start: DateTime<Utc>) -> Self {
        Self(Uuid::new_v5(
            &NS_INVOICE,
            format!("{}/{}", subscription.0, period_start.timestamp()).as_bytes(),
        ))
    }

    /// The gateway `X-Request-ID` for charge attempt `attempt` (1-based) of this invoice: stable
    /// across activity retries and continue-as-new, never derived from a run id.
    pub fn charge_request_key(&self, attempt: u32) -> String {
        format!("inv-{}-a{}", self.0, attempt)
    }
}

impl TransactionUuid {
    /// Our UUID of gateway transaction `gateway_id`.
    pub fn from_gateway(gateway_id: i64) -> Self {
        Self(Uuid::new_v5(
            &NS_TRANSACTION,
            format!("cloudpayments/{gateway_id}").as_bytes(),
        ))
    }

    /// An idempotency key for an event that has no gateway transaction (e.g. "payment expired").
    pub fn for_event(invoice: InvoiceId, kind: &str) -> Self {
        Self(Uuid::new_v5(
            &NS_EVENT,
            format!("{}/{}", invoice.0, kind).as_bytes(),
        ))
    }
}

/// A gateway (CloudPayments) transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GatewayTransactionId(pub i64);

impl fmt::Display for GatewayTransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A tariff code such as `basic-monthly`: lowercase letters, digits and `-`, 1..=64 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TariffCode(String);

impl TariffCode {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let v = value.trim();
        if v.is_empty()
            || v.len() > 64
            || !v
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(IdError::BadLength {
                field: "tariff_code",
                max: 64,
            });
        }
        Ok(Self(v.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TariffCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The client's request id: the idempotency key of a `StartSubscription` call (the Temporal
/// update id). 1..=128 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(String);

impl RequestId {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let v = value.trim();
        if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdError::BadLength {
                field: "client_request_id",
                max: 128,
            });
        }
        Ok(Self(v.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivations_are_stable() {
        let acc = AccountId::parse("7d8f1f9e-2a8b-4c35-9a52-4b8a3c1d2e3f").unwrap();
        let r = RequestId::parse("req-1").unwrap();
        let s1 = SubscriptionId::derive(acc, &r);
        assert_eq!(s1, SubscriptionId::derive(acc, &r));
        assert_ne!(
            s1,
            SubscriptionId::derive(acc, &RequestId::parse("req-2").unwrap())
        );
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let inv = InvoiceId::derive(s1, t);
        assert_eq!(inv, InvoiceId::derive(s1, t));
        assert_eq!(inv.charge_request_key(1), format!("inv-{}-a1", inv.0));
        assert_eq!(
            TransactionUuid::from_gateway(5),
            TransactionUuid::from_gateway(5)
        );
        assert_eq!(
            acc.workflow_id(),
            "subscription-7d8f1f9e-2a8b-4c35-9a52-4b8a3c1d2e3f"
        );
        assert!(AccountId::parse("nope").is_err());
        assert!(TariffCode::parse("Basic Monthly").is_err());
        assert!(TariffCode::parse("basic-monthly").is_ok());
        assert!(RequestId::parse("").is_err());
        assert!(RequestId::parse("has space").is_err());
    }
}
