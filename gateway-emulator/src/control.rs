//! Control and inspection API under `/_emulator/` (not CloudPayments; no authentication, plain
//! JSON): what tests use to look at transactions and the ledger, inject faults, configure
//! webhooks, get a `PaRes` without a browser, and reset.

use crate::faults::{FaultKind, FaultRule, Scope, DEFAULT_HOLD_MS};
use crate::model::{OpType, Status, Transaction, WireToken, WireTransaction};
use crate::money::format_minor;
use crate::ops::three_ds::make_pa_res;
use crate::routing::{endpoint, Routes};
use crate::state::AppState;
use crate::webhooks::{Delivery, Kind, WebhookConfig};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// OpenAPI tag of the control API.
const TAG: &str = "Control";

/// `/_emulator/*` routes.
pub fn routes() -> Routes {
    Routes::default()
        .with(endpoint!(health))
        .with(endpoint!(transactions))
        .with(endpoint!(transaction))
        .with(endpoint!(ledger_all))
        .with(endpoint!(ledger_one))
        .with(endpoint!(tokens))
        .with(endpoint!(add_fault))
        .with(endpoint!(list_faults))
        .with(endpoint!(clear_faults))
        .with(endpoint!(remove_fault))
        .with(endpoint!(reset))
        .with(endpoint!(add_webhook))
        .with(endpoint!(list_webhooks))
        .with(endpoint!(clear_webhooks))
        .with(endpoint!(deliveries))
        .with(endpoint!(clear_deliveries))
        .with(endpoint!(pa_res))
}

/// `{"error": …}`: what was wrong with a control request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ControlError {
    /// The problem, naming the field.
    pub error: String,
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(ControlError { error: msg.into() })).into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, msg)
}

/// `{"status":"ok","faults_applied":N}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
    /// Requests fault rules have applied to since the start (rules cleared since included).
    pub faults_applied: u64,
}

/// Liveness, and how many faults were injected.
#[utoipa::path(get, path = "/_emulator/health", tag = TAG, responses((status = 200, body = Health)))]
async fn health(State(st): State<Arc<AppState>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        faults_applied: st.faults.applied_total(),
    })
}

/// Filters of `GET /_emulator/transactions`; all optional, all must match.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TxnQuery {
    /// Only this `InvoiceId`.
    invoice_id: Option<String>,
    /// Only this terminal.
    public_id: Option<String>,
    /// Only this `AccountId`.
    account_id: Option<String>,
}

/// Every transaction, oldest first, in the API's Transaction shape.
#[utoipa::path(get, path = "/_emulator/transactions", tag = TAG, params(TxnQuery),
    responses((status = 200, body = [WireTransaction])))]
async fn transactions(State(st): State<Arc<AppState>>, Query(q): Query<TxnQuery>) -> Response {
    let keep = |t: &Transaction| {
        q.public_id.as_ref().is_none_or(|p| *p == t.public_id)
            && q.account_id
                .as_ref()
                .is_none_or(|a| t.account_id.as_ref() == Some(a))
    };
    let list = match &q.invoice_id {
        Some(inv) => st
            .store
            .txns_for_invoice(inv)
            .into_iter()
            .filter(|t| keep(t))
            .collect::<Vec<_>>(),
        None => st.store.all_txns(keep),
    };
    Json(
        list.iter()
            .map(|t| t.wire(&st.base_url))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

/// One transaction, any terminal.
#[utoipa::path(get, path = "/_emulator/transactions/{id}", tag = TAG,
    params(("id" = i64, Path, description = "TransactionId")),
    responses((status = 200, body = WireTransaction), (status = 404, body = ControlError)))]
async fn transaction(State(st): State<Arc<AppState>>, Path(id): Path<i64>) -> Response {
    match st.store.get_txn(id) {
        Some(t) => Json(t.wire(&st.base_url)).into_response(),
        None => error(StatusCode::NOT_FOUND, "transaction not found"),
    }
}

