//! Operations that change nothing: `/test`, reading one transaction (`/payments/get`, by
//! `InvoiceId` with `/payments/find` and `/v2/payments/find`) and listing (`/payments/list`,
//! `/v2/payments/list`, `/payments/tokens/list`). Every read sees only the caller's terminal,
//! and an abandoned 3-DS payment reads as declined (5206) even before the sweep stores that.

use super::{own_txn, transaction_reply, TransactionAnswer, TransactionRef, TAG};
use crate::model::{OpType, Status, TokenRecord, Transaction, WireToken, WireTransaction};
use crate::params::{request, ParamError, Params};
use crate::pipeline::Call;
use crate::pipeline::FaultPoint::Pipeline;
use crate::reply::{Envelope, Notice, Reply};
use crate::routing::{operation, Routes};
use crate::store::now_ms;
use serde_json::Value;
use utoipa::ToSchema;

/// Ping, get, find and the lists.
pub fn routes() -> Routes {
    Routes::default()
        .with(operation!(test, Pipeline))
        .with(operation!(get, Pipeline))
        .with(operation!(find, Pipeline))
        .with(operation!(find_v2, Pipeline))
        .with(operation!(list, Pipeline))
        .with(operation!(list_v2, Pipeline))
        .with(operation!(tokens_list, Pipeline))
}

/// Answers `{"Success":true,"Message":"<guid>"}`.
#[utoipa::path(post, path = "/test", tag = TAG,
    responses((status = 200, description = "`Success:true` with a fresh GUID as `Message`", body = Notice)))]
pub async fn test(_call: Call) -> Reply {
    Reply::json(&Notice {
        success: true,
        message: Some(uuid::Uuid::new_v4().to_string()),
    })
}

/// One transaction of this terminal.
///
/// A state other than `Authorized`/`Completed` comes back as `Success:false` with the Model.
#[utoipa::path(post, path = "/payments/get", tag = TAG, request_body = TransactionRef,
    responses((status = 200, description = "The transaction, or `Transaction not found`", body = TransactionAnswer)))]
pub async fn get(call: Call) -> Result<Reply, ParamError> {
    let req = TransactionRef::parse(&call.params)?;
    let t = own_txn(&call, req.transaction_id)?;
    Ok(transaction_reply(&call.state, &shown(t)))
}

/// A payment under the `pending_in_find` fault is shown as `Authorized` until its time is up.
fn shown(mut t: crate::model::Transaction) -> crate::model::Transaction {
    if t.pending_until_ms.is_some_and(|until| now_ms() < until) {
        t.status = crate::model::Status::Authorized;
    }
    t
}

request! {
    /// Body of `/payments/find` and `/v2/payments/find`.
    pub struct Find {
        /// The merchant's order id.
        invoice_id: String = req_str("InvoiceId"),
    }
}

/// The latest payment with an `InvoiceId`; `{"Success":false,"Message":"Not found"}` when none.
#[utoipa::path(post, path = "/payments/find", tag = TAG, request_body = Find,
    responses((status = 200, description = "The latest payment, or `Not found`", body = TransactionAnswer)))]
pub async fn find(call: Call) -> Result<Reply, ParamError> {
    latest(&call, false)
}

/// As `/payments/find`, but refunds count too.
#[utoipa::path(post, path = "/v2/payments/find", tag = TAG, request_body = Find,
    responses((status = 200, description = "The latest payment or refund, or `Not found`", body = TransactionAnswer)))]
pub async fn find_v2(call: Call) -> Result<Reply, ParamError> {
    latest(&call, true)
}

fn latest(call: &Call, with_refunds: bool) -> Result<Reply, ParamError> {
    let req = Find::parse(&call.params)?;
    let latest = call
        .state
        .store
        .txns_for_invoice(&req.invoice_id)
        .into_iter()
        .filter(|t| {
            t.public_id == call.term.terminal.public_id
                && (with_refunds || t.op_type == OpType::Payment)
        })
        .max_by_key(|t| (t.created_ms, t.id));
    match latest {
        Some(mut t) => {
            t.expire_if_abandoned(now_ms());
            Ok(transaction_reply(&call.state, &shown(t)))
        }
        None => Ok(Reply::error("Not found")),
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

/// `{Model:[Transaction…], Success:true}`.
fn list_reply(call: &Call, items: &[Transaction]) -> Reply {
    let model: Vec<WireTransaction<'_>> =
        items.iter().map(|t| t.wire(&call.state.base_url)).collect();
    Reply::json(&Envelope::ok(model))
}

/// Where page `page` (from 1, 100 items each) starts.
fn page_start(page: i64) -> Result<usize, ParamError> {
    if page < 1 {
        return Err(ParamError(
            "Invalid PageNumber value: must be 1 or more".into(),
        ));
    }
    Ok(usize::try_from((page - 1).saturating_mul(100)).unwrap_or(usize::MAX))
}

/// Body of `/payments/list`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DayList {
    /// `yyyy-MM-dd`, the day in `TimeZone`.
    #[schema(value_type = String, example = "2024-01-31")]
    pub date: chrono::NaiveDate,
    /// `UTC` (default), `MSK`, `CET`, … (CloudPayments codes).
    #[schema(value_type = Option<String>, example = "MSK")]
    pub time_zone: chrono::FixedOffset,
}

/// The transactions created on one day, oldest first.
#[utoipa::path(post, path = "/payments/list", tag = TAG, request_body = DayList,
    responses((status = 200, description = "`Model`: the transactions", body = Envelope<Vec<WireTransaction>>)))]
