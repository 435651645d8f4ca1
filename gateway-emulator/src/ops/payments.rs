//! Payments that move money in their first answer: by cryptogram (`/payments/cards/charge`,
//! `/payments/cards/auth`) and by saved token (`/payments/tokens/charge`, `/payments/tokens/auth`).
//! "charge" is one-stage (→ `Completed`), "auth" two-stage (→ `Authorized`).
//!
//! These operations look their fault rules up themselves ([`FaultPoint::Operation`]): a rule may be
//! scoped to a card or a token, and only charges can be declined or have their answer dropped
//! after commit. A cryptogram payment may also stop at 3-D Secure (`three_ds::begin`).
//!
//! [`FaultPoint::Operation`]: crate::pipeline::FaultPoint::Operation

use super::outcome::{issue_token, notify_outcome, run_check, settle};
use super::three_ds::{self, ThreeDsChallenge};
use super::{transaction_reply, TransactionAnswer, TAG};
use crate::cards::{self, Outcome};
use crate::cryptogram::{self, CardData, Scenario};
use crate::faults::{Effects, FaultCtx, DEFAULT_HOLD_MS};
use crate::model::{CardInfo, OpType, Status, TokenRecord, Transaction, WireTransaction};
use crate::money::{currency_code, Minor};
use crate::params::{ParamError, Params};
use crate::pipeline::faults::before_operation;
use crate::pipeline::Call;
use crate::pipeline::FaultPoint::Operation;
use crate::reply::{Answer, Envelope, LateCommit, Notice, Reply};
use crate::routing::{operation, Routes};
use crate::state::{AppState, TerminalState};
use crate::store::now_ms;
use chrono::Datelike as _;
use std::sync::Arc;
use utoipa::ToSchema;

/// Reason code given when a cryptogram packet is used a second time.
pub const REUSED_CRYPTOGRAM_CODE: u32 = 5012;

/// Card and token charges and authorisations; their faults apply once card or token are known.
pub fn routes() -> Routes {
    Routes::default()
        .with(operation!(card_payment, Operation).at(CARDS_CHARGE, "cards_charge"))
        .with(operation!(card_payment, Operation).at(CARDS_AUTH, "cards_auth"))
        .with(operation!(token_payment, Operation).at(TOKENS_CHARGE, "tokens_charge"))
        .with(operation!(token_payment, Operation).at(TOKENS_AUTH, "tokens_auth"))
}

const CARDS_CHARGE: &str = "/payments/cards/charge";
const CARDS_AUTH: &str = "/payments/cards/auth";
const TOKENS_CHARGE: &str = "/payments/tokens/charge";
const TOKENS_AUTH: &str = "/payments/tokens/auth";

/// The path says which kind of payment the caller wants: `…/auth` is two-stage.
fn is_two_stage(call: &Call) -> bool {
    matches!(call.path(), CARDS_AUTH | TOKENS_AUTH)
}

/// Fields every payment takes. `AccountId` and `IpAddress` are in each payment's own type:
/// cryptogram payments require the IP, token payments the account.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentFields {
    /// Roubles (major units): a JSON number or a string, at most 2 decimals, greater than 0.
    #[schema(value_type = f64, example = 10.5)]
    pub amount: Minor,
    /// ISO currency code (about 58 are known); default `RUB`.
    #[schema(value_type = Option<String>, example = "RUB")]
    pub currency: &'static str,
    /// Merchant order id; `/payments/find` returns the latest payment with it.
    pub invoice_id: Option<String>,
    /// Payer e-mail.
    pub email: Option<String>,
    /// Purpose of the payment.
    pub description: Option<String>,
    /// Cardholder name.
    pub name: Option<String>,
    /// An object or a string; it comes back as a string.
    #[schema(value_type = Option<Object>)]
    pub json_data: Option<String>,
    /// `ru-RU` (default) or `en-US`: the language of `CardHolderMessage`.
    pub culture_name: Option<String>,
}

/// `AccountId` and `IpAddress`, read in their place among the common fields.
struct Payer {
    account_id: Option<String>,
    ip_address: Option<String>,
}