/// Money summary of one `InvoiceId`.
#[derive(Debug, Serialize, Default, ToSchema)]
pub struct LedgerEntry {
    /// The invoice.
    pub invoice_id: String,
    /// Payments in `Completed` state (one-stage charges and confirmed authorisations).
    pub completed_count: u64,
    /// Their sum, roubles with two decimals (`"12.34"`).
    pub completed_amount: String,
    /// The same sum in minor units.
    pub completed_amount_minor: i64,
    /// Payments in `Authorized` state (held, not captured).
    pub authorized_count: u64,
    /// Their sum in minor units.
    pub authorized_amount_minor: i64,
    /// Declined payments.
    pub declined_count: u64,
    /// Refunded so far, minor units.
    pub refunded_amount_minor: i64,
    /// Completed minus refunded, minor units.
    pub net_amount_minor: i64,
    /// Every transaction id with this invoice, oldest first.
    pub transaction_ids: Vec<i64>,
}

fn ledger_of(invoice: &str, txns: &[Transaction]) -> LedgerEntry {
    let mut e = LedgerEntry {
        invoice_id: invoice.to_owned(),
        ..Default::default()
    };
    for t in txns {
        e.transaction_ids.push(t.id);
        match (t.op_type, t.status) {
            (OpType::Payment, Status::Completed) => {
                e.completed_count += 1;
                e.completed_amount_minor += t.amount_minor;
            }
            (OpType::Payment, Status::Authorized) => {
                e.authorized_count += 1;
                e.authorized_amount_minor += t.amount_minor;
            }
            (OpType::Payment, Status::Declined) => e.declined_count += 1,
            (OpType::Refund, _) => e.refunded_amount_minor += t.amount_minor,
            _ => {}
        }
    }
    e.completed_amount = format_minor(e.completed_amount_minor);
    e.net_amount_minor = e.completed_amount_minor - e.refunded_amount_minor;
    e
}

/// The ledger entry of one invoice (zero counts if it is unknown): proves "charged exactly once".
#[utoipa::path(get, path = "/_emulator/ledger/{invoice_id}", tag = TAG,
    params(("invoice_id" = String, Path, description = "InvoiceId")),
    responses((status = 200, body = LedgerEntry)))]
async fn ledger_one(State(st): State<Arc<AppState>>, Path(invoice): Path<String>) -> Response {
    Json(ledger_of(&invoice, &st.store.txns_for_invoice(&invoice))).into_response()
}

/// One ledger entry per `InvoiceId`, by invoice.
#[utoipa::path(get, path = "/_emulator/ledger", tag = TAG, responses((status = 200, body = [LedgerEntry])))]
async fn ledger_all(State(st): State<Arc<AppState>>) -> Response {
    let mut by: BTreeMap<String, Vec<Transaction>> = BTreeMap::new();
    for t in st.store.all_txns(|t| t.invoice_id.is_some()) {
        if let Some(inv) = t.invoice_id.clone() {
            by.entry(inv).or_default().push(t);
        }
    }
    Json(by.iter().map(|(k, v)| ledger_of(k, v)).collect::<Vec<_>>()).into_response()
}

/// A saved card of any terminal.
#[derive(Debug, Serialize, ToSchema)]
pub struct TerminalToken<'a> {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub token: WireToken<'a>,
    /// The terminal that issued it.
    #[serde(rename = "PublicId")]
    pub public_id: &'a str,
}

/// Every token, oldest first.
#[utoipa::path(get, path = "/_emulator/tokens", tag = TAG, responses((status = 200, body = [TerminalToken])))]
async fn tokens(State(st): State<Arc<AppState>>) -> Response {
    let mut all = Vec::new();
    for s in st.store.tokens.shards() {
        all.extend(s.read().values().cloned());
    }
    all.sort_by_key(|t| t.created_ms);
    let v: Vec<TerminalToken<'_>> = all
        .iter()
        .map(|t| TerminalToken {
            token: t.wire(),
            public_id: &t.public_id,
        })
        .collect();
    Json(v).into_response()
}

