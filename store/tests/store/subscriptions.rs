//! `sync_subscription` and `close_unpaid`: state updates of rows `open_invoice` created. They
//! have no key of their own to violate; a repeat must leave the rows as the first call did.

use crate::fixtures::*;
use billing_domain::messages::{CloseUnpaid, OpenInvoice, SubscriptionStatus, SyncSubscription};
use billing_store::Store;

/// The subscription's columns a sync may change, straight from SQL.
async fn subscription_terms(
    store: &Store,
    inv: &OpenInvoice,
) -> (String, String, i64, String, String, i32) {
    sqlx::query_as(
        "SELECT status, tariff_code, amount_minor, currency::text, period_unit, period_count
         FROM subscriptions WHERE id = $1",
    )
    .bind(inv.subscription_id.0)
    .fetch_one(store.pool())
    .await
    .expect("subscription terms")
}

fn close(inv: &OpenInvoice, invoice_status: &str, status: SubscriptionStatus) -> CloseUnpaid {
    CloseUnpaid {
        subscription_id: inv.subscription_id,
        invoice_id: inv.invoice_id,
        invoice_status: invoice_status.into(),
        subscription_status: status,
    }
}

#[tokio::test]
async fn sync_subscription_repeat_leaves_the_row_as_the_first_sync_did() {
    let store = fresh_store().await;
    let inv = opened(&store).await;
    let premium = tariff_priced("premium-monthly", 59_900);
    store.upsert_tariff(&premium, true).await.expect("premium");
    let status_only = SyncSubscription {
        subscription_id: inv.subscription_id,
        status: SubscriptionStatus::PastDue,
        tariff: None,
    };
    let with_tariff = SyncSubscription {
        subscription_id: inv.subscription_id,
        status: SubscriptionStatus::Active,
        tariff: Some(premium.clone()),
    };
    let expected = [("past_due", tariff()), ("active", premium)];

    for (req, (status, terms)) in [status_only, with_tariff].iter().zip(expected) {
        store.sync_subscription(req).await.expect("sync");
        let first = subscription_terms(&store, &inv).await;
        let before = counts(&store).await;

        store.sync_subscription(req).await.expect("repeat");

        assert_eq!(subscription_terms(&store, &inv).await, first);
        assert_eq!(counts(&store).await, before);
        assert_eq!(
            first,
            (
                status.to_string(),
                terms.code.as_str().to_string(),
                terms.price.minor,
                terms.price.currency.code().to_string(),
                terms.period.unit.as_str().to_string(),
                terms.period.count as i32,
            )
        );
    }
}

#[tokio::test]
async fn close_unpaid_repeat_leaves_the_invoice_closed_once() {
    let store = fresh_store().await;
    let inv = opened(&store).await;
    let req = close(&inv, "void", SubscriptionStatus::Declined);
    store.close_unpaid(&req).await.expect("close");
    let first = store.invoice(inv.invoice_id).await.expect("invoice");
    let before = counts(&store).await;

    store.close_unpaid(&req).await.expect("repeat");

    assert_eq!(store.invoice(inv.invoice_id).await.expect("invoice"), first);
    assert_eq!(first.status, "void");
    assert_eq!(counts(&store).await, before);
    assert_eq!(subscription_row(&store, &inv).await.status, "declined");
}

#[tokio::test]
async fn close_unpaid_of_a_closed_invoice_keeps_its_first_status() {
    let store = fresh_store().await;
    let inv = opened(&store).await;
    for invoice_status in ["void", "uncollectible"] {
        let req = close(&inv, invoice_status, SubscriptionStatus::Expired);
        store.close_unpaid(&req).await.expect("close");
    }

    assert_eq!(invoice_status(&store, inv.invoice_id).await, "void");
}

#[tokio::test]
async fn close_unpaid_never_touches_a_paid_invoice() {
    let store = fresh_store().await;
    let inv = opened(&store).await;
    pay(&store, &inv, 401).await;
    let paid = paid_at(&store, inv.invoice_id).await;

    let req = close(&inv, "void", SubscriptionStatus::Cancelled);
    store.close_unpaid(&req).await.expect("close");

    assert_eq!(invoice_status(&store, inv.invoice_id).await, "paid");
    assert_eq!(paid_at(&store, inv.invoice_id).await, paid);
}

#[tokio::test]
async fn sync_subscription_to_an_unknown_tariff_is_a_domain_error_not_retried() {
    let store = fresh_store().await;
    let inv = opened(&store).await;
    let req = SyncSubscription {
        subscription_id: inv.subscription_id,
        status: SubscriptionStatus::Active,
        tariff: Some(tariff_priced("no-such-tariff", 100)),
    };

    let err = store
        .sync_subscription(&req)
        .await
        .expect_err("unknown tariff");

    assert!(!err.is_transient(), "{err:?} would be retried forever");
    assert_eq!(
        subscription_terms(&store, &inv).await.1,
        tariff().code.as_str()
    );
}
