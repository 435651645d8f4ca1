//! 3-D Secure. A cryptogram payment that needs it stops with a challenge (`begin`); the browser
//! passes the emulated ACS page ([`crate::acs`]), which hands out a `PaRes` signed with the
//! terminal's secret ([`make_pa_res`]), so a `PaRes` belongs to exactly one transaction; post3ds
//! checks it and finishes the payment ([`post3ds`]). An abandoned payment is declined with 5206
//! once `three_ds_ttl` has passed.

use super::outcome::{issue_token, notify_outcome, run_check, settle};
use super::{own_txn, random_digits, transaction_reply, TransactionAnswer, TAG};
use crate::cards::Outcome;
use crate::model::{Status, ThreeDs, Transaction};
use crate::params::{request, ParamError};
use crate::pipeline::auth::constant_eq;
use crate::pipeline::Call;
use crate::pipeline::FaultPoint::Pipeline;
use crate::reply::{Envelope, Reply};
use crate::routing::{operation, Routes};
use crate::store::now_ms;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// The `Model` of a 3-D Secure answer (`Success:false`, `Message:null`); it has no `ReasonCode`,
/// which is how clients tell it from a decline.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ThreeDsChallenge {
    /// Send it as `MD` to the ACS, and to post3ds.
    pub transaction_id: i64,
    /// `"+/"` + base64 JSON; send it to the ACS.
    pub pa_req: Option<String>,
    /// Always null.
    pub go_req: Option<String>,
    /// `<base>/acs`: POST `MD`, `PaReq` and `TermUrl` there from the browser.
    pub acs_url: String,
    /// Always null.
    pub three_ds_session_data: Option<String>,
    /// Always true.
    #[serde(rename = "IFrameIsAllowed")]
    pub iframe_is_allowed: bool,
    /// Always null.
    pub frame_width: Option<u32>,
    /// Always null.
    pub frame_height: Option<u32>,
    /// 32 hex.
    pub three_ds_callback_id: Option<String>,
    /// Always null.
    pub escrow_accumulation_id: Option<String>,
}

/// post3ds, at its path and at the legacy `/payments/post3ds`.
pub fn routes() -> Routes {
    Routes::default()
        .with(operation!(post3ds, Pipeline))
        .with(operation!(post3ds, Pipeline).at("/payments/post3ds", "post3ds_legacy"))
}

/// Puts a new payment into `AwaitingAuthentication`, stores it, and answers the challenge.
pub(crate) fn begin(
    call: &Call,
    mut t: Transaction,
    outcome: Outcome,
    force_fail: bool,
    two_stage: bool,
    issue_token: bool,
    now_ms: i64,
) -> Reply {
    let state = &call.state;
    t.status = Status::AwaitingAuthentication;
    let pa_req_json = json!({
        "MerchantName": null,
        "FirstSix": t.card.first_six,
        "LastFour": t.card.last_four,
        "Amount": t.amount().as_f64(),
        "CurrencyCode": t.currency,
        "Date": crate::model::iso_date(now_ms),
        "CustomerName": t.name,
        "CultureName": t.culture_name.as_deref().unwrap_or("ru-RU"),
        "TransactionId": t.id,
    });
    let tds = ThreeDs {
        pa_req: format!("+/{}", B64.encode(pa_req_json.to_string())),
        callback_id: random_digits(32, 16),
        outcome,
        force_fail,
        two_stage,
        expires_ms: now_ms + i64::try_from(state.three_ds_ttl.as_millis()).unwrap_or(i64::MAX / 4),
        issue_token,
    };
    let reply = Reply::json(&Envelope {
        model: ThreeDsChallenge {
            transaction_id: t.id,
            pa_req: Some(tds.pa_req.clone()),
            go_req: None,
            acs_url: format!("{}/acs", state.base_url),
            three_ds_session_data: None,
            iframe_is_allowed: true,
            frame_width: None,
            frame_height: None,
            three_ds_callback_id: Some(tds.callback_id.clone()),
            escrow_accumulation_id: None,
        },
        success: false,
        message: None,
    });
    t.three_ds = Some(tds);
    state.store.insert_txn(t);
    reply
}

