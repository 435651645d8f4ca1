//! The CloudPayments API: authentication, concurrency limit, idempotency, faults and the
//! operations themselves.

use crate::cards::{self, Outcome};
use crate::cryptogram::{self, Scenario};
use crate::faults::{Effects, FaultCtx};
use crate::model::{CardInfo, OpType, Status, ThreeDs, TokenRecord, Transaction};
use crate::money::{currency_code, Minor};
use crate::params::{BodyKind, ParamError, Params, MAX_BODY_BYTES};
use crate::server::{AppState, DropConnection, TerminalState};
use crate::store::{body_hash, now_ms, IdemBegin, IdemKey, StoredResponse};
use crate::webhooks::{CheckAnswer, Kind};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use rand::Rng as _;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Reason code given when a cryptogram packet is used a second time.
pub const REUSED_CRYPTOGRAM_CODE: u32 = 5012;
/// How long the `timeout` scenario holds a request when the fault gives no `hold_ms` (the real API's 5-minute limit).
pub const DEFAULT_HOLD_MS: u64 = 300_000;

/// An API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `/test`.
    Test,
    /// `/payments/cards/charge`.
    CardsCharge,
    /// `/payments/cards/auth`.
    CardsAuth,
    /// `/payments/cards/post3ds`, `/payments/post3ds`.
    Post3ds,
    /// `/payments/tokens/charge`.
    TokensCharge,
    /// `/payments/tokens/auth`.
    TokensAuth,
    /// `/payments/confirm`.
    Confirm,
    /// `/payments/void`.
    Void,
    /// `/payments/refund`.
    Refund,
    /// `/payments/get`.
    Get,
    /// `/payments/find`.
    Find,
    /// `/v2/payments/find`.
    FindV2,
    /// `/payments/list`.
    List,
    /// `/v2/payments/list`.
    ListV2,
    /// `/payments/tokens/list`.
    TokensList,
    /// `/subscriptions/*` (not supported).
    Subscriptions,
    /// `/site/notifications/{Type}/get`.
    NotificationsGet,
    /// `/site/notifications/{Type}/update`.
    NotificationsUpdate,
}

/// An answer: status and JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

impl Reply {
    fn json(v: &Value) -> Self {
        Self {
            status: 200,
            body: Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        }
    }
    fn with_status(status: u16, v: &Value) -> Self {
        Self {
            status,
            ..Self::json(v)
        }
    }
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        r
    }
}

/// What processing decided.
enum Outcome2 {
    /// A normal answer (stored for `X-Request-ID` replays).
    Reply(Reply),
    /// An injected error answer, not stored: a retry is processed afresh.
    Abort(Reply),
    /// Hold the request, then close the connection; nothing stored.
    Hold(u64),
    /// Committed: store the answer for replays, but close this connection without it.
    DropAfterCommit(Reply),
}

fn err(msg: impl Into<String>) -> Reply {
    Reply::json(&json!({"Success": false, "Message": msg.into()}))
}

fn ok_empty() -> Reply {
    Reply::json(&json!({"Success": true, "Message": null}))
}

impl From<ParamError> for Reply {
    fn from(e: ParamError) -> Self {
        err(e.0)
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope<'a> {
    model: crate::model::WireTransaction<'a>,
    success: bool,
    message: Option<&'a str>,
}

fn txn_reply(state: &AppState, t: &Transaction) -> Reply {
    let env = Envelope {
        model: t.wire(&state.base_url),
        success: t.is_success(),
        message: None,
    };
    Reply {
        status: 200,
        body: Bytes::from(serde_json::to_vec(&env).unwrap_or_default()),
    }
}

fn three_ds_reply(state: &AppState, t: &Transaction) -> Reply {
    let tds = t.three_ds.as_ref();
    Reply::json(&json!({
        "Model": {
            "TransactionId": t.id,
            "PaReq": tds.map(|x| x.pa_req.clone()),
            "GoReq": null,
            "AcsUrl": format!("{}/acs", state.base_url),
            "ThreeDsSessionData": null,
            "IFrameIsAllowed": true,
            "FrameWidth": null,
            "FrameHeight": null,
            "ThreeDsCallbackId": tds.map(|x| x.callback_id.clone()),
            "EscrowAccumulationId": null
        },
        "Success": false,
        "Message": null
    }))
}

fn unauthorized() -> Response {
    let mut r = Reply::with_status(
        401,
        &json!({"Success": false, "Message": "Authorization has been denied for this request."}),
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"CloudPayments\""),
    );
    r
}

