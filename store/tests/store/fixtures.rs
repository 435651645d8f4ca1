//! What every test starts from: a fresh store with one tariff, and the requests the workflow
//! sends for a subscription's invoices and the gateway's answers about them.

use billing_domain::messages::{
    GatewayTransaction, OpenInvoice, RecordTransaction, TariffSnapshot,
};
use billing_domain::{
    AccountId, BillingPeriod, CardToken, Currency, GatewayTransactionId, InvoiceId, Money,
    PeriodUnit, RequestId, SubscriptionId, TariffCode, TransactionUuid,
};
use billing_store::{Store, StoreError, SubscriptionRow};
use chrono::{DateTime, Utc};

/// The card [`pay`] saves.
pub const TOKEN: &str = "tok-a";
pub const CARD_MASK: &str = "4242 42** **** 4242";

/// Every table of the schema, for [`counts`].
const TABLES: [&str; 8] = [
    "tariffs",
    "accounts",
    "payment_methods",
    "subscriptions",
    "invoices",
    "transactions",
    "start_requests",
    "three_ds_challenges",
];

/// A fresh migrated database holding [`tariff`].
pub async fn fresh_store() -> Store {
    let (_url, store) = billing_test_support::fresh_db()
        .await
        .expect("fresh test database (is DATABASE_URL set?)");
    store
        .upsert_tariff(&tariff(), true)
        .await
        .expect("upsert tariff");
    store
}

/// `basic-monthly`, 299.00 RUB a month.
pub fn tariff() -> TariffSnapshot {
    tariff_priced("basic-monthly", 29_900)
}

/// A monthly RUB tariff `code` costing `minor`.
pub fn tariff_priced(code: &str, minor: i64) -> TariffSnapshot {
    TariffSnapshot {
        code: TariffCode::parse(code).expect("tariff code"),
        name: format!("{code}, {minor} minor RUB a month"),
        price: rub(minor),
        period: BillingPeriod {
            unit: PeriodUnit::Month,
            count: 1,
        },
    }
}

pub fn rub(minor: i64) -> Money {
    Money::new(minor, Currency::Rub).expect("money")
}

fn anchor() -> DateTime<Utc> {
    DateTime::from_timestamp(1_798_761_600, 0).expect("anchor") // 2027-01-01T00:00:00Z
}

/// The first invoice of a new account's subscription of [`tariff`], as the workflow opens it.
pub fn first_invoice() -> OpenInvoice {
    let account = AccountId(uuid::Uuid::new_v4());
    let request = RequestId::parse("start-1").expect("request id");
    let subscription = SubscriptionId::derive(account, &request);
    let tariff = tariff();
    OpenInvoice {
        subscription_id: subscription,
        account_id: account,
        email: format!("{account}@example.test"),
        invoice_id: InvoiceId::derive(subscription, anchor()),
        period_start: anchor(),
        period_end: tariff.period.nth_end(anchor(), 0).expect("period end"),
        tariff,
    }
}

/// The invoice of period `n` (0-based) of `first`'s subscription.
pub fn period_invoice(first: &OpenInvoice, n: u32) -> OpenInvoice {
    let period = first.tariff.period;
    let start = period
        .nth_start(first.period_start, n)
        .expect("period start");
    OpenInvoice {
        invoice_id: InvoiceId::derive(first.subscription_id, start),
        period_start: start,
        period_end: period.nth_end(first.period_start, n).expect("period end"),
        ..first.clone()
    }
}

/// Opens [`first_invoice`] in `store` and returns the request.
pub async fn opened(store: &Store) -> OpenInvoice {
    let req = first_invoice();
    store.open_invoice(&req).await.expect("open invoice");
    req
}

/// Opens the first invoices of two new accounts.
pub async fn opened_two(store: &Store) -> (OpenInvoice, OpenInvoice) {
    (opened(store).await, opened(store).await)
}