impl PaymentFields {
    /// Reads the fields in the order the API checks them, so the first bad one is reported.
    fn parse(p: &Params) -> Result<(Self, Payer), ParamError> {
        let amount = p.req_amount("Amount")?;
        let currency = currency(p)?;
        let invoice_id = p.opt_str("InvoiceId")?;
        let account_id = p.opt_str("AccountId")?;
        let email = p.opt_str("Email")?;
        let description = p.opt_str("Description")?;
        let ip_address = p.opt_str("IpAddress")?;
        let name = p.opt_str("Name")?;
        let json_data = p.json_data()?;
        let culture_name = p.opt_str("CultureName")?;
        let fields = Self {
            amount,
            currency,
            invoice_id,
            email,
            description,
            name,
            json_data,
            culture_name,
        };
        let payer = Payer {
            account_id,
            ip_address,
        };
        Ok((fields, payer))
    }
}

/// A field one payment requires and the other does not.
fn required(value: Option<String>, key: &str) -> Result<String, ParamError> {
    value.ok_or_else(|| ParamError(format!("{key} is required")))
}

fn currency(p: &Params) -> Result<&'static str, ParamError> {
    match p.opt_str("Currency")? {
        None => Ok("RUB"),
        Some(c) => currency_code(&c)
            .map(|x| x.0)
            .ok_or_else(|| ParamError(format!("Invalid Currency value: {c} is not supported"))),
    }
}

/// Body of `/payments/cards/charge` and `/payments/cards/auth`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CardPayment {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub fields: PaymentFields,
    /// Payer IP.
    pub ip_address: String,
    /// Payer id; an approved payment with one issues a token (unless `SaveCard` is false).
    pub account_id: Option<String>,
    /// A legacy `01`/`02` packet, a Mobile SDK packet, or
    /// `EMU1:<pan>:<MM>/<YY>:<cvv>[:scenario][:n=<nonce>]`. Single use (5012 on reuse) except a
    /// plain EMU1 packet.
    pub card_cryptogram_packet: String,
    /// `false` suppresses the token.
    pub save_card: Option<bool>,
    /// The card the packet names.
    #[serde(skip)]
    pub card: CardData,
}

impl CardPayment {
    fn parse(p: &Params) -> Result<Self, ParamError> {
        let (fields, payer) = PaymentFields::parse(p)?;
        let ip_address = required(payer.ip_address, "IpAddress")?;
        let card_cryptogram_packet = p.req_str("CardCryptogramPacket")?;
        let card = cryptogram::parse(&card_cryptogram_packet)
            .map_err(|e| ParamError(format!("Invalid CardCryptogramPacket value: {e}")))?;
        Ok(Self {
            fields,
            ip_address,
            account_id: payer.account_id,
            card_cryptogram_packet,
            save_card: p.opt_bool("SaveCard")?,
            card,
        })
    }
}

/// Body of `/payments/tokens/charge` and `/payments/tokens/auth`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct TokenPayment {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub fields: PaymentFields,
    /// The payer the token was issued for.
    pub account_id: String,
    /// Payer IP.
    pub ip_address: Option<String>,
    /// `tk_` + 29 hex, issued on this terminal.
    pub token: String,
    /// 0 = merchant-initiated (default), 1 = cardholder-initiated.
    #[schema(minimum = 0, maximum = 1)]
    pub tr_initiator_code: Option<i64>,
    /// 0 = unscheduled (default), 1 = scheduled.
    #[schema(minimum = 0, maximum = 1)]
    pub payment_scheduled: Option<i64>,
}

