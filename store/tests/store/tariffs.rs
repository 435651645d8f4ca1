//! `upsert_tariff`: inserts or replaces a tariff by code (`tariffs_pkey` is the upsert's
//! target, so a write never violates it: a second write with the same code is a replacement).

use crate::fixtures::*;
use billing_store::Tariff;

#[tokio::test]
async fn upsert_tariff_repeat_keeps_one_row_with_the_same_values() {
    let store = fresh_store().await; // holds tariff() already

    store.upsert_tariff(&tariff(), true).await.expect("repeat");

    assert_eq!(rows(&store, "tariffs").await, 1);
    let expected = Tariff {
        snapshot: tariff(),
        active: true,
    };
    assert_eq!(
        store.tariff(&tariff().code).await.expect("tariff"),
        expected
    );
    assert_eq!(store.list_active_tariffs().await.expect("list"), [expected]);
}

#[tokio::test]
async fn upsert_tariff_same_code_replaces_the_tariff_but_not_live_subscriptions_or_invoices() {
    let store = fresh_store().await;
    let inv = opened(&store).await;
    let repriced = tariff_priced(tariff().code.as_str(), 39_900);

    store
        .upsert_tariff(&repriced, false)
        .await
        .expect("replace");

    assert_eq!(rows(&store, "tariffs").await, 1);
    let stored = store.tariff(&repriced.code).await.expect("tariff");
    assert_eq!((stored.snapshot, stored.active), (repriced, false));
    assert!(store.list_active_tariffs().await.expect("list").is_empty());
    let sub_price: i64 = sqlx::query_scalar("SELECT amount_minor FROM subscriptions WHERE id = $1")
        .bind(inv.subscription_id.0)
        .fetch_one(store.pool())
        .await
        .expect("subscription price");
    assert_eq!(sub_price, inv.tariff.price.minor);
    let invoice = store.invoice(inv.invoice_id).await.expect("invoice");
    assert_eq!(invoice.amount, inv.tariff.price);
}
