//! `save_start_outcome`: the final answer of a start request, once per
//! (account, client request id). Key: `start_requests_pkey`.

use crate::fixtures::*;
use billing_domain::{AccountId, RequestId, SubscriptionId};
use billing_store::Store;
use serde_json::{json, Value};

const REQUEST: &str = "start-1";

/// The subscription that `account`'s [`REQUEST`] starts.
fn subscription_for(account: AccountId) -> SubscriptionId {
    SubscriptionId::derive(account, &RequestId::parse(REQUEST).expect("request id"))
}

fn declined_answer(subscription: SubscriptionId) -> Value {
    json!({ "status": "declined", "subscription_id": subscription, "reason_code": 5051 })
}

/// Saves the declined answer to a new account's [`REQUEST`]; returns the account and the answer.
async fn saved_decline(store: &Store) -> (AccountId, Value) {
    let account = AccountId(uuid::Uuid::new_v4());
    let sub = subscription_for(account);
    let answer = declined_answer(sub);
    store
        .save_start_outcome(account, REQUEST, sub, &answer)
        .await
        .expect("save");
    (account, answer)
}

#[tokio::test]
async fn save_start_outcome_repeat_keeps_one_answer() {
    let store = fresh_store().await;
    let (account, answer) = saved_decline(&store).await;
    let sub = subscription_for(account);

    store
        .save_start_outcome(account, REQUEST, sub, &answer)
        .await
        .expect("repeat");

    assert_eq!(rows(&store, "start_requests").await, 1);
    let by_request = store
        .start_outcome(account, REQUEST)
        .await
        .expect("by request");
    assert_eq!(by_request.as_ref(), Some(&answer));
    let by_subscription = store
        .start_outcome_by_subscription(sub)
        .await
        .expect("by sub");
    assert_eq!(by_subscription, Some(answer));
}

#[tokio::test]
async fn save_start_outcome_same_request_id_on_another_account_is_a_separate_answer() {
    let store = fresh_store().await;
    let answers = [saved_decline(&store).await, saved_decline(&store).await];

    assert_eq!(rows(&store, "start_requests").await, 2);
    for (account, answer) in answers {
        let stored = store.start_outcome(account, REQUEST).await.expect("answer");
        assert_eq!(stored, Some(answer));
    }
}

#[tokio::test]
async fn save_start_outcome_same_request_id_with_another_outcome_is_conflict() {
    let store = fresh_store().await;
    let (account, first) = saved_decline(&store).await;
    let sub = subscription_for(account);
    let other = json!({ "status": "active", "subscription_id": sub });

    assert_conflict(
        store
            .save_start_outcome(account, REQUEST, sub, &other)
            .await,
        "start_requests_pkey",
    );

    let stored = store.start_outcome(account, REQUEST).await.expect("answer");
    assert_eq!(stored, Some(first));
}