/// Body of `POST /_emulator/faults`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FaultRequest {
    /// `global` (default), `token`, `card`, `invoice_id`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Scope value for `token`.
    pub token: Option<String>,
    /// Scope value for `card` (full number or last four digits).
    pub card: Option<String>,
    /// Scope value for `invoice_id`.
    pub invoice_id: Option<String>,
    /// Scope value, any scope.
    pub value: Option<String>,
    /// `latency_ms`, `http_status`, `rate_limit`, `timeout`, `decline`,
    /// `drop_response_after_commit`, `late_commit`, `pending_in_find`.
    pub kind: String,
    /// For `latency_ms`.
    pub latency_ms: Option<u64>,
    /// For `http_status` (500–599, default 500).
    pub status: Option<u16>,
    /// For `decline` (default 5051).
    pub code: Option<u32>,
    /// For `timeout` and `late_commit`: how long to hold before closing the connection
    /// (default 300000 for `timeout`, 1000 for `late_commit`).
    pub hold_ms: Option<u64>,
    /// For `late_commit`: when the charge is committed, counted from the request (required).
    pub commit_after_ms: Option<u64>,
    /// For `pending_in_find`: how long `find` reports the charge as `Authorized` (required).
    pub pending_ms: Option<u64>,
    /// Apply to a matching request with this probability, 0 < p ≤ 1 (default: always).
    pub probability: Option<f64>,
    /// Apply this many times (default: until cleared).
    pub count: Option<u64>,
    /// Only on this terminal.
    pub public_id: Option<String>,
    /// Only on these paths.
    pub paths: Option<Vec<String>>,
}

/// Turns a request into a rule, or says which field is wrong.
pub fn fault_rule(r: FaultRequest) -> Result<FaultRule, String> {
    let scope_name = r.scope.as_deref().unwrap_or("global").to_ascii_lowercase();
    let val = |specific: Option<String>, name: &str| {
        specific
            .or(r.value.clone())
            .filter(|v| !v.is_empty())
            .ok_or(format!("scope {name} needs \"{name}\" (or \"value\")"))
    };
    let scope = match scope_name.as_str() {
        "global" => Scope::Global,
        "token" => Scope::Token(val(r.token.clone(), "token")?),
        "card" => Scope::Card(val(r.card.clone(), "card")?),
        "invoice_id" | "invoice" | "invoiceid" => {
            Scope::InvoiceId(val(r.invoice_id.clone(), "invoice_id")?)
        }
        other => {
            return Err(format!(
                "unknown scope {other:?}: use global, token, card or invoice_id"
            ))
        }
    };
    let kind = match r.kind.to_ascii_lowercase().as_str() {
        "latency_ms" | "latency" => {
            FaultKind::LatencyMs(r.latency_ms.ok_or("latency_ms needs \"latency_ms\"")?)
        }
        "http_status" => {
            let s = r.status.unwrap_or(500);
            if !(500..=599).contains(&s) {
                return Err("http_status needs a 5xx \"status\"".into());
            }
            FaultKind::HttpStatus(s)
        }
        "rate_limit" => FaultKind::RateLimit,
        "timeout" => FaultKind::Timeout(r.hold_ms.unwrap_or(DEFAULT_HOLD_MS)),
        "decline" => {
            let c = r.code.unwrap_or(5051);
            if c == 0 {
                return Err("decline needs a non-zero \"code\"".into());
            }
            FaultKind::Decline(c)
        }
        "drop_response_after_commit" => FaultKind::DropResponseAfterCommit,
        "late_commit" => {
            let commit_after_ms = r
                .commit_after_ms
                .ok_or("late_commit needs \"commit_after_ms\"")?;
            let hold_ms = r.hold_ms.unwrap_or(1000);
            if hold_ms > commit_after_ms {
                return Err("late_commit: \"hold_ms\" must not exceed \"commit_after_ms\"".into());
            }
            FaultKind::LateCommit {
                hold_ms,
                commit_after_ms,
            }
        }
        "pending_in_find" => {
            FaultKind::PendingInFindMs(r.pending_ms.ok_or("pending_in_find needs \"pending_ms\"")?)
        }
        other => return Err(format!("unknown kind {other:?}")),
    };
    if r.count == Some(0) {
        return Err("count must be at least 1".into());
    }
    if r.probability.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
        return Err("probability must be above 0 and at most 1".into());
    }
    Ok(FaultRule {
        id: 0,
        scope,
        kind,
        remaining: r.count,
        public_id: r.public_id,
        paths: r.paths,
        probability: r.probability,
        applied: 0,
    })
}

