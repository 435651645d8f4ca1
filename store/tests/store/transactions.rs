//! `record_transaction`: a gateway transaction once, and with a completed one the saved card,
//! the paid invoice and the active subscription in the same SQL transaction.
//! Keys: `transactions_gateway_transaction_id_key`, `payment_methods_gateway_token_key`.

use crate::fixtures::*;
use billing_domain::messages::{OpenInvoice, RecordTransaction};
use billing_domain::TransactionUuid;
use billing_store::TransactionRow;

#[tokio::test]
async fn record_transaction_repeat_records_once_and_pays_once() {
    let store = fresh_store().await;
    let inv = opened(&store).await;
    let id = pay(&store, &inv, 201).await;
    let first_paid_at = paid_at(&store, inv.invoice_id).await;
    let before = counts(&store).await;

    let again = pay(&store, &inv, 201).await;

    assert_eq!(again, id);
    assert_eq!(id, TransactionUuid::from_gateway(201));
    assert_eq!(counts(&store).await, before);
    assert!(first_paid_at.is_some());
    assert_eq!(paid_at(&store, inv.invoice_id).await, first_paid_at);
    assert_eq!(
        store
            .transactions_for_invoice(inv.invoice_id)
            .await
            .expect("transactions"),
        [TransactionRow {
            id,
            gateway_transaction_id: 201,
            invoice_id: inv.invoice_id,
            status: "Completed".into(),
            reason_code: 0,
            amount_minor: inv.tariff.price.minor,
        }]
    );
    assert_eq!(invoice_status(&store, inv.invoice_id).await, "paid");
    let sub = subscription_row(&store, &inv).await;
    assert_eq!(sub.status, "active");
    assert_eq!(sub.current_period_end, Some(inv.period_end));
    assert_eq!(sub.card_mask.as_deref(), Some(CARD_MASK));
    assert_eq!(rows(&store, "payment_methods").await, 1);
}

#[tokio::test]
async fn record_transaction_decline_repeat_records_once_and_pays_nothing() {
    let store = fresh_store().await;
    let inv = opened(&store).await;
    let req = record(&inv, declined(202, inv.tariff.price));
    store.record_transaction(&req).await.expect("record");
    let before = counts(&store).await;

    store.record_transaction(&req).await.expect("repeat");

    assert_eq!(counts(&store).await, before);
    let recorded = store
        .transactions_for_invoice(inv.invoice_id)
        .await
        .expect("transactions");
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].status.as_str(), recorded[0].reason_code),
        ("Declined", 5051)
    );
    assert_eq!(invoice_status(&store, inv.invoice_id).await, "open");
    assert_eq!(paid_at(&store, inv.invoice_id).await, None);
    let sub = subscription_row(&store, &inv).await;
    assert_eq!((sub.status.as_str(), sub.card_mask), ("pending", None));
    assert_eq!(rows(&store, "payment_methods").await, 0);
}

#[tokio::test]
async fn record_transaction_renewal_with_the_saved_token_keeps_one_payment_method() {
    let store = fresh_store().await;
    let (first, next) = paid_first_and_next(&store, 203).await;
    store.open_invoice(&next).await.expect("open renewal");

    pay(&store, &next, 204).await;

    assert_eq!(rows(&store, "payment_methods").await, 1);
    assert_eq!(rows(&store, "transactions").await, 2);
    for inv in [&first, &next] {
        assert_eq!(invoice_status(&store, inv.invoice_id).await, "paid");
    }
    let sub = subscription_row(&store, &first).await;
    assert_eq!(sub.current_period_end, Some(next.period_end));
}

#[tokio::test]
async fn record_transaction_token_saved_by_another_account_is_conflict_on_payment_methods_gateway_token_key(
) {
    let store = fresh_store().await;
    let (owner, other) = opened_two(&store).await;
    pay(&store, &owner, 205).await;
    let before = counts(&store).await;

    let stolen = completed(206, other.tariff.price, TOKEN, "5555 55** **** 4444");
    assert_conflict(
        store.record_transaction(&record(&other, stolen)).await,
        "payment_methods_gateway_token_key",
    );

    // The whole SQL transaction is rolled back: no transaction row, nothing paid.
    assert_eq!(counts(&store).await, before);
    assert_eq!(invoice_status(&store, other.invoice_id).await, "open");
    let sub = subscription_row(&store, &other).await;
    assert_eq!((sub.status.as_str(), sub.card_mask), ("pending", None));
    let owner_sub = subscription_row(&store, &owner).await;
    assert_eq!(owner_sub.card_mask.as_deref(), Some(CARD_MASK));
}

/// Gateway transaction id the reuse tests record twice.
const REUSED: i64 = 207;

/// Records a decline of [`REUSED`] for a first invoice, then `second(first, other)` (an invoice
/// of another account): the second write must be refused and leave every row, and the status
/// of its invoice, as they were.
async fn assert_gateway_id_reuse_refused(
    second: impl FnOnce(&OpenInvoice, &OpenInvoice) -> RecordTransaction,
) {
    let store = fresh_store().await;
    let (first, other) = opened_two(&store).await;
    let decline = record(&first, declined(REUSED, first.tariff.price));
    store.record_transaction(&decline).await.expect("first use");
    let second = second(&first, &other);
    let before = counts(&store).await;
    let status = invoice_status(&store, second.invoice_id).await;

    assert_conflict(
        store.record_transaction(&second).await,
        "transactions_gateway_transaction_id_key",
    );

    assert_eq!(counts(&store).await, before);
    assert_eq!(invoice_status(&store, second.invoice_id).await, status);
}

#[tokio::test]
async fn record_transaction_same_gateway_id_for_another_invoice_is_conflict() {
    assert_gateway_id_reuse_refused(|_, other| {
        record(
            other,
            completed(REUSED, other.tariff.price, "tok-b", CARD_MASK),
        )
    })
    .await;
}

#[tokio::test]
async fn record_transaction_same_gateway_id_with_another_amount_is_conflict() {
    assert_gateway_id_reuse_refused(|first, _| {
        record(first, declined(REUSED, rub(first.tariff.price.minor + 1)))
    })
    .await;
}

#[tokio::test]
async fn record_transaction_same_gateway_id_with_another_status_is_conflict() {
    assert_gateway_id_reuse_refused(|first, _| {
        record(
            first,
            completed(REUSED, first.tariff.price, TOKEN, CARD_MASK),
        )
    })
    .await;
}