impl TokenPayment {
    fn parse(p: &Params) -> Result<Self, ParamError> {
        let (fields, payer) = PaymentFields::parse(p)?;
        let account_id = required(payer.account_id, "AccountId")?;
        let token = p.req_str("Token")?;
        let tr_initiator_code = p.opt_i64("TrInitiatorCode")?;
        if !(0..=1).contains(&tr_initiator_code.unwrap_or(0)) {
            return Err(ParamError(
                "Invalid TrInitiatorCode value: must be 0 or 1".into(),
            ));
        }
        let payment_scheduled = p.opt_i64("PaymentScheduled")?;
        if payment_scheduled.is_some_and(|s| !(0..=1).contains(&s)) {
            return Err(ParamError(
                "Invalid PaymentScheduled value: must be 0 or 1".into(),
            ));
        }
        Ok(Self {
            fields,
            account_id,
            ip_address: payer.ip_address,
            token,
            tr_initiator_code,
            payment_scheduled,
        })
    }

    /// The saved card, if it belongs to this terminal and account.
    fn saved_card(&self, call: &Call) -> Result<TokenRecord, ParamError> {
        let rec = call
            .state
            .store
            .tokens
            .shard(self.token.as_str())
            .read()
            .get(&self.token)
            .cloned();
        let rec = rec.ok_or_else(|| ParamError("Token not found".into()))?;
        if rec.public_id != call.term.terminal.public_id {
            return Err(ParamError(
                "Token belongs to another terminal (6025 CrossTerminalTokenRestriction)".into(),
            ));
        }
        if rec.account_id != self.account_id {
            return Err(ParamError("AccountId does not match the token".into()));
        }
        Ok(rec)
    }
}

/// What a cryptogram payment answers: a transaction (approved: `Success:true`; declined:
/// `Success:false` with a non-zero `ReasonCode`), a 3-D Secure challenge (`Success:false`,
/// `Message:null`, `AcsUrl`, no `ReasonCode`), or a refusal naming the bad field.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code, clippy::large_enum_variant)] // a schema only: each variant is a type the handlers send
pub enum CardPaymentAnswer<'a> {
    /// Approved or declined.
    Transaction(Envelope<WireTransaction<'a>>),
    /// 3-D Secure needed: open `AcsUrl`, then call post3ds.
    ThreeDs(Envelope<ThreeDsChallenge>),
    /// Malformed request.
    Refused(Notice),
}

/// How a cryptogram payment ends, before the Check webhook and the single-use rule.
enum Plan {
    Final(Outcome),
    ThreeDs { outcome: Outcome, force_fail: bool },
}

/// A payment by cryptogram: one-stage at `/payments/cards/charge`, two-stage at `…/auth`.
///
/// One-stage ends `Completed`; two-stage ends `Authorized`, then confirm or void. Either may
/// stop at 3-D Secure first.
#[utoipa::path(post, path = "/payments/cards/charge", tag = TAG, request_body = CardPayment,
    responses((status = 200, description = "Approved, declined, 3-D Secure challenge, or malformed (see the schema)", body = CardPaymentAnswer)))]
