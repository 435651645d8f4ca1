//! Nothing panics on any input: arbitrary bodies, content types and field values.

use crate::common::*;
use gateway_emulator::params::{BodyKind, Params};
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use serde_json::json;

fn exercise(p: &Params) {
    for k in [
        "Amount",
        "Currency",
        "TransactionId",
        "InvoiceId",
        "JsonData",
        "SaveCard",
        "CardCryptogramPacket",
    ] {
        let _ = p.opt_amount(k);
        let _ = p.opt_i64(k);
        let _ = p.opt_bool(k);
        let _ = p.opt_str(k);
        let _ = p.json_data();
    }
    if let Ok(Some(c)) = p.opt_str("CardCryptogramPacket") {
        let _ = gateway_emulator::cryptogram::parse(&c);
    }
}

proptest! {
    #[test]
    fn parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512), kind in 0..4u8) {
        let kind = [BodyKind::Json, BodyKind::Form, BodyKind::Missing, BodyKind::Other][kind as usize];
        if let Ok(p) = Params::parse(kind, &body) {
            exercise(&p);
        }
    }

    #[test]
    fn json_values_never_panic(amount in any::<f64>(), s in ".{0,40}", i in any::<i64>()) {
        let p = Params::from_pairs([("Amount", json!(amount)), ("TransactionId", json!(s.clone())), ("InvoiceId", json!(i)), ("CardCryptogramPacket", json!(s.clone())), ("JsonData", json!(s))]);
        exercise(&p);
    }

    #[test]
    fn cryptogram_parser_never_panics(s in "(EMU1:|01|02)?[0-9:/a-zA-Z+=-]{0,60}") {
        let _ = gateway_emulator::cryptogram::parse(&s);
    }

    #[test]
    fn amounts_round_trip_exactly(minor in 1i64..10_000_000_000) {
        let text = gateway_emulator::money::format_minor(minor);
        prop_assert_eq!(gateway_emulator::money::Minor::parse_decimal(&text).unwrap().0, minor);
        let f = gateway_emulator::money::Minor(minor).as_f64();
        prop_assert_eq!(gateway_emulator::money::Minor::from_f64(f).unwrap().0, minor);
    }
}

/// The same over HTTP: random bodies on every endpoint get a JSON answer, and the server stays up.
#[tokio::test]
async fn random_requests_over_http_never_break_the_server() {
    let e = start().await;
    let paths = [
        "/payments/cards/charge",
        "/payments/tokens/charge",
        "/payments/cards/post3ds",
        "/payments/confirm",
        "/payments/refund",
        "/payments/void",
        "/payments/get",
        "/payments/find",
        "/v2/payments/list",
        "/payments/list",
        "/payments/tokens/list",
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    });
    let strategy = (
        0..paths.len(),
        proptest::collection::vec(any::<u8>(), 0..200),
        prop_oneof![
            Just("application/json"),
            Just("application/x-www-form-urlencoded"),
            Just("text/plain"),
            Just("")
        ],
    );
    let mut cases = Vec::new();
    for _ in 0..200 {
        let v = strategy.new_tree(&mut runner).unwrap().current();
        cases.push(v);
    }
    // Structured but hostile JSON too.
    let hostile = [
        json!({"Amount": "1e400"}),
        json!({"Amount": 1e300, "TransactionId": 1.5e300}),
        json!({"TransactionId": "-9223372036854775808", "PaRes": "::::"}),
        json!({"Token": null, "AccountId": [], "Amount": {}}),
        json!({"CreatedDateGte": "9999-99-99", "CreatedDateLte": "x", "PageNumber": 9.9e18}),
    ];
    for (pi, body, ct) in cases {
        let mut r = e.req(paths[pi]).body(body);
        if !ct.is_empty() {
            r = r.header("Content-Type", ct);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let v: serde_json::Value = resp.json().await.unwrap();
        assert!(v["Success"].is_boolean());
    }
    for h in hostile {
        for p in paths {
            let resp = e.req(p).json(&h).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{p} {h}");
        }
    }
    assert_eq!(e.json("/test", json!({})).await["Success"], true);
}
