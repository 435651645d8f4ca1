//! How a payment's result is decided and committed. A payment ends either in its first answer
//! ([`super::payments`]) or at post3ds ([`super::three_ds`]); both run the Check webhook before
//! an approval, set the final state the same way, issue the token the same way and send the
//! same Pay/Fail notification, so those steps live here once.

use super::rrn;
use crate::cards::Outcome;
use crate::model::{Status, TokenRecord, Transaction};
use crate::state::{AppState, TerminalState};
use crate::store::now_ms;
use crate::webhooks::{webhook_fields, CheckAnswer, Kind};

/// Sets the approved or declined state on a new or 3-DS transaction.
pub(crate) fn settle(t: &mut Transaction, outcome: Outcome, two_stage: bool, now: i64) {
    match outcome {
        Outcome::Approve => {
            t.status = if two_stage {
                Status::Authorized
            } else {
                Status::Completed
            };
            t.reason_code = 0;
            t.auth_ms = Some(now);
            if !two_stage {
                t.confirm_ms = Some(now);
            }
            t.auth_code = Some("A1B2C3".into());
            t.rrn = Some(rrn());
        }
        Outcome::Decline(code) => {
            t.status = Status::Declined;
            t.reason_code = code.max(1);
        }
    }
}

/// A new token: `tk_` + 29 hex.
pub(crate) fn new_token() -> String {
    format!("tk_{}", super::random_digits(29, 16))
}

/// Saves the card of an approved payment as a token of its `AccountId` (none without one).
pub(crate) fn issue_token(state: &AppState, t: &mut Transaction) {
    let Some(account) = t.account_id.clone() else {
        return;
    };
    let token = new_token();
    let rec = TokenRecord {
        token: token.clone(),
        public_id: t.public_id.clone(),
        account_id: account,
        card: t.card.clone(),
        created_ms: now_ms(),
    };
    state
        .store
        .tokens
        .shard(token.as_str())
        .write()
        .insert(token.clone(), rec);
    t.token = Some(token);
}

/// Runs the Check webhook when one is configured; `None` = go on, `Some(code)` = decline.
pub(crate) async fn run_check(
    state: &AppState,
    term: &TerminalState,
    t: &Transaction,
    two_stage: bool,
) -> Option<u32> {
    let cfg = state.webhook_for(&term.terminal.public_id, Kind::Check)?;
    let fields = webhook_fields(Kind::Check, t, two_stage);
    match state
        .webhooks
        .check(&cfg, &term.terminal.api_secret, t.id, fields)
        .await
    {
        CheckAnswer::Accept => None,
        CheckAnswer::Decline(c) => Some(c),
    }
}

/// Pay after an approval, Fail after a decline.
pub(crate) fn notify_outcome(state: &AppState, term: &TerminalState, t: &Transaction) {
    let kind = match t.status {
        Status::Completed | Status::Authorized => Kind::Pay,
        Status::Declined => Kind::Fail,
        _ => return,
    };
    state.notify(term, kind, t);
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_have_the_documented_shape() {
        let t = super::new_token();
        assert_eq!(t.len(), 32);
        assert!(t.starts_with("tk_") && t[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