pub async fn card_payment(call: Call) -> Answer {
    let two_stage = is_two_stage(&call);
    let call = &call;
    let req = match CardPayment::parse(&call.params) {
        Ok(r) => r,
        Err(e) => return Answer::Reply(e.into()),
    };
    let card = &req.card;
    let fx = call.state.faults.take(&FaultCtx {
        public_id: &call.term.terminal.public_id,
        path: call.path(),
        is_charge: true,
        token: None,
        pan: card.pan.as_deref(),
        first_six: Some(&card.first_six),
        last_four: Some(&card.last_four),
        invoice_id: req.fields.invoice_id.as_deref(),
    });
    if let Some(answer) = before_operation(&fx).await {
        return answer;
    }
    match card.scenario {
        Some(Scenario::Timeout) => return Answer::Hold(DEFAULT_HOLD_MS),
        Some(Scenario::ServerError) => {
            return Answer::Abort(Reply::with_status(
                500,
                &Notice::failure("Internal server error (EMU1 5xx scenario)"),
            ))
        }
        _ => {}
    }
    let behaviour = cards::behaviour(&card.first_six, &card.last_four);
    let now = chrono::Utc::now();
    let expired = card.expired_at(now.year(), now.month());
    let luhn_bad = card.pan.as_deref().is_some_and(|pan| {
        cards::lookup(&card.first_six, &card.last_four).is_none() && !cards::luhn_valid(pan)
    });
    let t = new_payment(
        call,
        &req.fields,
        req.account_id.clone(),
        Some(req.ip_address.clone()),
        CardInfo::new(card, &behaviour),
    );
    let mut plan = if let Some(code) = fx.decline {
        Plan::Final(Outcome::Decline(code))
    } else if expired {
        Plan::Final(Outcome::Decline(5054))
    } else if luhn_bad {
        Plan::Final(Outcome::Decline(5014))
    } else {
        match card.scenario {
            Some(Scenario::Decline(code)) => Plan::Final(Outcome::Decline(code)),
            Some(Scenario::Approve) => Plan::Final(Outcome::Approve),
            Some(Scenario::ThreeDs) => Plan::ThreeDs {
                outcome: Outcome::Approve,
                force_fail: false,
            },
            Some(Scenario::ThreeDsFail) => Plan::ThreeDs {
                outcome: Outcome::Approve,
                force_fail: true,
            },
            _ if behaviour.three_ds => Plan::ThreeDs {
                outcome: behaviour.cryptogram,
                force_fail: false,
            },
            _ => Plan::Final(behaviour.cryptogram),
        }
    };
    // The Check webhook runs before an approval is committed (not for 3-DS: it runs at post3ds).
    if matches!(plan, Plan::Final(Outcome::Approve)) {
        if let Some(code) = run_check(&call.state, &call.term, &t, two_stage).await {
            plan = Plan::Final(Outcome::Decline(code));
        }
    }
    let issue = req.account_id.is_some() && req.save_card != Some(false);
    let t = with_pending(t, &fx);
    if let (Plan::Final(outcome), Some((hold_ms, after_ms))) = (&plan, fx.late_commit) {
        // The bank answers late: the cryptogram is used and the charge committed then.
        let (outcome, packet, single_use) = (
            *outcome,
            req.card_cryptogram_packet.clone(),
            card.single_use,
        );
        let (state, term) = (call.state.clone(), call.term.clone());
        return Answer::CommitLater {
            hold_ms,
            late: LateCommit::new(after_ms, move || {
                let outcome = if single_use && !state.store.use_cryptogram(&packet) {
                    Outcome::Decline(REUSED_CRYPTOGRAM_CODE)
                } else {
                    outcome
                };
                commit(&state, &term, t, outcome, two_stage, issue, now_ms())
            }),
        };
    }
    // Commit: from here on nothing awaits.
    let now_ms = now_ms();
    if card.single_use && !call.state.store.use_cryptogram(&req.card_cryptogram_packet) {
        plan = Plan::Final(Outcome::Decline(REUSED_CRYPTOGRAM_CODE));
    }
    let reply = match plan {
        Plan::Final(outcome) => commit(
            &call.state,
            &call.term,
            t,
            outcome,
            two_stage,
            issue,
            now_ms,
        ),
        Plan::ThreeDs {
            outcome,
            force_fail,
        } => three_ds::begin(call, t, outcome, force_fail, two_stage, issue, now_ms),
    };
    deliver(reply, &fx)
}

/// A payment with a saved card: one-stage at `/payments/tokens/charge`, two-stage at `…/auth`.
///
/// Never 3-D Secure. The token must be this terminal's and the `AccountId` the token's.
#[utoipa::path(post, path = "/payments/tokens/charge", tag = TAG, request_body = TokenPayment,
    responses((status = 200, description = "Approved, declined, or malformed", body = TransactionAnswer)))]
