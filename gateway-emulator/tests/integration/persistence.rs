use crate::common::*;
use gateway_emulator::cards::*;
use gateway_emulator::Settings;
use serde_json::json;

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("gw-emu-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let settings = || Settings {
        state_file: Some(file.clone()),
        ..Settings::for_tests()
    };

    let e = start_with(settings()).await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc").await;
    let body = json!({"Amount": 5, "AccountId": "acc", "Token": token, "InvoiceId": "p-1"});
    let first = e
        .req("/payments/tokens/charge")
        .header("X-Request-ID", "persist")
        .json(&body)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let id = e.json("/payments/find", json!({"InvoiceId": "p-1"})).await["Model"]["TransactionId"]
        .as_i64()
        .unwrap();
    e.emu.stop().await;
    assert!(file.exists(), "state file written on shutdown");

    let e = start_with(settings()).await;
    // Transactions.
    let v = e.json("/payments/get", json!({"TransactionId": id})).await;
    assert_eq!(v["Model"]["Status"], "Completed");
    // Idempotency records: same bytes, no second charge.
    let again = e
        .req("/payments/tokens/charge")
        .header("X-Request-ID", "persist")
        .json(&body)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(e.ledger("p-1").await["completed_count"], 1);
    // Tokens.
    assert_eq!(
        shape(&e.token_charge(&token, "acc", 1.0, "p-2").await),
        Shape::Approved
    );
    // New ids do not collide with old ones.
    let new_id = e.json("/payments/find", json!({"InvoiceId": "p-2"})).await["Model"]
        ["TransactionId"]
        .as_i64()
        .unwrap();
    assert!(new_id > id);
    e.emu.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn corrupt_state_file_is_a_startup_error() {
    let file = std::env::temp_dir().join(format!("gw-emu-bad-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, b"{not json").unwrap();
    let r = gateway_emulator::spawn(Settings {
        state_file: Some(file.clone()),
        ..Settings::for_tests()
    })
    .await;
    assert!(matches!(r, Err(gateway_emulator::Error::LoadState { .. })));
    let _ = std::fs::remove_file(&file);
}