/// `{"id": N}` of a new fault rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct FaultAdded {
    /// For `DELETE /_emulator/faults/{id}`.
    pub id: u64,
}

/// Adds a fault rule; `count` limits how often it applies.
#[utoipa::path(post, path = "/_emulator/faults", tag = TAG, request_body = FaultRequest,
    responses((status = 201, body = FaultAdded), (status = 400, body = ControlError)))]
async fn add_fault(State(st): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let req: FaultRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("invalid fault rule: {e}")),
    };
    match fault_rule(req) {
        Ok(rule) => {
            let id = st.faults.add(rule);
            (StatusCode::CREATED, Json(FaultAdded { id })).into_response()
        }
        Err(e) => bad(e),
    }
}

/// The fault rules, with what is left of their counts.
#[utoipa::path(get, path = "/_emulator/faults", tag = TAG, responses((status = 200, body = [FaultRule])))]
async fn list_faults(State(st): State<Arc<AppState>>) -> Response {
    Json(st.faults.list()).into_response()
}

/// Removes every fault rule.
#[utoipa::path(delete, path = "/_emulator/faults", tag = TAG, responses((status = 204, description = "Cleared")))]
async fn clear_faults(State(st): State<Arc<AppState>>) -> Response {
    st.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// Removes one fault rule.
#[utoipa::path(delete, path = "/_emulator/faults/{id}", tag = TAG,
    params(("id" = u64, Path, description = "From `POST /_emulator/faults`")),
    responses((status = 204, description = "Removed"), (status = 404, body = ControlError)))]
async fn remove_fault(State(st): State<Arc<AppState>>, Path(id): Path<u64>) -> Response {
    if st.faults.remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such fault")
    }
}

/// Forgets everything.
///
/// Transactions, tokens, idempotency records, used cryptograms, faults, webhooks and deliveries.
#[utoipa::path(post, path = "/_emulator/reset", tag = TAG, responses((status = 204, description = "Reset")))]
async fn reset(State(st): State<Arc<AppState>>) -> Response {
    st.store.reset();
    st.faults.clear();
    st.webhooks.deliveries.lock().clear();
    StatusCode::NO_CONTENT.into_response()
}

/// Body of `POST /_emulator/webhooks`: replaces the target of (terminal, kind).
#[derive(Deserialize, ToSchema)]
struct WebhookRequest {
    /// The terminal; may be left out when only one is configured.
    public_id: Option<String>,
    /// `Check`, `Pay`, `Fail`, `Confirm`, `Refund` or `Cancel` (any casing).
    kind: String,
    /// `http://` or `https://` receiver.
    url: String,
    /// Delays between attempts; the last repeats (default 1 s, 2 s, 5 s, 10 s, 30 s).
    retry_delays_ms: Option<Vec<u64>>,
    /// Attempts at most (default 100).
    max_attempts: Option<u32>,
}

/// Sets a webhook target.
#[utoipa::path(post, path = "/_emulator/webhooks", tag = TAG, request_body = WebhookRequest,
    responses((status = 201, body = WebhookConfig), (status = 400, body = ControlError)))]
