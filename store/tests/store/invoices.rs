//! `open_invoice`: registers the account, the subscription and the period's invoice, once.
//! Keys: `accounts_pkey`, `subscriptions_pkey`, `invoices_pkey`, `invoices_subscription_period_key`.

use crate::fixtures::*;
use billing_domain::messages::{CloseUnpaid, OpenInvoice, SubscriptionStatus};
use billing_domain::{AccountId, InvoiceId};
use billing_store::StoreError;

#[tokio::test]
async fn open_invoice_repeat_returns_the_same_invoice_and_adds_no_rows() {
    let store = fresh_store().await;
    let req = first_invoice();
    let first = store.open_invoice(&req).await.expect("open");
    let before = counts(&store).await;

    let again = store.open_invoice(&req).await.expect("repeat");

    assert_eq!(again, first);
    assert_eq!(counts(&store).await, before);
    assert_eq!(first.id, req.invoice_id);
    assert_eq!(first.subscription_id, req.subscription_id);
    assert_eq!(first.status, "open");
    assert_eq!(first.amount, req.tariff.price);
    assert_eq!(
        (first.period_start, first.period_end),
        (req.period_start, req.period_end)
    );
    for table in ["accounts", "subscriptions", "invoices"] {
        assert_eq!(rows(&store, table).await, 1, "{table}");
    }
    let sub = subscription_row(&store, &req).await;
    assert_eq!(sub.account_id, req.account_id);
    assert_eq!(sub.tariff_code, req.tariff.code.as_str());
    assert_eq!(sub.status, "pending");
    assert_eq!(sub.workflow_id, req.account_id.workflow_id());
}

#[tokio::test]
async fn open_invoice_with_another_id_for_a_billed_period_is_conflict_on_invoices_subscription_period_key(
) {
    let store = fresh_store().await;
    let req = opened(&store).await;
    let before = counts(&store).await;
    let other = OpenInvoice {
        invoice_id: InvoiceId(uuid::Uuid::new_v4()),
        ..req.clone()
    };

    assert_conflict(
        store.open_invoice(&other).await,
        "invoices_subscription_period_key",
    );

    assert_eq!(counts(&store).await, before);
    assert!(matches!(
        store.invoice(other.invoice_id).await,
        Err(StoreError::NotFound("invoice"))
    ));
}

#[tokio::test]
async fn open_invoice_repeat_reopens_a_void_invoice_of_the_same_period() {
    let store = fresh_store().await;
    let req = opened(&store).await;
    let close = CloseUnpaid {
        subscription_id: req.subscription_id,
        invoice_id: req.invoice_id,
        invoice_status: "void".into(),
        subscription_status: SubscriptionStatus::Ended,
    };
    store.close_unpaid(&close).await.expect("void");

    let reopened = store.open_invoice(&req).await.expect("reopen");

    assert_eq!(reopened.status, "open");
    assert_eq!(rows(&store, "invoices").await, 1);
    assert_eq!(subscription_row(&store, &req).await.status, "pending");
}

#[tokio::test]
async fn open_invoice_repeat_after_payment_reports_paid_and_keeps_the_subscription_active() {
    let store = fresh_store().await;
    let req = opened(&store).await;
    pay(&store, &req, 101).await;
    let before = counts(&store).await;

    let again = store.open_invoice(&req).await.expect("repeat");

    assert_eq!(again.status, "paid");
    assert_eq!(counts(&store).await, before);
    let sub = subscription_row(&store, &req).await;
    assert_eq!(
        (sub.status.as_str(), sub.current_period_end),
        ("active", Some(req.period_end))
    );
}

#[tokio::test]
async fn open_invoice_for_the_next_period_adds_an_invoice_and_keeps_the_subscription_active() {
    let store = fresh_store().await;
    let (first, next) = paid_first_and_next(&store, 102).await;

    let renewal = store.open_invoice(&next).await.expect("open renewal");

    assert_eq!(renewal.status, "open");
    assert_eq!(renewal.period_start, first.period_end);
    let statuses: Vec<_> = store
        .invoices_of(first.subscription_id)
        .await
        .expect("invoices")
        .into_iter()
        .map(|i| (i.id, i.status))
        .collect();
    assert_eq!(
        statuses,
        [
            (first.invoice_id, "paid".to_string()),
            (next.invoice_id, "open".to_string())
        ]
    );
    assert_eq!(
        (
            rows(&store, "accounts").await,
            rows(&store, "subscriptions").await
        ),
        (1, 1)
    );
    assert_eq!(subscription_row(&store, &first).await.status, "active");
}

/// The account is registered by its first invoice; later ones do not rewrite it. Whether a new
/// email should replace the stored one is open (billing does not send mail from it today).
#[tokio::test]
async fn open_invoice_for_a_known_account_keeps_one_account_with_its_first_email() {
    let store = fresh_store().await;
    let first = opened(&store).await;
    let next = OpenInvoice {
        email: "changed@example.test".into(),
        ..period_invoice(&first, 1)
    };

    store
        .open_invoice(&next)
        .await
        .expect("open with another email");

    assert_eq!(rows(&store, "accounts").await, 1);
    let email: String = sqlx::query_scalar("SELECT email FROM accounts WHERE id = $1")
        .bind(first.account_id.0)
        .fetch_one(store.pool())
        .await
        .expect("email");
    assert_eq!(email, first.email);
}

#[tokio::test]
async fn open_invoice_same_invoice_id_with_another_amount_is_conflict() {
    let store = fresh_store().await;
    let req = opened(&store).await;
    let mut other = req.clone();
    other.tariff.price = rub(req.tariff.price.minor + 100);
    let before = counts(&store).await;

    assert_conflict(store.open_invoice(&other).await, "invoices_pkey");

    assert_eq!(counts(&store).await, before);
    let stored = store.invoice(req.invoice_id).await.expect("invoice");
    assert_eq!(stored.amount, req.tariff.price);
}

#[tokio::test]
async fn open_invoice_same_subscription_id_for_another_account_is_conflict() {
    let store = fresh_store().await;
    let first = opened(&store).await;
    let intruder = AccountId(uuid::Uuid::new_v4());
    let other = OpenInvoice {
        account_id: intruder,
        email: format!("{intruder}@example.test"),
        ..period_invoice(&first, 1)
    };
    let before = counts(&store).await;

    assert_conflict(store.open_invoice(&other).await, "subscriptions_pkey");

    assert_eq!(counts(&store).await, before);
    assert_eq!(
        subscription_row(&store, &first).await.account_id,
        first.account_id
    );
}