pub async fn list(call: Call) -> Result<Reply, ParamError> {
    let p = &call.params;
    let date = p.req_str("Date")?;
    let req = DayList {
        date: chrono::NaiveDate::parse_from_str(date.trim().get(..10).unwrap_or(&date), "%Y-%m-%d")
            .map_err(|_| ParamError("Invalid Date value: expected yyyy-MM-dd".into()))?,
        time_zone: tz(p)?,
    };
    let items = call.state.store.all_txns(|t| {
        t.public_id == call.term.terminal.public_id
            && chrono::DateTime::from_timestamp_millis(t.created_ms)
                .is_some_and(|d| d.with_timezone(&req.time_zone).date_naive() == req.date)
    });
    Ok(list_reply(&call, &items))
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

/// Body of `/v2/payments/list`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct PeriodList {
    /// From (inclusive), local to `TimeZone`: `yyyy-MM-ddTHH:mm:ss`, `yyyy-MM-dd HH:mm:ss` or
    /// `yyyy-MM-dd`.
    #[schema(value_type = String, example = "2024-01-01T00:00:00")]
    pub created_date_gte: i64,
    /// To (inclusive), same formats.
    #[schema(value_type = String, example = "2024-01-31T23:59:59")]
    pub created_date_lte: i64,
    /// From 1; 100 transactions a page, oldest first.
    #[schema(minimum = 1)]
    pub page_number: i64,
    /// As in `/payments/list`.
    #[schema(value_type = Option<String>)]
    pub time_zone: chrono::FixedOffset,
    /// Only these states: an array of names or a comma-separated string.
    #[schema(value_type = Option<Vec<String>>, example = json!(["Completed", "Declined"]))]
    pub statuses: Option<Vec<Status>>,
}

/// The transactions created in a period, 100 a page, oldest first.
#[utoipa::path(post, path = "/v2/payments/list", tag = TAG, request_body = PeriodList,
    responses((status = 200, description = "`Model`: one page of transactions", body = Envelope<Vec<WireTransaction>>)))]
pub async fn list_v2(call: Call) -> Result<Reply, ParamError> {
    let p = &call.params;
    let time_zone = tz(p)?;
    let local = |key: &str| -> Result<i64, ParamError> {
        parse_local(&p.req_str(key)?, &time_zone)
            .ok_or_else(|| ParamError(format!("Invalid {key} value")))
    };
    let created_date_gte = local("CreatedDateGte")?;
    let created_date_lte = local("CreatedDateLte")?;
    let page_number = p.req_i64("PageNumber")?;
    let start = page_start(page_number)?;
    let req = PeriodList {
        created_date_gte,
        created_date_lte,
        page_number,
        time_zone,
        statuses: statuses(p)?,
    };
    let items = call.state.store.all_txns(|t| {
        t.public_id == call.term.terminal.public_id
            && t.created_ms >= req.created_date_gte
            && t.created_ms <= req.created_date_lte
            && req.statuses.as_ref().is_none_or(|s| s.contains(&t.status))
    });
    let page: Vec<Transaction> = items.into_iter().skip(start).take(100).collect();
    Ok(list_reply(&call, &page))
}

/// `Statuses`: an array of names, or names separated by commas.
fn statuses(p: &Params) -> Result<Option<Vec<Status>>, ParamError> {
    let bad = || ParamError("Invalid Statuses value".into());
    let names: Vec<Option<&str>> = match p.get("Statuses") {
        None => return Ok(None),
        Some(Value::Array(a)) => a.iter().map(Value::as_str).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .filter(|x| !x.trim().is_empty())
            .map(Some)
            .collect(),
        Some(_) => return Err(bad()),
    };
    names
        .into_iter()
        .map(|n| n.and_then(Status::parse).ok_or_else(bad))
        .collect::<Result<_, _>>()
        .map(Some)
}

request! {
    /// Body of `/payments/tokens/list`.
    pub struct TokenList {
        /// From 1 (default); 100 tokens a page, oldest first.
        #[schema(minimum = 1)]
        page_number: Option<i64> = opt_i64("PageNumber"),
    }
}

/// The cards saved on this terminal.
#[utoipa::path(post, path = "/payments/tokens/list", tag = TAG, request_body = TokenList,
    responses((status = 200, description = "`Model`: one page of tokens", body = Envelope<Vec<WireToken>>)))]
pub async fn tokens_list(call: Call) -> Result<Reply, ParamError> {
    let req = TokenList::parse(&call.params)?;
    let start = page_start(req.page_number.unwrap_or(1))?;
    let mut all: Vec<TokenRecord> = Vec::new();
    for s in call.state.store.tokens.shards() {
        all.extend(
            s.read()
                .values()
                .filter(|t| t.public_id == call.term.terminal.public_id)
                .cloned(),
        );
    }
    all.sort_by(|a, b| (a.created_ms, &a.token).cmp(&(b.created_ms, &b.token)));
    let model: Vec<WireToken<'_>> = all
        .iter()
        .skip(start)
        .take(100)
        .map(TokenRecord::wire)
        .collect();
    Ok(Reply::json(&Envelope::ok(model)))
}
