//! Control and inspection API under `/_emulator/` (not CloudPayments; no authentication).

use crate::faults::{FaultKind, FaultRule, Scope};
use crate::model::{OpType, Status, Transaction};
use crate::money::format_minor;
use crate::server::AppState;
use crate::webhooks::{Kind, WebhookConfig};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `/_emulator/*` routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/_emulator/health",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route("/_emulator/transactions", get(transactions))
        .route("/_emulator/transactions/{id}", get(transaction))
        .route("/_emulator/ledger", get(ledger_all))
        .route("/_emulator/ledger/{invoice_id}", get(ledger_one))
        .route("/_emulator/tokens", get(tokens))
        .route(
            "/_emulator/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/_emulator/faults/{id}", delete(remove_fault))
        .route("/_emulator/reset", post(reset))
        .route(
            "/_emulator/webhooks",
            post(add_webhook).get(list_webhooks).delete(clear_webhooks),
        )
        .route(
            "/_emulator/webhooks/deliveries",
            get(deliveries).delete(clear_deliveries),
        )
        .route("/_emulator/3ds/{id}/pares", get(pa_res))
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

#[derive(Deserialize)]
struct TxnQuery {
    invoice_id: Option<String>,
    public_id: Option<String>,
    account_id: Option<String>,
}

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
            .map(|t| t.to_wire(&st.base_url))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

async fn transaction(State(st): State<Arc<AppState>>, Path(id): Path<i64>) -> Response {
    match st.store.get_txn(id) {
        Some(t) => Json(t.to_wire(&st.base_url)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "transaction not found"})),
        )
            .into_response(),
    }
}

/// Money summary of one `InvoiceId`.
#[derive(Debug, Serialize, Default)]
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

async fn ledger_one(State(st): State<Arc<AppState>>, Path(invoice): Path<String>) -> Response {
    Json(ledger_of(&invoice, &st.store.txns_for_invoice(&invoice))).into_response()
}

async fn ledger_all(State(st): State<Arc<AppState>>) -> Response {
    let mut by: BTreeMap<String, Vec<Transaction>> = BTreeMap::new();
    for t in st.store.all_txns(|t| t.invoice_id.is_some()) {
        if let Some(inv) = t.invoice_id.clone() {
            by.entry(inv).or_default().push(t);
        }
    }
    Json(by.iter().map(|(k, v)| ledger_of(k, v)).collect::<Vec<_>>()).into_response()
}

async fn tokens(State(st): State<Arc<AppState>>) -> Response {
    let mut all = Vec::new();
    for s in st.store.tokens.shards() {
        all.extend(s.read().values().cloned());
    }
    all.sort_by_key(|t| t.created_ms);
    let v: Vec<Value> = all
        .iter()
        .map(|t| {
            let mut w = t.to_wire();
            if let Some(o) = w.as_object_mut() {
                o.insert("PublicId".into(), json!(t.public_id));
            }
            w
        })
        .collect();
    Json(v).into_response()
}

/// Body of `POST /_emulator/faults`.
#[derive(Debug, Deserialize)]
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
    /// `latency_ms`, `http_status`, `rate_limit`, `timeout`, `decline`, `drop_response_after_commit`.
    pub kind: String,
    /// For `latency_ms`.
    pub latency_ms: Option<u64>,
    /// For `http_status` (500–599, default 500).
    pub status: Option<u16>,
    /// For `decline` (default 5051).
    pub code: Option<u32>,
    /// For `timeout`: how long to hold before closing the connection (default 300000).
    pub hold_ms: Option<u64>,
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
        "timeout" => FaultKind::Timeout(r.hold_ms.unwrap_or(crate::api::DEFAULT_HOLD_MS)),
        "decline" => {
            let c = r.code.unwrap_or(5051);
            if c == 0 {
                return Err("decline needs a non-zero \"code\"".into());
            }
            FaultKind::Decline(c)
        }
        "drop_response_after_commit" => FaultKind::DropResponseAfterCommit,
        other => return Err(format!("unknown kind {other:?}")),
    };
    if r.count == Some(0) {
        return Err("count must be at least 1".into());
    }
    Ok(FaultRule {
        id: 0,
        scope,
        kind,
        remaining: r.count,
        public_id: r.public_id,
        paths: r.paths,
    })
}

async fn add_fault(State(st): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let req: FaultRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("invalid fault rule: {e}")),
    };
    match fault_rule(req) {
        Ok(rule) => {
            let id = st.faults.add(rule);
            (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
        }
        Err(e) => bad(e),
    }
}

async fn list_faults(State(st): State<Arc<AppState>>) -> Response {
    Json(st.faults.list()).into_response()
}

async fn clear_faults(State(st): State<Arc<AppState>>) -> Response {
    st.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_fault(State(st): State<Arc<AppState>>, Path(id): Path<u64>) -> Response {
    if st.faults.remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such fault"})),
        )
            .into_response()
    }
}

async fn reset(State(st): State<Arc<AppState>>) -> Response {
    st.store.reset();
    st.faults.clear();
    st.webhooks.deliveries.lock().clear();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct WebhookRequest {
    public_id: Option<String>,
    kind: String,
    url: String,
    retry_delays_ms: Option<Vec<u64>>,
    max_attempts: Option<u32>,
}

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

async fn list_webhooks(State(st): State<Arc<AppState>>) -> Response {
    Json(st.store.webhooks.read().clone()).into_response()
}

async fn clear_webhooks(State(st): State<Arc<AppState>>) -> Response {
    st.store.webhooks.write().clear();
    st.store.mark_dirty();
    StatusCode::NO_CONTENT.into_response()
}

async fn deliveries(State(st): State<Arc<AppState>>) -> Response {
    Json(st.webhooks.deliveries.lock().clone()).into_response()
}

async fn clear_deliveries(State(st): State<Arc<AppState>>) -> Response {
    st.webhooks.deliveries.lock().clear();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct PaResQuery {
    result: Option<String>,
}

async fn pa_res(
    State(st): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Query(q): Query<PaResQuery>,
) -> Response {
    let Some(t) = st.store.get_txn(id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "transaction not found"})),
        )
            .into_response();
    };
    let Some(term) = st.terminals.get(&t.public_id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "terminal not configured"})),
        )
            .into_response();
    };
    let confirm = !matches!(q.result.as_deref(), Some("fail" | "N" | "n"));
    Json(json!({"TransactionId": id, "MD": id.to_string(), "PaRes": crate::api::make_pa_res(&term.terminal.api_secret, id, confirm)})).into_response()
}