/// The terminal named by a Basic `Authorization` header, if the secret matches.
pub fn authenticate<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
) -> Option<&'a Arc<TerminalState>> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    if let Some(t) = state.terminals_by_header.get(value) {
        return Some(t);
    }
    let s = std::str::from_utf8(value).ok()?;
    let (scheme, b64) = s.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(b64.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    let t = state.terminals.get(user)?;
    constant_eq(t.terminal.api_secret.as_bytes(), pass.as_bytes()).then_some(t)
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct InFlight<'a>(&'a TerminalState);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn dropped_response() -> Response {
    let mut r = Response::new(Body::empty());
    r.extensions_mut().insert(DropConnection);
    r
}

/// Entry point of every CloudPayments endpoint.
pub async fn handle(State(state): State<Arc<AppState>>, op: Op, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some(term) = authenticate(&state, &parts.headers) else {
        return unauthorized();
    };
    let term = term.clone();
    let prev = term.inflight.fetch_add(1, Ordering::AcqRel);
    let _inflight = InFlight(&term);
    if prev >= state.max_concurrent {
        return Reply::with_status(
            429,
            &json!({"Success": false, "Message": "Too many concurrent requests for this terminal"}),
        )
        .into_response();
    }
    let kind = BodyKind::from_header(
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let bytes = match http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let msg = if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                "Request body is too large"
            } else {
                "Request body could not be read"
            };
            return err(msg).into_response();
        }
    };
    let path = parts.uri.path().to_owned();
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);

    let Some(request_id) = request_id else {
        let outcome = process(&state, &term, op, &path, kind, &bytes).await;
        return finish(outcome, None).await;
    };
    if request_id.len() > 1024 {
        return err("X-Request-ID is too long (at most 1024 characters)").into_response();
    }
    let hash = body_hash(&bytes);
    let key = IdemKey {
        public_id: term.terminal.public_id.clone(),
        path,
        key: request_id,
    };
    loop {
        match state.store.idem_begin(key.clone()) {
            IdemBegin::Done(stored) => {
                if stored.request_hash != hash {
                    return err("X-Request-ID was already used with a different request body")
                        .into_response();
                }
                return Reply {
                    status: stored.status,
                    body: stored.body.clone(),
                }
                .into_response();
            }
            IdemBegin::Wait(mut rx) => {
                // Woken when the first request stores its answer or gives the key up.
                let _ = rx.wait_for(|done| *done).await;
            }
            IdemBegin::Owner(guard) => {
                let outcome = process(&state, &term, op, &key.path, kind, &bytes).await;
                let store_it = |r: &Reply| {
                    Arc::new(StoredResponse {
                        status: r.status,
                        body: r.body.clone(),
                        request_hash: hash,
                        created_ms: now_ms(),
                    })
                };
                match &outcome {
                    Outcome2::Reply(r) | Outcome2::DropAfterCommit(r) => {
                        guard.complete(store_it(r))
                    }
                    Outcome2::Abort(_) | Outcome2::Hold(_) => drop(guard),
                }
                return finish(outcome, None).await;
            }
        }
    }
}

async fn finish(outcome: Outcome2, _: Option<()>) -> Response {
    match outcome {
        Outcome2::Reply(r) | Outcome2::Abort(r) => r.into_response(),
        Outcome2::DropAfterCommit(_) => dropped_response(),
        Outcome2::Hold(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            dropped_response()
        }
    }
}

