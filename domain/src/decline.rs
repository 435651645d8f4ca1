//! Gateway decline reason codes (CloudPayments) and what billing may do about each.

use serde::{Deserialize, Serialize};

/// How a decline may be handled by dunning (issue: renewals) and how the first payment reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineClass {
    /// Insufficient funds, limits, issuer unreachable: retry later on the schedule.
    Retryable,
    /// Do-not-honor and similar: a few later tries at most.
    Limited,
    /// Expired, lost, stolen, restricted, fraud, bad card data: only a new card helps.
    Hard,
    /// 3-D Secure failed or unavailable: the payer must authenticate again.
    Authentication,
}

pub fn classify(code: i32) -> DeclineClass {
    match code {
        5051 | 5061 | 5065 | 5303 | 5091 | 5092 | 5096 | 5030 => DeclineClass::Retryable,
        5005 | 5019 | 5001 | 5006 | 5057 | 5204 | 5300 => DeclineClass::Limited,
        5206 | 5207 => DeclineClass::Authentication,
        _ => DeclineClass::Hard,
    }
}

/// A user-facing English explanation of a reason code.
pub fn describe(code: i32) -> &'static str {
    match code {
        5051 => "insufficient funds",
        5061 | 5065 | 5303 => "card or terminal limit exceeded",
        5091 | 5092 => "the card issuer is unreachable, try again later",
        5096 | 5030 => "gateway system error, try again later",
        5005 | 5019 => "the card issuer declined the payment",
        5054 => "the card has expired",
        5082 | 5055 => "incorrect CVV or PIN",
        5004 | 5007 | 5033 | 5041 | 5043 => "the card is lost, stolen or blocked",
        5206 => "3-D Secure authentication failed",
        5207 => "3-D Secure authentication is unavailable",
        5034 | 5059 | 5063 => "declined on suspicion of fraud",
        _ => "the payment was declined",
    }
}
