use crate::common::*;
use gateway_emulator::cards::*;
use serde_json::{json, Value};

#[tokio::test]
async fn auth_is_required_and_checked() {
    let e = start().await;
    let r = e.http.post(e.url("/test")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = e.req_as("/test", DEFAULT, "wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = e
        .req_as("/test", "pk_unknown", "emulator_secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v = e.json("/test", json!({})).await;
    assert_eq!(v["Success"], true);
    assert!(
        uuid::Uuid::parse_str(v["Message"].as_str().unwrap()).is_ok(),
        "{v}"
    );
    // Scheme and header spelled differently still work.
    let r = e
        .http
        .post(e.url("/test"))
        .header(
            "authorization",
            "basic cGtfdGVzdF9lbXVsYXRvcjplbXVsYXRvcl9zZWNyZXQ=",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

const DEFAULT: &str = gateway_emulator::DEFAULT_PUBLIC_ID;

#[tokio::test]
async fn approved_charge_has_the_full_transaction_model() {
    let e = start().await;
    let v = e
        .json(
            "/payments/cards/charge",
            json!({"amount": 12.34, "currency": "RUB", "ipAddress": "10.0.0.1", "cardCryptogramPacket": emu1(NO_3DS_SUCCESS),
                   "invoiceId": "inv-1", "accountId": "user-1", "email": "a@b.c", "JsonData": {"k": "v"}, "Name": "IVAN IVANOV"}),
        )
        .await;
    assert_eq!(shape(&v), Shape::Approved);
    let m = &v["Model"];
    assert_eq!(m["Status"], "Completed");
    assert_eq!(m["StatusCode"], 3);
    assert_eq!(m["Amount"], json!(12.34));
    assert_eq!(m["PaymentAmount"], json!(12.34));
    assert_eq!(m["Currency"], "RUB");
    assert_eq!(m["CurrencyCode"], 0);
    assert_eq!(m["InvoiceId"], "inv-1");
    assert_eq!(m["AccountId"], "user-1");
    assert_eq!(
        m["JsonData"], r#"{"k":"v"}"#,
        "JsonData comes back as a string"
    );
    assert_eq!(m["CardFirstSix"], "400000");
    assert_eq!(m["CardLastFour"], "3055");
    assert_eq!(m["CardExpDate"], "12/35");
    assert_eq!(m["CardType"], "Visa");
    assert_eq!(m["TestMode"], true);
    assert_eq!(m["GatewayName"], "Test");
    assert_eq!(m["Reason"], "Approved");
    assert_eq!(m["AuthCode"], "A1B2C3");
    assert_eq!(m["CardHolderMessage"], "Оплата успешно проведена");
    let created = m["CreatedDate"].as_str().unwrap();
    assert!(
        created.starts_with("/Date(") && created.ends_with(")/"),
        "{created}"
    );
    let ms: i64 = created[6..created.len() - 2].parse().unwrap();
    let iso = m["CreatedDateIso"].as_str().unwrap();
    let parsed = chrono::NaiveDateTime::parse_from_str(iso, "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_utc()
        .timestamp_millis();
    assert_eq!(parsed, ms / 1000 * 1000, "Iso is UTC, cut to whole seconds");
    let token = m["Token"].as_str().unwrap();
    assert!(token.starts_with("tk_") && token.len() == 32, "{token}");
    assert!(m["TransactionId"].as_i64().unwrap() > 0);
    // PascalCase everywhere.
    for k in m.as_object().unwrap().keys() {
        assert!(k.chars().next().unwrap().is_ascii_uppercase(), "{k}");
    }
}

#[tokio::test]
async fn form_bodies_work_like_json() {
    let e = start().await;
    let packet = emu1(NO_3DS_SUCCESS);
    let v = e
        .form(
            "/payments/cards/auth",
            &[
                ("Amount", "100.5"),
                ("IpAddress", "1.2.3.4"),
                ("CardCryptogramPacket", &packet),
                ("InvoiceId", "f-1"),
                ("CultureName", "en-US"),
            ],
        )
        .await;
    assert_eq!(shape(&v), Shape::Approved);
    assert_eq!(v["Model"]["Status"], "Authorized");
    assert_eq!(v["Model"]["StatusCode"], 2);
    assert_eq!(v["Model"]["Amount"], json!(100.5));
    assert_eq!(v["Model"]["CardHolderMessage"], "Payment successful");
    assert!(v["Model"]["Token"].is_null(), "no AccountId, no token");
}

#[tokio::test]
async fn declined_shape_for_insufficient_funds() {
    let e = start().await;
    let v = e
        .charge(&emu1(DECLINE_INSUFFICIENT), 5.0, "d-1", Some("u"))
        .await;
    assert_eq!(shape(&v), Shape::Declined);
    assert_eq!(v["Model"]["ReasonCode"], 5051);
    assert_eq!(v["Model"]["Reason"], "InsufficientFunds");
    assert_eq!(
        v["Model"]["CardHolderMessage"],
        "Недостаточно средств на карте"
    );
    assert!(
        v["Model"]["Token"].is_null(),
        "no token for a declined payment"
    );
}

#[tokio::test]
async fn malformed_requests_say_which_field_is_wrong() {
    let e = start().await;
    let good = || json!({"Amount": 10, "IpAddress": "1.1.1.1", "CardCryptogramPacket": emu1(NO_3DS_SUCCESS)});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"IpAddress": "1.1.1.1", "CardCryptogramPacket": emu1(NO_3DS_SUCCESS)}),
            "Amount is required",
        ),
        (
            {
                let mut b = good();
                b["Amount"] = json!(0);
                b
            },
            "Amount",
        ),
        (
            {
                let mut b = good();
                b["Amount"] = json!(-5);
                b
            },
            "Amount",
        ),
        (
            {
                let mut b = good();
                b["Amount"] = json!(1.234);
                b
            },
            "Amount",
        ),
        (
            {
                let mut b = good();
                b["Amount"] = json!("1.234");
                b
            },
            "Amount",
        ),
        (
            {
                let mut b = good();
                b["Amount"] = json!("abc");
                b
            },
            "Amount",
        ),
        (
            {
                let mut b = good();
                b["Currency"] = json!("XXX");
                b
            },
            "Currency",
        ),
        (
            {
                let mut b = good();
                b["CardCryptogramPacket"] = json!("garbage");
                b
            },
            "CardCryptogramPacket",
        ),
        (
            {
                let mut b = good();
                b.as_object_mut().unwrap().remove("CardCryptogramPacket");
                b
            },
            "CardCryptogramPacket is required",
        ),
        (
            {
                let mut b = good();
                b.as_object_mut().unwrap().remove("IpAddress");
                b
            },
            "IpAddress is required",
        ),
    ];
    for (body, needle) in cases {
        let v = e.json("/payments/cards/charge", body.clone()).await;
        assert_eq!(shape(&v), Shape::Malformed, "{body}");
        assert!(
            v["Message"].as_str().unwrap().contains(needle),
            "{body} -> {v}"
        );
    }
    // Unknown transaction and unknown token.
    let v = e
        .json("/payments/get", json!({"TransactionId": 999999999}))
        .await;
    assert_eq!(v["Message"], "Transaction not found");
    let v = e
        .json(
            "/payments/tokens/charge",
            json!({"Amount": 1, "AccountId": "a", "Token": "tk_nope"}),
        )
        .await;
    assert_eq!(v["Message"], "Token not found");
    // Nothing was charged by any of these.
    let all = e.control_get("/_emulator/transactions").await;
    assert_eq!(all.as_array().unwrap().len(), 0, "{all}");
}

#[tokio::test]
async fn bad_bodies_get_cloudpayments_shaped_errors() {
    let e = start().await;
    let send = |ct: Option<&'static str>, body: Vec<u8>| {
        let mut r = e.req("/payments/cards/charge").body(body);
        if let Some(ct) = ct {
            r = r.header("Content-Type", ct);
        }
        r.send()
    };
    for (ct, body, needle) in [
        (Some("application/json"), b"{not json".to_vec(), "JSON"),
        (Some("application/json"), vec![0xff, 0xfe, 0x00], "UTF-8"),
        (Some("text/plain"), b"Amount=1".to_vec(), "Content-Type"),
        (Some("application/json"), b"[1,2]".to_vec(), "object"),
        (
            Some("application/json"),
            vec![b' '; 2 * 1024 * 1024],
            "too large",
        ),
    ] {
        let r = send(ct, body).await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(shape(&v), Shape::Malformed);
        assert!(
            v["Message"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }
}

#[tokio::test]
async fn token_charges_and_terminal_ownership() {
    let mut settings = gateway_emulator::Settings::for_tests();
    settings.terminals.push(second_terminal());
    let e = start_with(settings).await;
    let token = e.token_for(NO_3DS_SUCCESS, "acc-1").await;
    let v = e.token_charge(&token, "acc-1", 99.99, "sub-1").await;
    assert_eq!(shape(&v), Shape::Approved);
    assert_eq!(v["Model"]["Amount"], json!(99.99));
    assert_eq!(v["Model"]["TrInitiatorCode"], 0);
    assert_eq!(v["Model"]["Token"], token.as_str());
    // Token auth → Authorized.
    let v = e
        .json(
            "/payments/tokens/auth",
            json!({"Amount": 3, "AccountId": "acc-1", "Token": token}),
        )
        .await;
    assert_eq!(v["Model"]["Status"], "Authorized");
    // Another terminal cannot use it.
    let t = second_terminal();
    let r = e
        .req_as("/payments/tokens/charge", &t.public_id, &t.api_secret)
        .json(&json!({"Amount": 1, "AccountId": "acc-1", "Token": token}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(shape(&v), Shape::Malformed);
    assert!(
        v["Message"].as_str().unwrap().contains("another terminal"),
        "{v}"
    );
    // Nor read its transactions.
    let id = e.token_charge(&token, "acc-1", 1.0, "x").await["Model"]["TransactionId"]
        .as_i64()
        .unwrap();
    let r = e
        .req_as("/payments/get", &t.public_id, &t.api_secret)
        .json(&json!({"TransactionId": id}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["Message"], "Transaction not found");
    // Missing fields.
    let v = e
        .json(
            "/payments/tokens/charge",
            json!({"Amount": 1, "Token": token}),
        )
        .await;
    assert_eq!(v["Message"], "AccountId is required");
    let v = e
        .json(
            "/payments/tokens/charge",
            json!({"Amount": 1, "AccountId": "acc-1"}),
        )
        .await;
    assert_eq!(v["Message"], "Token is required");
    // Tokens list.
    let v = e.json("/payments/tokens/list", json!({})).await;
    let list = v["Model"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["Token"], token.as_str());
    assert_eq!(list[0]["CardMask"], "4000 00****** 3055");
    assert_eq!(list[0]["ExpirationDateYear"], 2035);
    // SaveCard:false suppresses the token.
    let v = e
        .json("/payments/cards/charge", json!({"Amount": 1, "IpAddress": "1.1.1.1", "CardCryptogramPacket": emu1(NO_3DS_SUCCESS), "AccountId": "acc-2", "SaveCard": false}))
        .await;
    assert!(v["Model"]["Token"].is_null());
}

#[tokio::test]
async fn confirm_void_refund_state_rules() {
    let e = start().await;
    let auth = |inv: &'static str| {
        let e = &e;
        async move {
            let v = e.json("/payments/cards/auth", json!({"Amount": 100, "IpAddress": "1.1.1.1", "CardCryptogramPacket": emu1(NO_3DS_SUCCESS), "InvoiceId": inv})).await;
            v["Model"]["TransactionId"].as_i64().unwrap()
        }
    };
    // Confirm partially.
    let id = auth("c-1").await;
    let v = e
        .json(
            "/payments/confirm",
            json!({"TransactionId": id, "Amount": 150}),
        )
        .await;
    assert_eq!(shape(&v), Shape::Malformed, "more than authorised");
    let v = e
        .json(
            "/payments/confirm",
            json!({"TransactionId": id, "Amount": 60}),
        )
        .await;
    assert_eq!(v, json!({"Success": true, "Message": null}));
    let t = e.json("/payments/get", json!({"TransactionId": id})).await;
    assert_eq!(t["Model"]["Status"], "Completed");
    assert_eq!(t["Model"]["Amount"], json!(60.0));
    assert!(t["Model"]["ConfirmDate"]
        .as_str()
        .unwrap()
        .starts_with("/Date("));
    let v = e
        .json(
            "/payments/confirm",
            json!({"TransactionId": id, "Amount": 60}),
        )
        .await;
    assert_eq!(shape(&v), Shape::Malformed, "confirm only from Authorized");
    let v = e.json("/payments/void", json!({"TransactionId": id})).await;
    assert_eq!(shape(&v), Shape::Malformed, "void only from Authorized");
    // Refund: partial, then the rest, then too much.
    let v = e
        .json(
            "/payments/refund",
            json!({"TransactionId": id, "Amount": 20}),
        )
        .await;
    assert_eq!(v["Success"], true);
    let refund_id = v["Model"]["TransactionId"].as_i64().unwrap();
    assert_ne!(refund_id, id);
    let t = e.json("/payments/get", json!({"TransactionId": id})).await;
    assert_eq!(t["Model"]["Refunded"], true);
    let v = e
        .json(
            "/payments/refund",
            json!({"TransactionId": id, "Amount": 40.01}),
        )
        .await;
    assert_eq!(shape(&v), Shape::Malformed, "above what is left");
    let v = e
        .json(
            "/payments/refund",
            json!({"TransactionId": id, "Amount": 40}),
        )
        .await;
    assert_eq!(v["Success"], true);
    let r = e
        .json("/payments/get", json!({"TransactionId": refund_id}))
        .await;
    assert_eq!(r["Model"]["OriginalTransactionId"], id);
    assert_eq!(r["Model"]["Type"], 2);
    // Void an authorisation.
    let id2 = auth("c-2").await;
    let v = e
        .json("/payments/void", json!({"TransactionId": id2}))
        .await;
    assert_eq!(v, json!({"Success": true, "Message": null}));
    let t = e.json("/payments/get", json!({"TransactionId": id2})).await;
    assert_eq!(
        t["Success"], false,
        "non-success states read as Success:false with a Model"
    );
    assert_eq!(t["Model"]["Status"], "Cancelled");
    let v = e
        .json(
            "/payments/refund",
            json!({"TransactionId": id2, "Amount": 1}),
        )
        .await;
    assert_eq!(shape(&v), Shape::Malformed, "refund only from Completed");
    // Ledger.
    let l = e.ledger("c-1").await;
    assert_eq!(l["completed_count"], 1);
    assert_eq!(l["completed_amount"], "60.00");
    assert_eq!(l["refunded_amount_minor"], 6000);
}

#[tokio::test]
async fn find_returns_the_latest_transaction_for_an_invoice() {
    let e = start().await;
    let v = e.json("/payments/find", json!({"InvoiceId": "nope"})).await;
    assert_eq!(v, json!({"Success": false, "Message": "Not found"}));
    e.charge(&emu1(DECLINE_INSUFFICIENT), 10.0, "inv-f", None)
        .await;
    let v = e
        .json("/payments/find", json!({"InvoiceId": "inv-f"}))
        .await;
    assert_eq!(shape(&v), Shape::Declined);
    let ok = e.charge(&emu1(NO_3DS_SUCCESS), 10.0, "inv-f", None).await;
    let v = e
        .json("/payments/find", json!({"InvoiceId": "inv-f"}))
        .await;
    assert_eq!(shape(&v), Shape::Approved);
    assert_eq!(v["Model"]["TransactionId"], ok["Model"]["TransactionId"]);
    // v2 also sees refunds.
    let id = ok["Model"]["TransactionId"].as_i64().unwrap();
    let refund = e
        .json(
            "/payments/refund",
            json!({"TransactionId": id, "Amount": 1}),
        )
        .await;
    let v = e
        .json("/v2/payments/find", json!({"InvoiceId": "inv-f"}))
        .await;
    assert_eq!(
        v["Model"]["TransactionId"],
        refund["Model"]["TransactionId"]
    );
    let v = e
        .json("/payments/find", json!({"InvoiceId": "inv-f"}))
        .await;
    assert_eq!(v["Model"]["TransactionId"], id);
}

#[tokio::test]
async fn lists() {
    let e = start().await;
    e.charge(&emu1(NO_3DS_SUCCESS), 1.0, "l-1", None).await;
    e.charge(&emu1(DECLINE_INSUFFICIENT), 2.0, "l-2", None)
        .await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let v = e
        .json("/payments/list", json!({"Date": today, "TimeZone": "UTC"}))
        .await;
    assert_eq!(v["Success"], true);
    assert_eq!(v["Model"].as_array().unwrap().len(), 2);
    let v = e
        .json("/payments/list", json!({"Date": "2001-01-01"}))
        .await;
    assert_eq!(v["Model"].as_array().unwrap().len(), 0);
    let v = e.json("/payments/list", json!({"Date": "nonsense"})).await;
    assert_eq!(shape(&v), Shape::Malformed);
    let v = e
        .json("/payments/list", json!({"Date": today, "TimeZone": "XYZ"}))
        .await;
    assert_eq!(shape(&v), Shape::Malformed);
    let from = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let to = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let v = e
        .json(
            "/v2/payments/list",
            json!({"CreatedDateGte": from, "CreatedDateLte": to, "PageNumber": 1}),
        )
        .await;
    let items = v["Model"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items[0]["TransactionId"].as_i64() < items[1]["TransactionId"].as_i64(),
        "oldest first"
    );
    let v = e.json("/v2/payments/list", json!({"CreatedDateGte": from, "CreatedDateLte": to, "PageNumber": 1, "Statuses": ["Declined"]})).await;
    assert_eq!(v["Model"].as_array().unwrap().len(), 1);
    let v = e
        .json(
            "/v2/payments/list",
            json!({"CreatedDateGte": from, "CreatedDateLte": to, "PageNumber": 2}),
        )
        .await;
    assert_eq!(v["Model"].as_array().unwrap().len(), 0);
    let v = e
        .json(
            "/v2/payments/list",
            json!({"CreatedDateGte": from, "CreatedDateLte": to, "PageNumber": 0}),
        )
        .await;
    assert_eq!(shape(&v), Shape::Malformed);
}

#[tokio::test]
async fn subscriptions_are_answered_not_404() {
    let e = start().await;
    for p in [
        "/subscriptions/create",
        "/subscriptions/get",
        "/subscriptions/find",
        "/subscriptions/update",
        "/subscriptions/cancel",
    ] {
        let v = e.json(p, json!({"Id": "sc_x"})).await;
        assert_eq!(v["Success"], false);
        assert!(
            v["Message"]
                .as_str()
                .unwrap()
                .contains("not supported by this emulator"),
            "{v}"
        );
    }
}

#[tokio::test]
async fn cryptograms_are_single_use_and_all_layouts_work() {
    let e = start().await;
    for packet in [
        gateway_emulator::cryptogram::emu1_once(NO_3DS_SUCCESS, 12, 35, "123", None),
        gateway_emulator::cryptogram::legacy(NO_3DS_SUCCESS, 12, 35),
        gateway_emulator::cryptogram::sdk_json(NO_3DS_SUCCESS, 12, 35),
    ] {
        let v = e.charge(&packet, 1.0, "s-1", None).await;
        assert_eq!(shape(&v), Shape::Approved);
        let v = e.charge(&packet, 1.0, "s-2", None).await;
        assert_eq!(shape(&v), Shape::Declined, "{packet}");
        assert_eq!(
            v["Model"]["ReasonCode"],
            gateway_emulator::api::REUSED_CRYPTOGRAM_CODE
        );
        assert_eq!(v["Model"]["Reason"], "InvalidTransaction");
    }
    // A plain EMU1 packet is a reusable test input.
    let plain = emu1(NO_3DS_SUCCESS);
    assert_eq!(
        shape(&e.charge(&plain, 1.0, "s-2", None).await),
        Shape::Approved
    );
    assert_eq!(
        shape(&e.charge(&plain, 1.0, "s-2", None).await),
        Shape::Approved
    );
    // Legacy and SDK layouts pick the card from the header.
    let v = e
        .charge(
            &gateway_emulator::cryptogram::legacy(DECLINE_INSUFFICIENT, 12, 35),
            1.0,
            "s-3",
            None,
        )
        .await;
    assert_eq!(v["Model"]["ReasonCode"], 5051);
    let v = e
        .charge(
            &gateway_emulator::cryptogram::sdk_json(MC_NO_3DS_SUCCESS, 1, 2034),
            1.0,
            "s-4",
            None,
        )
        .await;
    assert_eq!(shape(&v), Shape::Approved);
    assert_eq!(v["Model"]["CardType"], "MasterCard");
    // The doc sample header has a past expiry: 5054.
    let v = e.charge("01492500008719030128SM", 1.0, "s-5", None).await;
    assert_eq!(v["Model"]["ReasonCode"], 5054);
    // Scenario overrides.
    use gateway_emulator::cryptogram::{emu1 as mk, Scenario};
    let v = e
        .charge(
            &mk(NO_3DS_SUCCESS, 1, 35, "123", Some(Scenario::Decline(5005))),
            1.0,
            "s-6",
            None,
        )
        .await;
    assert_eq!(v["Model"]["ReasonCode"], 5005);
    assert_eq!(v["Model"]["Reason"], "DoNotHonor");
    let v = e
        .charge(
            &mk(VISA_3DS_SUCCESS, 1, 35, "123", Some(Scenario::Approve)),
            1.0,
            "s-7",
            None,
        )
        .await;
    assert_eq!(shape(&v), Shape::Approved, "approve skips 3-DS");
    let v = e
        .charge(
            &mk(NO_3DS_SUCCESS, 1, 35, "123", Some(Scenario::ThreeDs)),
            1.0,
            "s-8",
            None,
        )
        .await;
    assert_eq!(shape(&v), Shape::ThreeDs);
    let r = e
        .req("/payments/cards/charge")
        .json(&json!({"Amount": 1, "IpAddress": "1.1.1.1", "CardCryptogramPacket": mk(NO_3DS_SUCCESS, 1, 35, "123", Some(Scenario::ServerError))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    // Luhn-invalid unknown card.
    let v = e
        .charge("EMU1:4000000000000001:12/35:123", 1.0, "s-9", None)
        .await;
    assert_eq!(v["Model"]["ReasonCode"], 5014);
}

#[tokio::test]
async fn expired_card_is_declined_5054() {
    let e = start().await;
    let v = e
        .charge(
            &gateway_emulator::cryptogram::emu1(NO_3DS_SUCCESS, 1, 2020, "123", None),
            1.0,
            "x-1",
            None,
        )
        .await;
    assert_eq!(shape(&v), Shape::Declined);
    assert_eq!(v["Model"]["ReasonCode"], 5054);
    assert_eq!(v["Model"]["Reason"], "ExpiredCard");
}

#[tokio::test]
async fn concurrency_limit_answers_429() {
    let mut s = gateway_emulator::Settings::for_tests();
    s.max_concurrent_per_terminal = 2;
    let e = start_with(s).await;
    e.control_post(
        "/_emulator/faults",
        json!({"kind": "latency_ms", "latency_ms": 400, "paths": ["/test"]}),
    )
    .await;
    let futs: Vec<_> = (0..5)
        .map(|_| e.req("/test").json(&json!({})).send())
        .collect();
    let results = futures::future::join_all(futs).await;
    let codes: Vec<u16> = results
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 2, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 3, "{codes:?}");
}

#[tokio::test]
async fn notifications_settings_and_docs() {
    let e = start().await;
    let v = e
        .json(
            "/site/notifications/pay/update",
            json!({"IsEnabled": true, "Address": "http://127.0.0.1:1/pay"}),
        )
        .await;
    assert_eq!(v["Success"], true);
    let v = e.json("/site/notifications/Pay/get", json!({})).await;
    assert_eq!(v["Model"]["IsEnabled"], true);
    assert_eq!(v["Model"]["Address"], "http://127.0.0.1:1/pay");
    let hooks = e.control_get("/_emulator/webhooks").await;
    assert_eq!(hooks.as_array().unwrap().len(), 1);
    let html = e
        .http
        .get(e.url("/api/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("4111111111111111") && html.contains("EMU1:"));
    assert!(!html.contains("<script src"), "works offline");
    let spec = e.control_get("/api/openapi.json").await;
    assert!(spec["paths"]["/payments/tokens/charge"].is_object());
    let r = e
        .req("/payments/nonexistent")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["Success"], false);
}