request! {
    /// Body of post3ds.
    pub struct Post3ds {
        /// The `TransactionId` of the challenge (the `MD` the ACS posted back).
        transaction_id: i64 = req_i64("TransactionId"),
        /// From the ACS page (or `GET /_emulator/3ds/{id}/pares`).
        pa_res: String = req_str("PaRes"),
    }
}

/// Finishes 3-D Secure: approved or declined (5206 when the ACS answer was Fail).
///
/// Repeating it answers the final state and charges nothing again. The legacy path
/// `/payments/post3ds` is the same operation.
#[utoipa::path(post, path = "/payments/cards/post3ds", tag = TAG, request_body = Post3ds,
    responses((status = 200, description = "Approved, declined, or malformed", body = TransactionAnswer)))]
pub async fn post3ds(call: Call) -> Result<Reply, ParamError> {
    let req = Post3ds::parse(&call.params)?;
    let (state, term, id) = (&call.state, &call.term, req.transaction_id);
    let t = own_txn(&call, id)?;
    let confirmed = verify_pa_res(&term.terminal.api_secret, id, &req.pa_res).ok_or_else(|| {
        ParamError("Invalid PaRes value: it does not belong to this transaction".into())
    })?;
    let Some(tds) = t.three_ds.clone() else {
        return Err(ParamError(
            "Transaction is not awaiting 3-D Secure authentication".into(),
        ));
    };
    if t.status != Status::AwaitingAuthentication {
        // Already finished (a repeated post3ds): answer with the final state.
        return Ok(transaction_reply(state, &t));
    }
    let mut outcome = if !confirmed || tds.force_fail {
        Outcome::Decline(5206)
    } else {
        tds.outcome
    };
    if outcome == Outcome::Approve {
        if let Some(code) = run_check(state, term, &t, tds.two_stage).await {
            outcome = Outcome::Decline(code);
        }
    }
    let now = now_ms();
    let updated = state.store.update_txn(id, |s| {
        if s.status == Status::AwaitingAuthentication {
            settle(s, outcome, tds.two_stage, now);
            if outcome == Outcome::Approve && tds.issue_token {
                issue_token(state, s);
            }
            Some(s.clone())
        } else {
            None
        }
    });
    match updated {
        Some(Some(t)) => {
            notify_outcome(state, term, &t);
            Ok(transaction_reply(state, &t))
        }
        // A concurrent post3ds finished it first.
        _ => Ok(transaction_reply(state, &own_txn(&call, id)?)),
    }
}

/// `PaRes` the emulator's ACS issues: base64 of `<TransactionId>:<Y|N>:<signature>`.
pub fn make_pa_res(secret: &str, txn_id: i64, confirm: bool) -> String {
    let result = if confirm { "Y" } else { "N" };
    let sig = crate::webhooks::sign(secret, &format!("pares:{txn_id}:{result}"));
    B64.encode(format!("{txn_id}:{result}:{sig}"))
}

/// Checks a `PaRes` against a transaction; `Some(confirmed)` when it is genuine.
pub fn verify_pa_res(secret: &str, txn_id: i64, pa_res: &str) -> Option<bool> {
    let raw = B64.decode(pa_res.trim().as_bytes()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut it = text.splitn(3, ':');
    let id: i64 = it.next()?.parse().ok()?;
    let result = it.next()?;
    let sig = it.next()?;
    if id != txn_id || !matches!(result, "Y" | "N") {
        return None;
    }
    let expected = crate::webhooks::sign(secret, &format!("pares:{txn_id}:{result}"));
    constant_eq(expected.as_bytes(), sig.as_bytes()).then_some(result == "Y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pa_res_is_bound_to_transaction_and_secret() {
        let p = make_pa_res("s", 42, true);
        assert_eq!(verify_pa_res("s", 42, &p), Some(true));
        assert_eq!(verify_pa_res("s", 43, &p), None);
        assert_eq!(verify_pa_res("other", 42, &p), None);
        assert_eq!(
            verify_pa_res("s", 42, &make_pa_res("s", 42, false)),
            Some(false)
        );
        assert_eq!(verify_pa_res("s", 42, "garbage"), None);
    }
}
