use crate::common::*;
use gateway_emulator::cards::{self, Outcome};
use serde_json::json;

/// Every official card: cryptogram payment (through 3-DS where the card asks for it), then a token charge.
#[tokio::test]
async fn all_fifteen_test_cards_behave_as_documented() {
    let e = start().await;
    assert_eq!(cards::ALL.len(), 15);
    for (i, card) in cards::ALL.iter().enumerate() {
        let account = format!("acc-{i}");
        let v = e
            .charge(&emu1(card.pan), 10.0, &format!("card-{i}"), Some(&account))
            .await;
        let final_v = if card.three_ds {
            assert_eq!(shape(&v), Shape::ThreeDs, "{}", card.pan);
            let id = v["Model"]["TransactionId"].as_i64().unwrap();
            let t = e.json("/payments/get", json!({"TransactionId": id})).await;
            assert_eq!(t["Model"]["Status"], "AwaitingAuthentication");
            let pares = e.control_get(&format!("/_emulator/3ds/{id}/pares")).await;
            e.json(
                "/payments/cards/post3ds",
                json!({"TransactionId": id, "PaRes": pares["PaRes"]}),
            )
            .await
        } else {
            v
        };
        match card.cryptogram {
            Outcome::Approve => {
                assert_eq!(shape(&final_v), Shape::Approved, "{}: {final_v}", card.pan)
            }
            Outcome::Decline(code) => {
                assert_eq!(shape(&final_v), Shape::Declined, "{}", card.pan);
                assert_eq!(final_v["Model"]["ReasonCode"], code);
                continue;
            }
        }
        let token = final_v["Model"]["Token"]
            .as_str()
            .unwrap_or_else(|| panic!("{} gets a token", card.pan))
            .to_owned();
        let tv = e
            .token_charge(&token, &account, 5.0, &format!("card-{i}-rec"))
            .await;
        match card.token {
            Outcome::Approve => assert_eq!(shape(&tv), Shape::Approved, "{}", card.pan),
            Outcome::Decline(code) => {
                assert_eq!(shape(&tv), Shape::Declined, "{}", card.pan);
                assert_eq!(tv["Model"]["ReasonCode"], code, "{}", card.pan);
            }
        }
    }
    // The documented table, spelled out.
    let row = |pan| *cards::ALL.iter().find(|c| c.pan == pan).unwrap();
    assert!(row(cards::VISA_3DS_SUCCESS).three_ds);
    assert_eq!(
        row(cards::SUCCESS_THEN_TOKEN_DECLINE).cryptogram,
        Outcome::Approve
    );
    assert_eq!(
        row(cards::SUCCESS_THEN_TOKEN_DECLINE).token,
        Outcome::Decline(5051)
    );
    assert_eq!(
        row(cards::VISA_3DS_INSUFFICIENT).cryptogram,
        Outcome::Decline(5051)
    );
    assert!(!row(cards::NO_3DS_SUCCESS).three_ds);
}
