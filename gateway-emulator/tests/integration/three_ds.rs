use crate::common::*;
use gateway_emulator::cards::*;
use serde_json::{json, Value};

fn hidden(html: &str, form_id: &str, name: &str) -> String {
    let form = &html[html.find(&format!("id=\"{form_id}\"")).expect("form")..];
    let needle = format!("name=\"{name}\" value=\"");
    let start = form.find(&needle).expect("field") + needle.len();
    let end = form[start..].find('"').unwrap();
    form[start..start + end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

async fn acs_page(e: &Emu, v: &Value, term_url: &str) -> String {
    let m = &v["Model"];
    let acs = m["AcsUrl"].as_str().unwrap();
    assert!(acs.starts_with(&e.base), "AcsUrl is on the emulator: {acs}");
    let md = m["TransactionId"].to_string();
    let r = e
        .http
        .post(acs)
        .form(&[
            ("MD", md.as_str()),
            ("PaReq", m["PaReq"].as_str().unwrap()),
            ("TermUrl", term_url),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    r.text().await.unwrap()
}

#[tokio::test]
async fn three_ds_round_trip_through_the_acs_page() {
    let e = start().await;
    let v = e
        .charge(&emu1(VISA_3DS_SUCCESS), 100.0, "3ds-1", Some("acc"))
        .await;
    assert_eq!(shape(&v), Shape::ThreeDs);
    let pa_req = v["Model"]["PaReq"].as_str().unwrap();
    assert!(pa_req.starts_with("+/"));
    use base64::Engine as _;
    let decoded: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(&pa_req[2..])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(decoded["FirstSix"], "424242");
    assert_eq!(v["Model"]["ThreeDsCallbackId"].as_str().unwrap().len(), 32);

    let html = acs_page(&e, &v, "https://merchant.example/3ds-return").await;
    assert!(
        html.contains(">Confirm<") && html.contains(">Fail<"),
        "{html}"
    );
    assert!(html.contains("action=\"https://merchant.example/3ds-return\""));
    assert!(
        !html.contains("onload"),
        "waits for a click without auto-submit"
    );
    let md = hidden(&html, "confirm", "MD");
    let pares_ok = hidden(&html, "confirm", "PaRes");
    let pares_fail = hidden(&html, "fail", "PaRes");
    let id = v["Model"]["TransactionId"].as_i64().unwrap();
    assert_eq!(md, id.to_string());

    // A PaRes from another transaction is rejected.
    let other = e
        .charge(&emu1(VISA_3DS_SUCCESS), 1.0, "3ds-other", None)
        .await;
    let other_id = other["Model"]["TransactionId"].as_i64().unwrap();
    let r = e
        .json(
            "/payments/cards/post3ds",
            json!({"TransactionId": other_id, "PaRes": pares_ok}),
        )
        .await;
    assert_eq!(shape(&r), Shape::Malformed);
    assert!(r["Message"].as_str().unwrap().contains("PaRes"));
    assert_ne!(pares_ok, pares_fail);

    // The TermUrl receives MD + PaRes as a form; the merchant calls post3ds (legacy path here).
    let r = e
        .form(
            "/payments/post3ds",
            &[("TransactionId", &md), ("PaRes", &pares_ok)],
        )
        .await;
    assert_eq!(shape(&r), Shape::Approved);
    assert_eq!(r["Model"]["Status"], "Completed");
    assert!(
        r["Model"]["Token"].as_str().unwrap().starts_with("tk_"),
        "token issued after 3-DS"
    );
    // Repeating post3ds answers with the final state, without charging again.
    let r2 = e
        .json(
            "/payments/cards/post3ds",
            json!({"TransactionId": id, "PaRes": pares_ok}),
        )
        .await;
    assert_eq!(r2["Model"]["TransactionId"], id);
    assert_eq!(e.ledger("3ds-1").await["completed_count"], 1);
}

#[tokio::test]
async fn acs_fail_button_declines_5206_and_two_stage_3ds_authorizes() {
    let e = start().await;
    let v = e.charge(&emu1(MC_3DS_SUCCESS), 10.0, "3ds-f", None).await;
    let html = acs_page(&e, &v, "http://127.0.0.1:9/ret").await;
    let r = e
        .json("/payments/cards/post3ds", json!({"TransactionId": v["Model"]["TransactionId"], "PaRes": hidden(&html, "fail", "PaRes")}))
        .await;
    assert_eq!(shape(&r), Shape::Declined);
    assert_eq!(r["Model"]["ReasonCode"], 5206);

    let v = e.json("/payments/cards/auth", json!({"Amount": 5, "IpAddress": "1.1.1.1", "CardCryptogramPacket": emu1(MIR_3DS_SUCCESS)})).await;
    assert_eq!(shape(&v), Shape::ThreeDs);
    let html = acs_page(&e, &v, "http://127.0.0.1:9/ret").await;
    let r = e
        .json("/payments/cards/post3ds", json!({"TransactionId": v["Model"]["TransactionId"], "PaRes": hidden(&html, "confirm", "PaRes")}))
        .await;
    assert_eq!(r["Model"]["Status"], "Authorized");

    // 3ds-fail scenario declines even on Confirm.
    let p = gateway_emulator::cryptogram::emu1(
        NO_3DS_SUCCESS,
        1,
        35,
        "123",
        Some(gateway_emulator::cryptogram::Scenario::ThreeDsFail),
    );
    let v = e.charge(&p, 1.0, "3ds-sc", None).await;
    let html = acs_page(&e, &v, "http://127.0.0.1:9/ret").await;
    let r = e
        .json("/payments/cards/post3ds", json!({"TransactionId": v["Model"]["TransactionId"], "PaRes": hidden(&html, "confirm", "PaRes")}))
        .await;
    assert_eq!(r["Model"]["ReasonCode"], 5206);
}

#[tokio::test]
async fn auto_submit_mode_and_expiry() {
    let mut s = gateway_emulator::Settings::for_tests();
    s.acs_auto_submit = true;
    s.three_ds_ttl = std::time::Duration::from_millis(300);
    let e = start_with(s).await;
    let v = e.charge(&emu1(VISA_3DS_SUCCESS), 10.0, "3ds-a", None).await;
    let html = acs_page(&e, &v, "http://127.0.0.1:9/ret").await;
    assert!(
        html.contains("onload=\"document.getElementById('confirm').submit()\""),
        "{html}"
    );
    // Abandoned: declined after the TTL.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let id = v["Model"]["TransactionId"].as_i64().unwrap();
    let t = e.json("/payments/get", json!({"TransactionId": id})).await;
    assert_eq!(t["Model"]["Status"], "Declined");
    assert_eq!(t["Model"]["ReasonCode"], 5206);
    let r = e
        .json(
            "/payments/cards/post3ds",
            json!({"TransactionId": id, "PaRes": hidden(&html, "confirm", "PaRes")}),
        )
        .await;
    assert_eq!(r["Model"]["Status"], "Declined", "too late");
    // ACS refuses a finished transaction.
    let r = e
        .http
        .post(v["Model"]["AcsUrl"].as_str().unwrap())
        .form(&[
            ("MD", id.to_string().as_str()),
            ("PaReq", ""),
            ("TermUrl", "http://x/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}