async fn process(
    state: &AppState,
    term: &TerminalState,
    op: Op,
    path: &str,
    kind: BodyKind,
    body: &[u8],
) -> Outcome2 {
    let p = match Params::parse(kind, body) {
        Ok(p) => p,
        Err(e) => return Outcome2::Reply(e.into()),
    };
    // Faults that do not depend on the request's content (global, or read endpoints) apply here;
    // charge endpoints evaluate them once card and token are known.
    let is_money = matches!(
        op,
        Op::CardsCharge | Op::CardsAuth | Op::TokensCharge | Op::TokensAuth
    );
    if !is_money {
        let invoice = p.opt_str("InvoiceId").ok().flatten();
        let fx = state.faults.take(&FaultCtx {
            public_id: &term.terminal.public_id,
            path,
            invoice_id: invoice.as_deref(),
            ..Default::default()
        });
        if let Some(o) = apply_pre_faults(&fx).await {
            return o;
        }
    }
    let res = match op {
        Op::Test => Ok(Reply::json(&json!({"Success": true, "Message": uuid::Uuid::new_v4().to_string()}))),
        Op::CardsCharge | Op::CardsAuth => return card_payment(state, term, path, op == Op::CardsAuth, &p).await,
        Op::TokensCharge | Op::TokensAuth => return token_payment(state, term, path, op == Op::TokensAuth, &p).await,
        Op::Post3ds => post3ds(state, term, &p).await,
        Op::Confirm => confirm(state, term, &p),
        Op::Void => void(state, term, &p),
        Op::Refund => refund(state, term, &p),
        Op::Get => get(state, term, &p),
        Op::Find => find(state, term, &p, false),
        Op::FindV2 => find(state, term, &p, true),
        Op::List => list(state, term, &p),
        Op::ListV2 => list_v2(state, term, &p),
        Op::TokensList => tokens_list(state, term, &p),
        Op::Subscriptions => Ok(err("The subscriptions API is not supported by this emulator: schedule charges yourself with /payments/tokens/charge")),
        Op::NotificationsGet => notifications(state, term, path, None),
        Op::NotificationsUpdate => notifications(state, term, path, Some(&p)),
    };
    Outcome2::Reply(res.unwrap_or_else(Reply::from))
}

async fn apply_pre_faults(fx: &Effects) -> Option<Outcome2> {
    if fx.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fx.latency_ms)).await;
    }
    if let Some(s) = fx.http_status {
        let msg = if s == 429 {
            "Too many requests"
        } else {
            "Internal server error (injected fault)"
        };
        return Some(Outcome2::Abort(Reply::with_status(
            s,
            &json!({"Success": false, "Message": msg}),
        )));
    }
    fx.timeout_ms.map(Outcome2::Hold)
}

fn currency(p: &Params) -> Result<&'static str, ParamError> {
    match p.opt_str("Currency")? {
        None => Ok("RUB"),
        Some(c) => currency_code(&c)
            .map(|x| x.0)
            .ok_or_else(|| ParamError(format!("Invalid Currency value: {c} is not supported"))),
    }
}

struct Common {
    amount: Minor,
    currency: &'static str,
    invoice_id: Option<String>,
    account_id: Option<String>,
    email: Option<String>,
    description: Option<String>,
    ip_address: Option<String>,
    name: Option<String>,
    json_data: Option<String>,
    culture_name: Option<String>,
}

fn common(p: &Params) -> Result<Common, ParamError> {
    Ok(Common {
        amount: p.req_amount("Amount")?,
        currency: currency(p)?,
        invoice_id: p.opt_str("InvoiceId")?,
        account_id: p.opt_str("AccountId")?,
        email: p.opt_str("Email")?,
        description: p.opt_str("Description")?,
        ip_address: p.opt_str("IpAddress")?,
        name: p.opt_str("Name")?,
        json_data: p.json_data()?,
        culture_name: p.opt_str("CultureName")?,
    })
}

fn new_token() -> String {
    let mut rng = rand::thread_rng();
    let hex: String = (0..29)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect();
    format!("tk_{hex}")
}

fn random_hex(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

fn rrn() -> String {
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| char::from_digit(rng.gen_range(0..10), 10).unwrap_or('0'))
        .collect()
}

fn base_txn(state: &AppState, term: &TerminalState, c: &Common, card: CardInfo) -> Transaction {
    Transaction {
        id: state.store.next_id(),
        public_id: term.terminal.public_id.clone(),
        op_type: OpType::Payment,
        amount_minor: c.amount.0,
        currency: c.currency.to_owned(),
        status: Status::Declined,
        reason_code: 0,
        invoice_id: c.invoice_id.clone(),
        account_id: c.account_id.clone(),
        email: c.email.clone(),
        description: c.description.clone(),
        ip_address: c.ip_address.clone(),
        name: c.name.clone(),
        json_data: c.json_data.clone(),
        culture_name: c.culture_name.clone(),
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
    }
}