/// Records gateway transaction `gateway_id` as the approved payment of `inv` with card
/// [`TOKEN`].
pub async fn pay(store: &Store, inv: &OpenInvoice, gateway_id: i64) -> TransactionUuid {
    let payment = completed(gateway_id, inv.tariff.price, TOKEN, CARD_MASK);
    store
        .record_transaction(&record(inv, payment))
        .await
        .expect("record payment")
}

/// A new account's first invoice, opened and paid (gateway id `gateway_id`), and the request
/// of its next period's invoice (not opened yet).
pub async fn paid_first_and_next(store: &Store, gateway_id: i64) -> (OpenInvoice, OpenInvoice) {
    let first = opened(store).await;
    pay(store, &first, gateway_id).await;
    let next = period_invoice(&first, 1);
    (first, next)
}

/// An approved payment of `amount` that saved card `token` (mask `card_mask`).
pub fn completed(
    gateway_id: i64,
    amount: Money,
    token: &str,
    card_mask: &str,
) -> GatewayTransaction {
    GatewayTransaction {
        gateway_transaction_id: GatewayTransactionId(gateway_id),
        status: "Completed".into(),
        reason_code: 0,
        reason: "Approved".into(),
        amount,
        token: Some(CardToken::new(token)),
        card_mask: Some(card_mask.into()),
        card_exp: Some("12/30".into()),
        card_type: Some("Visa".into()),
    }
}

/// A declined payment of `amount` (insufficient funds).
pub fn declined(gateway_id: i64, amount: Money) -> GatewayTransaction {
    GatewayTransaction {
        gateway_transaction_id: GatewayTransactionId(gateway_id),
        status: "Declined".into(),
        reason_code: 5051,
        reason: "InsufficientFunds".into(),
        amount,
        token: None,
        card_mask: Some("4111 11** **** 1111".into()),
        card_exp: None,
        card_type: None,
    }
}

/// The workflow's request to record `transaction` as the payment of `invoice`.
pub fn record(invoice: &OpenInvoice, transaction: GatewayTransaction) -> RecordTransaction {
    RecordTransaction {
        subscription_id: invoice.subscription_id,
        account_id: invoice.account_id,
        invoice_id: invoice.invoice_id,
        transaction,
        period_end: invoice.period_end,
    }
}

/// Row count of one table.
pub async fn rows(store: &Store, table: &str) -> i64 {
    assert!(TABLES.contains(&table), "unknown table {table}");
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .expect("count rows")
}

/// Row counts of every table: equal before and after a write that must change nothing.
pub async fn counts(store: &Store) -> Vec<(&'static str, i64)> {
    let mut out = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        out.push((table, rows(store, table).await));
    }
    out
}

/// `result` is the domain conflict on `constraint`, which activities do not retry.
pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, constraint: &str) {
    let err = result.expect_err(&format!("expected a conflict on {constraint}"));
    assert!(!err.is_transient(), "{err:?} would be retried");
    match err {
        StoreError::Conflict { constraint: got } => assert_eq!(got, constraint),
        other => panic!("expected a conflict on {constraint}, got {other:?}"),
    }
}

/// `paid_at` of an invoice (the store's `InvoiceRow` does not carry it).
pub async fn paid_at(store: &Store, invoice: InvoiceId) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("SELECT paid_at FROM invoices WHERE id = $1")
        .bind(invoice.0)
        .fetch_one(store.pool())
        .await
        .expect("paid_at")
}

/// Status of an invoice (`open`, `paid`, `void`, `uncollectible`).
pub async fn invoice_status(store: &Store, invoice: InvoiceId) -> String {
    store.invoice(invoice).await.expect("invoice").status
}

/// The subscription row of `inv`.
pub async fn subscription_row(store: &Store, inv: &OpenInvoice) -> SubscriptionRow {
    store
        .subscription(inv.subscription_id)
        .await
        .expect("subscription")
}
