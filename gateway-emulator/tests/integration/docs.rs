//! The OpenAPI document and the router come from one route table; these tests keep it so.

use crate::common::*;
use gateway_emulator::server;
use serde_json::Value;
use std::collections::BTreeSet;

/// (METHOD, path) of every operation in a document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn the_document_lists_every_served_route() {
    let routes = server::routes();
    let doc = serde_json::to_value(server::openapi()).unwrap();
    let mut served = BTreeSet::new();
    let mut undocumented = Vec::new();
    for r in routes.served() {
        match r.undocumented {
            None => served.extend(r.methods.iter().map(|m| (m.clone(), r.path.clone()))),
            Some(why) => undocumented.push((r.path.clone(), why)),
        }
    }
    assert_eq!(documented(&doc), served, "documented vs served");
    // The one route OpenAPI cannot describe; anything else undocumented is drift.
    let paths: Vec<&str> = undocumented.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/subscriptions/{*rest}"], "{undocumented:?}");
    for op in [
        "/test",
        "/payments/cards/charge",
        "/payments/cards/auth",
        "/payments/cards/post3ds",
        "/payments/post3ds",
        "/payments/tokens/charge",
        "/payments/tokens/auth",
        "/payments/confirm",
        "/payments/void",
        "/payments/refund",
        "/payments/get",
        "/payments/find",
        "/v2/payments/find",
        "/payments/list",
        "/v2/payments/list",
        "/payments/tokens/list",
        "/site/notifications/{Type}/get",
        "/site/notifications/{Type}/update",
        "/subscriptions/create",
    ] {
        let post = &doc["paths"][op]["post"];
        assert_eq!(post["security"][0]["basic"], Value::Array(vec![]), "{op}");
        for status in ["200", "401", "429", "500"] {
            assert!(post["responses"][status].is_object(), "{op} {status}");
        }
        let params = post["parameters"].as_array().expect("parameters");
        assert!(params.iter().any(|p| p["name"] == "X-Request-ID"), "{op}");
    }
    let body = &doc["paths"]["/payments/tokens/charge"]["post"]["requestBody"]["content"];
    assert!(
        body["application/json"].is_object()
            && body["application/x-www-form-urlencoded"].is_object()
    );
}

/// Puts a value into each `{param}` of a documented path.
fn concrete(path: &str) -> String {
    path.replace("{Type}", "Pay")
        .replace("{invoice_id}", "inv-1")
        .replace("{id}", "1")
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let e = start().await;
    let doc = e.control_get("/api/openapi.json").await;
    assert_eq!(doc, serde_json::to_value(server::openapi()).unwrap());
    let ops = documented(&doc);
    assert!(ops.len() > 40, "{}", ops.len());
    for (method, path) in ops {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = e
            .http
            .request(m, e.url(&concrete(&path)))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path}");
        assert!(
            !body.contains("Unknown API method"),
            "{method} {path} fell through to the 404 fallback"
        );
    }
}

#[tokio::test]
async fn docs_page_is_rendered_from_the_document() {
    let e = start().await;
    let html = e.page("/api/docs").await;
    let doc = e.control_get("/api/openapi.json").await;
    for (_, path) in documented(&doc) {
        assert!(html.contains(&path), "{path} missing from /api/docs");
    }
    for schema in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(html.contains(&format!("id=\"{schema}\"")), "{schema}");
    }
    assert!(html.contains("X-Request-ID") && html.contains("CardCryptogramPacket"));
}