/// Sets the approved or declined state on a new or 3-DS transaction.
fn settle(t: &mut Transaction, outcome: Outcome, two_stage: bool, now: i64) {
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

fn issue_token(state: &AppState, t: &mut Transaction) {
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

/// Runs the Check webhook when one is configured; `None` = go on.
async fn run_check(
    state: &AppState,
    term: &TerminalState,
    t: &Transaction,
    two_stage: bool,
) -> Option<u32> {
    let cfg = state.webhook_for(&term.terminal.public_id, Kind::Check)?;
    let fields = crate::server::webhook_fields(Kind::Check, t, two_stage);
    match state
        .webhooks
        .check(&cfg, &term.terminal.api_secret, t.id, fields)
        .await
    {
        CheckAnswer::Accept => None,
        CheckAnswer::Decline(c) => Some(c),
    }
}

fn notify_outcome(state: &AppState, term: &TerminalState, t: &Transaction) {
    let kind = match t.status {
        Status::Completed | Status::Authorized => Kind::Pay,
        Status::Declined => Kind::Fail,
        _ => return,
    };
    state.notify(term, kind, t);
}

async fn card_payment(
    state: &AppState,
    term: &TerminalState,
    path: &str,
    two_stage: bool,
    p: &Params,
) -> Outcome2 {
    let parsed = (|| -> Result<_, ParamError> {
        let c = common(p)?;
        if c.ip_address.is_none() {
            return Err(ParamError("IpAddress is required".into()));
        }
        let packet = p.req_str("CardCryptogramPacket")?;
        let card = cryptogram::parse(&packet)
            .map_err(|e| ParamError(format!("Invalid CardCryptogramPacket value: {e}")))?;
        Ok((c, packet, card, p.opt_bool("SaveCard")?))
    })();
    let (c, packet, card, save_card) = match parsed {
        Ok(x) => x,
        Err(e) => return Outcome2::Reply(e.into()),
    };
    let behaviour = cards::behaviour(&card.first_six, &card.last_four);
    let fx = state.faults.take(&FaultCtx {
        public_id: &term.terminal.public_id,
        path,
        is_charge: true,
        token: None,
        pan: card.pan.as_deref(),
        first_six: Some(&card.first_six),
        last_four: Some(&card.last_four),
        invoice_id: c.invoice_id.as_deref(),
    });
    if let Some(o) = apply_pre_faults(&fx).await {
        return o;
    }
    match card.scenario {
        Some(Scenario::Timeout) => return Outcome2::Hold(DEFAULT_HOLD_MS),
        Some(Scenario::ServerError) => {
            return Outcome2::Abort(Reply::with_status(
                500,
                &json!({"Success": false, "Message": "Internal server error (EMU1 5xx scenario)"}),
            ))
        }
        _ => {}
    }
    let now = chrono::Utc::now();
    let expired = {
        use chrono::Datelike as _;
        card.expired_at(now.year(), now.month())
    };
    let luhn_bad = card.pan.as_deref().is_some_and(|pan| {
        cards::lookup(&card.first_six, &card.last_four).is_none() && !cards::luhn_valid(pan)
    });
    let info = CardInfo {
        first_six: card.first_six.clone(),
        last_four: card.last_four.clone(),
        exp_month: card.exp_month,
        exp_year: card.exp_year,
        card_type: behaviour.card_type,
        token_outcome: behaviour.token,
    };
    let mut t = base_txn(state, term, &c, info);

    enum Plan {
        Final(Outcome),
        ThreeDs { outcome: Outcome, force_fail: bool },
    }
    let plan = if let Some(code) = fx.decline {
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
    let mut plan = plan;
    if matches!(plan, Plan::Final(Outcome::Approve)) {
        if let Some(code) = run_check(state, term, &t, two_stage).await {
            plan = Plan::Final(Outcome::Decline(code));
        }
    }
    // Commit: from here on nothing awaits.
    let now_ms = now_ms();
    if card.single_use && !state.store.use_cryptogram(&packet) {
        plan = Plan::Final(Outcome::Decline(REUSED_CRYPTOGRAM_CODE));
    }
    let issue = c.account_id.is_some() && save_card != Some(false);
    let reply = match plan {
        Plan::Final(outcome) => {
            settle(&mut t, outcome, two_stage, now_ms);
            if outcome == Outcome::Approve && issue {
                issue_token(state, &mut t);
            }
            let reply = txn_reply(state, &t);
            notify_outcome(state, term, &t);
            state.store.insert_txn(t);
            reply
        }
        Plan::ThreeDs {
            outcome,
            force_fail,
        } => {
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
            t.three_ds = Some(ThreeDs {
                pa_req: format!("+/{}", B64.encode(pa_req_json.to_string())),
                callback_id: random_hex(32),
                outcome,
                force_fail,
                two_stage,
                expires_ms: now_ms
                    + i64::try_from(state.three_ds_ttl.as_millis()).unwrap_or(i64::MAX / 4),
                issue_token: issue,
            });
            let reply = three_ds_reply(state, &t);
            state.store.insert_txn(t);
            reply
        }
    };
    if fx.drop_after_commit {
        Outcome2::DropAfterCommit(reply)
    } else {
        Outcome2::Reply(reply)
    }
}

async fn token_payment(
    state: &AppState,
    term: &TerminalState,
    path: &str,
    two_stage: bool,
    p: &Params,
) -> Outcome2 {
    let parsed = (|| -> Result<_, ParamError> {
        let c = common(p)?;
        let account = c
            .account_id
            .clone()
            .ok_or_else(|| ParamError("AccountId is required".into()))?;
        let token = p.req_str("Token")?;
        let initiator = p.opt_i64("TrInitiatorCode")?.unwrap_or(0);
        if !(0..=1).contains(&initiator) {
            return Err(ParamError(
                "Invalid TrInitiatorCode value: must be 0 or 1".into(),
            ));
        }
        let scheduled = p.opt_i64("PaymentScheduled")?;
        if scheduled.is_some_and(|s| !(0..=1).contains(&s)) {
            return Err(ParamError(
                "Invalid PaymentScheduled value: must be 0 or 1".into(),
            ));
        }
        let rec = state
            .store
            .tokens
            .shard(token.as_str())
            .read()
            .get(&token)
            .cloned();
        let rec = rec.ok_or_else(|| ParamError("Token not found".into()))?;
        if rec.public_id != term.terminal.public_id {
            return Err(ParamError(
                "Token belongs to another terminal (6025 CrossTerminalTokenRestriction)".into(),
            ));
        }
        if rec.account_id != account {
            return Err(ParamError("AccountId does not match the token".into()));
        }
        Ok((c, rec, initiator, scheduled))
    })();
    let (c, rec, initiator, scheduled) = match parsed {
        Ok(x) => x,
        Err(e) => return Outcome2::Reply(e.into()),
    };
    let fx = state.faults.take(&FaultCtx {
        public_id: &term.terminal.public_id,
        path,
        is_charge: true,
        token: Some(&rec.token),
        pan: None,
        first_six: Some(&rec.card.first_six),
        last_four: Some(&rec.card.last_four),
        invoice_id: c.invoice_id.as_deref(),
    });
    if let Some(o) = apply_pre_faults(&fx).await {
        return o;
    }
    let mut t = base_txn(state, term, &c, rec.card.clone());
    t.token = Some(rec.token.clone());
    t.tr_initiator_code = Some(initiator);
    t.payment_scheduled = Some(scheduled.unwrap_or(0));
    let now = chrono::Utc::now();
    let expired = {
        use chrono::Datelike as _;
        (rec.card.exp_year as i32, rec.card.exp_month) < (now.year(), now.month())
    };
    let mut outcome = match fx.decline {
        Some(code) => Outcome::Decline(code),
        None if expired => Outcome::Decline(5054),
        None => rec.card.token_outcome,
    };
    if outcome == Outcome::Approve {
        if let Some(code) = run_check(state, term, &t, two_stage).await {
            outcome = Outcome::Decline(code);
        }
    }
    settle(&mut t, outcome, two_stage, now_ms());
    let reply = txn_reply(state, &t);
    notify_outcome(state, term, &t);
    state.store.insert_txn(t);
    if fx.drop_after_commit {
        Outcome2::DropAfterCommit(reply)
    } else {
        Outcome2::Reply(reply)
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

/// Declines a transaction whose 3-DS was abandoned past its deadline; true if it changed.
pub fn expire_if_abandoned(t: &mut Transaction, now: i64) -> bool {
    if t.status == Status::AwaitingAuthentication
        && t.three_ds.as_ref().is_some_and(|x| x.expires_ms <= now)
    {
        t.status = Status::Declined;
        t.reason_code = 5206;
        return true;
    }
    false
}

fn own_txn(state: &AppState, term: &TerminalState, id: i64) -> Result<Transaction, ParamError> {
    let mut t = state
        .store
        .get_txn(id)
        .filter(|t| t.public_id == term.terminal.public_id)
        .ok_or_else(|| ParamError("Transaction not found".into()))?;
    if t.status == Status::AwaitingAuthentication && expire_if_abandoned(&mut t, now_ms()) {
        state
            .store
            .update_txn(id, |s| expire_if_abandoned(s, now_ms()));
    }
    Ok(t)
}

async fn post3ds(state: &AppState, term: &TerminalState, p: &Params) -> Result<Reply, ParamError> {
    let id = p.req_i64("TransactionId")?;
    let pa_res = p.req_str("PaRes")?;
    let t = own_txn(state, term, id)?;
    let confirmed = verify_pa_res(&term.terminal.api_secret, id, &pa_res).ok_or_else(|| {
        ParamError("Invalid PaRes value: it does not belong to this transaction".into())
    })?;
    let Some(tds) = t.three_ds.clone() else {
        return Err(ParamError(
            "Transaction is not awaiting 3-D Secure authentication".into(),
        ));
    };
    if t.status != Status::AwaitingAuthentication {
        // Already finished (a repeated post3ds): answer with the final state.
        return Ok(txn_reply(state, &t));
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
            Ok(txn_reply(state, &t))
        }
        // A concurrent post3ds finished it first.
        _ => Ok(txn_reply(state, &own_txn(state, term, id)?)),
    }
}

fn confirm(state: &AppState, term: &TerminalState, p: &Params) -> Result<Reply, ParamError> {
    let id = p.req_i64("TransactionId")?;
    let amount = p.req_amount("Amount")?;
    own_txn(state, term, id)?;
    let res = state.store.update_txn(id, |t| {
        if t.status != Status::Authorized {
            return Err(ParamError(format!(
                "Transaction {} can not be confirmed: its status is {}",
                t.id,
                t.status.name()
            )));
        }
        if amount.0 > t.amount_minor {
            return Err(ParamError(
                "Invalid Amount value: more than the authorized amount".into(),
            ));
        }
        t.amount_minor = amount.0;
        t.status = Status::Completed;
        t.confirm_ms = Some(now_ms());
        Ok(t.clone())
    });
    let t = res.ok_or_else(|| ParamError("Transaction not found".into()))??;
    state.notify(term, Kind::Confirm, &t);
    Ok(ok_empty())
}

fn void(state: &AppState, term: &TerminalState, p: &Params) -> Result<Reply, ParamError> {
    let id = p.req_i64("TransactionId")?;
    own_txn(state, term, id)?;
    let res = state.store.update_txn(id, |t| {
        if t.status != Status::Authorized {
            return Err(ParamError(format!(
                "Transaction {} can not be voided: its status is {}",
                t.id,
                t.status.name()
            )));
        }
        t.status = Status::Cancelled;
        Ok(t.clone())
    });
    let t = res.ok_or_else(|| ParamError("Transaction not found".into()))??;
    state.notify(term, Kind::Cancel, &t);
    Ok(ok_empty())
}

fn refund(state: &AppState, term: &TerminalState, p: &Params) -> Result<Reply, ParamError> {
    let id = p.req_i64("TransactionId")?;
    let amount = p.req_amount("Amount")?;
    let json_data = p.json_data()?;
    own_txn(state, term, id)?;
    let refund_id = state.store.next_id();
    let res = state.store.update_txn(id, |t| {
        if t.op_type != OpType::Payment || t.status != Status::Completed {
            return Err(ParamError(format!(
                "Transaction {} can not be refunded: its status is {}",
                t.id,
                t.status.name()
            )));
        }
        if amount.0 > t.amount_minor - t.refunded_minor {
            return Err(ParamError(
                "Invalid Amount value: more than what is left to refund".into(),
            ));
        }
        t.refunded_minor += amount.0;
        Ok(t.clone())
    });
    let orig = res.ok_or_else(|| ParamError("Transaction not found".into()))??;
    let now = now_ms();
    let r = Transaction {
        id: refund_id,
        op_type: OpType::Refund,
        amount_minor: amount.0,
        status: Status::Completed,
        reason_code: 0,
        created_ms: now,
        auth_ms: Some(now),
        confirm_ms: Some(now),
        refunded_minor: 0,
        original_transaction_id: Some(orig.id),
        json_data: json_data.or(orig.json_data.clone()),
        three_ds: None,
        tr_initiator_code: None,
        payment_scheduled: None,
        rrn: Some(rrn()),
        ..orig.clone()
    };
    state.notify(term, Kind::Refund, &r);
    state.store.insert_txn(r);
    Ok(Reply::json(
        &json!({"Model": {"TransactionId": refund_id}, "Success": true, "Message": null}),
    ))
}

fn get(state: &AppState, term: &TerminalState, p: &Params) -> Result<Reply, ParamError> {
    let id = p.req_i64("TransactionId")?;
    Ok(txn_reply(state, &own_txn(state, term, id)?))
}

fn find(state: &AppState, term: &TerminalState, p: &Params, v2: bool) -> Result<Reply, ParamError> {
    let invoice = p.req_str("InvoiceId")?;
    let latest = state
        .store
        .txns_for_invoice(&invoice)
        .into_iter()
        .filter(|t| t.public_id == term.terminal.public_id && (v2 || t.op_type == OpType::Payment))
        .max_by_key(|t| (t.created_ms, t.id));
    match latest {
        Some(mut t) => {
            expire_if_abandoned(&mut t, now_ms());
            Ok(txn_reply(state, &t))
        }
        None => Ok(err("Not found")),
    }
}

/// Offset in minutes of a CloudPayments time-zone code.
fn tz_offset_minutes(code: &str) -> Option<i32> {
    const ZONES: &[(&str, i32)] = &[
        ("HST", -600),
        ("AKST", -540),
        ("PST", -480),
        ("MST", -420),
        ("CST", -360),
        ("EST", -300),
        ("AST", -240),
        ("BRT", -180),
        ("UTC", 0),
        ("GMT", 0),
        ("CET", 60),
        ("EET", 120),
        ("MSK", 180),
        ("AZT", 240),
        ("AMT", 240),
        ("SAMT", 240),
        ("GET", 240),
        ("TJT", 300),
        ("YEKT", 300),
        ("ALMT", 300),
        ("NOVT", 420),
        ("KRAT", 420),
        ("HKT", 480),
        ("IRKT", 480),
        ("SGT", 480),
        ("ULAT", 480),
        ("YAKT", 540),
        ("VLAT", 600),
        ("SAKT", 660),
        ("ANAT", 720),
    ];
    ZONES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code.trim()))
        .map(|(_, m)| *m)
}

fn tz(p: &Params) -> Result<chrono::FixedOffset, ParamError> {
    let minutes = match p.opt_str("TimeZone")? {
        None => 0,
        Some(z) => tz_offset_minutes(&z)
            .ok_or_else(|| ParamError(format!("Invalid TimeZone value: {z}")))?,
    };
    chrono::FixedOffset::east_opt(minutes * 60)
        .ok_or_else(|| ParamError("Invalid TimeZone value".into()))
}

fn list_reply(state: &AppState, items: &[Transaction]) -> Reply {
    let model: Vec<Value> = items.iter().map(|t| t.to_wire(&state.base_url)).collect();
    Reply::json(&json!({"Model": model, "Success": true, "Message": null}))
}

fn list(state: &AppState, term: &TerminalState, p: &Params) -> Result<Reply, ParamError> {
    let date = p.req_str("Date")?;
    let day = chrono::NaiveDate::parse_from_str(date.trim().get(..10).unwrap_or(&date), "%Y-%m-%d")
        .map_err(|_| ParamError("Invalid Date value: expected yyyy-MM-dd".into()))?;
    let tz = tz(p)?;
    let items = state.store.all_txns(|t| {
        t.public_id == term.terminal.public_id
            && chrono::DateTime::from_timestamp_millis(t.created_ms)
                .is_some_and(|d| d.with_timezone(&tz).date_naive() == day)
    });
    Ok(list_reply(state, &items))
}

fn parse_local(s: &str, tz: &chrono::FixedOffset) -> Option<i64> {
    let s = s.trim();
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.naive_utc() + chrono::Duration::seconds(i64::from(tz.local_minus_utc())))
        })?;
    naive
        .and_local_timezone(*tz)
        .single()
        .map(|d| d.timestamp_millis())
}

