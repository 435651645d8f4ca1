//! Pure billing domain: no I/O, no clocks, safe to use from deterministic workflow code.
//!
//! - [`money`]: integer minor units + ISO currency, and the decimal edge conversion.
//! - [`ids`]: newtype ids and the deterministic derivations (subscription, invoice, request keys).
//! - [`period`]: calendar-aware billing periods computed from an anchor date.
//! - [`decline`]: gateway reason codes and whether a decline may be retried.
//! - [`catalogue`]: every sentence a user is told, never internal error text.
//! - [`messages`]: the serde types that cross the workflow/activity/API boundary.
//! - [`secret`]: the cryptogram, card token and PaRes as types whose `Debug` never shows them.
//! - [`mask`]: masking of secrets for logs.

pub mod catalogue;
pub mod decline;
pub mod ids;
pub mod mask;
pub mod messages;
pub mod money;
pub mod period;
pub mod secret;

pub use secret::{CardToken, Cryptogram, PaRes};

pub use ids::*;
pub use money::{Currency, Money, MoneyError};
pub use period::{BillingPeriod, PeriodUnit};
