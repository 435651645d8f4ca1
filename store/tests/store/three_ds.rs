//! `record_3ds_challenge`: a pending 3-D Secure challenge, once per gateway transaction id (the
//! MD the bank posts back). Key: `three_ds_challenges_pkey`.

use crate::fixtures::*;
use billing_domain::messages::{OpenInvoice, ThreeDsChallenge};
use billing_domain::GatewayTransactionId;
use billing_store::{Store, StoreError};

fn challenge(gateway_id: i64, inv: &OpenInvoice) -> ThreeDsChallenge {
    ThreeDsChallenge {
        gateway_transaction_id: GatewayTransactionId(gateway_id),
        subscription_id: inv.subscription_id,
        account_id: inv.account_id,
        invoice_id: inv.invoice_id,
    }
}

/// There is one stored challenge, and the one of `gateway_id` belongs to `inv`.
async fn assert_only_challenge_is(store: &Store, gateway_id: i64, inv: &OpenInvoice) {
    assert_eq!(rows(store, "three_ds_challenges").await, 1);
    let stored = store
        .three_ds_challenge(gateway_id)
        .await
        .expect("challenge");
    assert_eq!(
        stored.gateway_transaction_id,
        GatewayTransactionId(gateway_id)
    );
    assert_eq!(
        (stored.subscription_id, stored.account_id, stored.invoice_id),
        (inv.subscription_id, inv.account_id, inv.invoice_id)
    );
}

#[tokio::test]
async fn record_3ds_challenge_repeat_keeps_one_challenge() {
    let store = fresh_store().await;
    let inv = opened(&store).await;
    for _ in 0..2 {
        store
            .record_3ds_challenge(&challenge(301, &inv))
            .await
            .expect("record");
    }

    assert_only_challenge_is(&store, 301, &inv).await;
}

#[tokio::test]
async fn three_ds_challenge_of_an_unknown_gateway_id_is_not_found() {
    let store = fresh_store().await;
    let lookup = store.three_ds_challenge(399).await;
    assert!(matches!(lookup, Err(StoreError::NotFound(_))), "{lookup:?}");
}

#[tokio::test]
async fn record_3ds_challenge_same_gateway_id_for_another_invoice_is_conflict() {
    let store = fresh_store().await;
    let (first, other) = opened_two(&store).await;
    let recorded = store.record_3ds_challenge(&challenge(302, &first)).await;
    recorded.expect("record");

    let reused = store.record_3ds_challenge(&challenge(302, &other)).await;

    assert_conflict(reused, "three_ds_challenges_pkey");
    assert_only_challenge_is(&store, 302, &first).await;
}