pub async fn token_payment(call: Call) -> Answer {
    let two_stage = is_two_stage(&call);
    let call = &call;
    let (req, rec) = match TokenPayment::parse(&call.params)
        .and_then(|req| req.saved_card(call).map(|rec| (req, rec)))
    {
        Ok(x) => x,
        Err(e) => return Answer::Reply(e.into()),
    };
    let fx = call.state.faults.take(&FaultCtx {
        public_id: &call.term.terminal.public_id,
        path: call.path(),
        is_charge: true,
        token: Some(&rec.token),
        pan: None,
        first_six: Some(&rec.card.first_six),
        last_four: Some(&rec.card.last_four),
        invoice_id: req.fields.invoice_id.as_deref(),
    });
    if let Some(answer) = before_operation(&fx).await {
        return answer;
    }
    let mut t = new_payment(
        call,
        &req.fields,
        Some(req.account_id.clone()),
        req.ip_address.clone(),
        rec.card.clone(),
    );
    t.token = Some(rec.token.clone());
    t.tr_initiator_code = Some(req.tr_initiator_code.unwrap_or(0));
    t.payment_scheduled = Some(req.payment_scheduled.unwrap_or(0));
    let now = chrono::Utc::now();
    let expired = (rec.card.exp_year as i32, rec.card.exp_month) < (now.year(), now.month());
    let mut outcome = match fx.decline {
        Some(code) => Outcome::Decline(code),
        None if expired => Outcome::Decline(5054),
        None => rec.card.token_outcome,
    };
    if outcome == Outcome::Approve {
        if let Some(code) = run_check(&call.state, &call.term, &t, two_stage).await {
            outcome = Outcome::Decline(code);
        }
    }
    let t = with_pending(t, &fx);
    if let Some((hold_ms, after_ms)) = fx.late_commit {
        let (state, term) = (call.state.clone(), call.term.clone());
        return Answer::CommitLater {
            hold_ms,
            late: LateCommit::new(after_ms, move || {
                commit(&state, &term, t, outcome, two_stage, false, now_ms())
            }),
        };
    }
    let reply = commit(
        &call.state,
        &call.term,
        t,
        outcome,
        two_stage,
        false,
        now_ms(),
    );
    deliver(reply, &fx)
}

/// Under a `pending_in_find` fault, `find` / `get` report the payment as not final for a while.
fn with_pending(mut t: Transaction, fx: &Effects) -> Transaction {
    if let Some(ms) = fx.pending_in_find_ms {
        t.pending_until_ms = Some(now_ms() + ms as i64);
    }
    t
}

/// A payment of the caller's terminal, not yet decided (`Declined` with code 0 until settled).
fn new_payment(
    call: &Call,
    f: &PaymentFields,
    account_id: Option<String>,
    ip_address: Option<String>,
    card: CardInfo,
) -> Transaction {
    Transaction {
        id: call.state.store.next_id(),
        public_id: call.term.terminal.public_id.clone(),
        op_type: OpType::Payment,
        amount_minor: f.amount.0,
        currency: f.currency.to_owned(),
        status: Status::Declined,
        reason_code: 0,
        invoice_id: f.invoice_id.clone(),
        account_id,
        email: f.email.clone(),
        description: f.description.clone(),
        ip_address,
        name: f.name.clone(),
        json_data: f.json_data.clone(),
        culture_name: f.culture_name.clone(),
        card,
        created_ms: now_ms(),
        auth_ms: None,
        confirm_ms: None,
        token: None,
        refunded_minor: 0,
        original_transaction_id: None,
        tr_initiator_code: None,
        payment_scheduled: None,
        three_ds: None,
        auth_code: None,
        rrn: None,
        pending_until_ms: None,
    }
}

/// Settles the payment, issues its token when asked, notifies and stores it; the answer.
fn commit(
    state: &Arc<AppState>,
    term: &Arc<TerminalState>,
    mut t: Transaction,
    outcome: Outcome,
    two_stage: bool,
    issue: bool,
    now: i64,
) -> Reply {
    settle(&mut t, outcome, two_stage, now);
    if outcome == Outcome::Approve && issue {
        issue_token(state, &mut t);
    }
    let reply = transaction_reply(state, &t);
    notify_outcome(state, term, &t);
    state.store.insert_txn(t);
    reply
}

/// The committed answer, or none at all when a fault drops it.
fn deliver(reply: Reply, fx: &Effects) -> Answer {
    if fx.drop_after_commit {
        Answer::DropAfterCommit(reply)
    } else {
        Answer::Reply(reply)
    }
}