fn list_v2(state: &AppState, term: &TerminalState, p: &Params) -> Result<Reply, ParamError> {
    let tz = tz(p)?;
    let gte = parse_local(&p.req_str("CreatedDateGte")?, &tz)
        .ok_or_else(|| ParamError("Invalid CreatedDateGte value".into()))?;
    let lte = parse_local(&p.req_str("CreatedDateLte")?, &tz)
        .ok_or_else(|| ParamError("Invalid CreatedDateLte value".into()))?;
    let page = p.req_i64("PageNumber")?;
    if page < 1 {
        return Err(ParamError(
            "Invalid PageNumber value: must be 1 or more".into(),
        ));
    }
    let statuses: Option<Vec<Status>> = match p.get("Statuses") {
        None => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| {
                    v.as_str()
                        .and_then(Status::parse)
                        .ok_or_else(|| ParamError("Invalid Statuses value".into()))
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(Value::String(s)) => Some(
            s.split(',')
                .filter(|x| !x.trim().is_empty())
                .map(|x| {
                    Status::parse(x).ok_or_else(|| ParamError("Invalid Statuses value".into()))
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(ParamError("Invalid Statuses value".into())),
    };
    let items = state.store.all_txns(|t| {
        t.public_id == term.terminal.public_id
            && t.created_ms >= gte
            && t.created_ms <= lte
            && statuses.as_ref().is_none_or(|s| s.contains(&t.status))
    });
    let start = usize::try_from((page - 1).saturating_mul(100)).unwrap_or(usize::MAX);
    let page_items: Vec<Transaction> = items.into_iter().skip(start).take(100).collect();
    Ok(list_reply(state, &page_items))
}

fn tokens_list(state: &AppState, term: &TerminalState, p: &Params) -> Result<Reply, ParamError> {
    let page = p.opt_i64("PageNumber")?.unwrap_or(1);
    if page < 1 {
        return Err(ParamError(
            "Invalid PageNumber value: must be 1 or more".into(),
        ));
    }
    let mut all: Vec<TokenRecord> = Vec::new();
    for s in state.store.tokens.shards() {
        all.extend(
            s.read()
                .values()
                .filter(|t| t.public_id == term.terminal.public_id)
                .cloned(),
        );
    }
    all.sort_by(|a, b| (a.created_ms, &a.token).cmp(&(b.created_ms, &b.token)));
    let start = usize::try_from((page - 1).saturating_mul(100)).unwrap_or(usize::MAX);
    let model: Vec<Value> = all
        .iter()
        .skip(start)
        .take(100)
        .map(TokenRecord::to_wire)
        .collect();
    Ok(Reply::json(
        &json!({"Model": model, "Success": true, "Message": null}),
    ))
}

fn notifications(
    state: &AppState,
    term: &TerminalState,
    path: &str,
    update: Option<&Params>,
) -> Result<Reply, ParamError> {
    let name = path
        .trim_start_matches("/site/notifications/")
        .split('/')
        .next()
        .unwrap_or("");
    let kind = Kind::parse(name).ok_or_else(|| {
        ParamError(format!(
            "Notification type {name} is not supported by this emulator"
        ))
    })?;
    let pid = term.terminal.public_id.clone();
    if let Some(p) = update {
        let enabled = p.opt_bool("IsEnabled")?.unwrap_or(false);
        let address = p.opt_str("Address")?;
        let mut hooks = state.store.webhooks.write();
        hooks.retain(|h| !(h.public_id == pid && h.kind == kind));
        if enabled {
            let url = address.ok_or_else(|| ParamError("Address is required".into()))?;
            hooks.push(crate::webhooks::WebhookConfig {
                public_id: pid,
                kind,
                url,
                retry_delays_ms: None,
                max_attempts: None,
            });
        }
        state.store.mark_dirty();
        return Ok(ok_empty());
    }
    let cfg = state.webhook_for(&pid, kind);
    Ok(Reply::json(&json!({
        "Model": {
            "IsEnabled": cfg.is_some(),
            "Address": cfg.map(|c| c.url),
            "HttpMethod": "POST",
            "Encoding": "UTF8",
            "Format": "CloudPayments"
        },
        "Success": true,
        "Message": null
    })))
}

/// Fallback for unknown paths: a CloudPayments-shaped 404.
pub async fn not_found() -> impl IntoResponse {
    Reply::with_status(
        404,
        &json!({"Success": false, "Message": "Unknown API method"}),
    )
    .into_response()
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

    #[test]
    fn tokens_have_the_documented_shape() {
        let t = new_token();
        assert_eq!(t.len(), 32);
        assert!(t.starts_with("tk_") && t[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