async fn add_webhook(State(st): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let req: WebhookRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("invalid webhook config: {e}")),
    };
    let Some(kind) = Kind::parse(&req.kind) else {
        return bad("kind must be one of Check, Pay, Fail, Confirm, Refund, Cancel");
    };
    let public_id = match req.public_id {
        Some(p) if st.terminals.contains_key(&p) => p,
        Some(p) => return bad(format!("unknown terminal {p}")),
        None if st.terminals.len() == 1 => st.terminals.keys().next().cloned().unwrap_or_default(),
        None => return bad("public_id is required when several terminals are configured"),
    };
    if !(req.url.starts_with("http://") || req.url.starts_with("https://")) {
        return bad("url must be http:// or https://");
    }
    let cfg = WebhookConfig {
        public_id,
        kind,
        url: req.url,
        retry_delays_ms: req.retry_delays_ms,
        max_attempts: req.max_attempts,
    };
    {
        let mut hooks = st.store.webhooks.write();
        hooks.retain(|h| !(h.public_id == cfg.public_id && h.kind == cfg.kind));
        hooks.push(cfg.clone());
    }
    st.store.mark_dirty();
    (StatusCode::CREATED, Json(cfg)).into_response()
}

/// The webhook targets.
#[utoipa::path(get, path = "/_emulator/webhooks", tag = TAG, responses((status = 200, body = [WebhookConfig])))]
async fn list_webhooks(State(st): State<Arc<AppState>>) -> Response {
    Json(st.store.webhooks.read().clone()).into_response()
}

/// Removes every webhook target.
#[utoipa::path(delete, path = "/_emulator/webhooks", tag = TAG, responses((status = 204, description = "Cleared")))]
async fn clear_webhooks(State(st): State<Arc<AppState>>) -> Response {
    st.store.webhooks.write().clear();
    st.store.mark_dirty();
    StatusCode::NO_CONTENT.into_response()
}

/// Every delivery attempt, oldest first (at most the last 10,000).
#[utoipa::path(get, path = "/_emulator/webhooks/deliveries", tag = TAG, responses((status = 200, body = [Delivery])))]
async fn deliveries(State(st): State<Arc<AppState>>) -> Response {
    Json(st.webhooks.deliveries.lock().clone()).into_response()
}

/// Forgets the delivery attempts.
#[utoipa::path(delete, path = "/_emulator/webhooks/deliveries", tag = TAG, responses((status = 204, description = "Cleared")))]
async fn clear_deliveries(State(st): State<Arc<AppState>>) -> Response {
    st.webhooks.deliveries.lock().clear();
    StatusCode::NO_CONTENT.into_response()
}

/// Query of `GET /_emulator/3ds/{id}/pares`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PaResQuery {
    /// `confirm` (default) or `fail`.
    result: Option<String>,
}

/// A valid `PaRes` for a 3-D Secure transaction, as the ACS page would post it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaResAnswer {
    /// The transaction.
    #[serde(rename = "TransactionId")]
    pub transaction_id: i64,
    /// `MD` as the ACS posts it back.
    #[serde(rename = "MD")]
    pub md: String,
    /// For post3ds.
    #[serde(rename = "PaRes")]
    pub pa_res: String,
}

/// A `PaRes` without a browser.
#[utoipa::path(get, path = "/_emulator/3ds/{id}/pares", tag = TAG,
    params(("id" = i64, Path, description = "TransactionId of the 3-D Secure answer"), PaResQuery),
    responses((status = 200, body = PaResAnswer), (status = 404, body = ControlError)))]
async fn pa_res(
    State(st): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Query(q): Query<PaResQuery>,
) -> Response {
    let Some(t) = st.store.get_txn(id) else {
        return error(StatusCode::NOT_FOUND, "transaction not found");
    };
    let Some(term) = st.terminals.get(&t.public_id) else {
        return error(StatusCode::NOT_FOUND, "terminal not configured");
    };
    let confirm = !matches!(q.result.as_deref(), Some("fail" | "N" | "n"));
    Json(PaResAnswer {
        transaction_id: id,
        md: id.to_string(),
        pa_res: make_pa_res(&term.terminal.api_secret, id, confirm),
    })
    .into_response()
}
