//! OpenAPI document (`/api/openapi.json`) and an offline docs page (`/api/docs`) rendered from it.

use crate::acs::esc;
use crate::cards;
use crate::server::AppState;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// `/api/*` routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/openapi.json", get(|| async { Json(openapi()) }))
        .route(
            "/api/docs",
            get(|| async { Html(docs_html()).into_response() }),
        )
        .route(
            "/",
            get(|| async { axum::response::Redirect::temporary("/api/docs") }),
        )
}

fn prop(t: &str, d: &str) -> Value {
    json!({"type": t, "description": d})
}

fn op(
    summary: &str,
    desc: &str,
    required: &[&str],
    props: &[(&str, Value)],
    response: &str,
) -> Value {
    let mut p = Map::new();
    for (k, v) in props {
        p.insert((*k).to_owned(), v.clone());
    }
    let schema = json!({"type": "object", "required": required, "properties": p});
    json!({
        "post": {
            "summary": summary,
            "description": desc,
            "security": [{"basic": []}],
            "requestBody": {"required": !required.is_empty(), "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema}
            }},
            "parameters": [{"name": "X-Request-ID", "in": "header", "required": false, "schema": {"type": "string"},
                "description": "Idempotency key: the first answer is replayed byte for byte for 1 hour (scope: terminal + path + key). A different body under the same key gets Success:false."}],
            "responses": {
                "200": {"description": response, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
                "401": {"description": "Missing or wrong Basic credentials"},
                "429": {"description": "Too many concurrent requests for the terminal, or an injected fault"},
                "500": {"description": "Injected fault only"}
            }
        }
    })
}

/// The OpenAPI 3.0 document.
pub fn openapi() -> Value {
    let amount = prop(
        "number",
        "Roubles (major units), at most 2 decimals, > 0; a JSON number or a string",
    );
    let currency = prop("string", "ISO code, default RUB");
    let txid = prop("integer", "TransactionId");
    let common = |extra: &[(&'static str, Value)]| -> Vec<(&'static str, Value)> {
        let mut v: Vec<(&'static str, Value)> = vec![
            ("Amount", amount.clone()),
            ("Currency", currency.clone()),
            (
                "InvoiceId",
                prop(
                    "string",
                    "Merchant order id; /payments/find returns the latest transaction with it",
                ),
            ),
            ("AccountId", prop("string", "Payer id; needed for a token")),
            ("Description", prop("string", "")),
            ("Email", prop("string", "")),
            (
                "JsonData",
                json!({"description": "Object or string; returned as a string"}),
            ),
            (
                "CultureName",
                prop(
                    "string",
                    "ru-RU (default) or en-US: language of CardHolderMessage",
                ),
            ),
        ];
        v.extend(extra.iter().cloned());
        v
    };
    let card_props = common(&[
        ("IpAddress", prop("string", "Payer IP")),
        ("CardCryptogramPacket", prop("string", "Legacy 01/02 packet, SDK base64 JSON packet, or EMU1:<pan>:<MM>/<YY>:<cvv>[:scenario]")),
        ("Name", prop("string", "Cardholder")),
        ("SaveCard", prop("boolean", "false suppresses the token")),
    ]);
    let token_props = common(&[
        (
            "Token",
            prop("string", "tk_ + 29 hex, issued by this terminal"),
        ),
        (
            "TrInitiatorCode",
            prop(
                "integer",
                "0 merchant-initiated (default), 1 cardholder-initiated",
            ),
        ),
        (
            "PaymentScheduled",
            prop("integer", "0 unscheduled (default), 1 scheduled"),
        ),
    ]);
    let mut paths = Map::new();
    let shapes = "Four shapes: malformed {Success:false, Message}; 3-DS {Success:false, Message:null, Model{TransactionId, PaReq, AcsUrl, ...}}; declined {Success:false, Message:null, Model{Status:Declined, ReasonCode≠0}}; approved {Success:true, Model{Status, ReasonCode:0}}";
    paths.insert(
        "/test".into(),
        op(
            "Ping",
            "Answers {Success:true, Message:<guid>}",
            &[],
            &[],
            "Success",
        ),
    );
    paths.insert(
        "/payments/cards/charge".into(),
        op(
            "One-stage cryptogram payment",
            shapes,
            &["Amount", "IpAddress", "CardCryptogramPacket"],
            &card_props,
            shapes,
        ),
    );
    paths.insert(
        "/payments/cards/auth".into(),
        op(
            "Two-stage cryptogram payment (→ Authorized)",
            shapes,
            &["Amount", "IpAddress", "CardCryptogramPacket"],
            &card_props,
            shapes,
        ),
    );
    let p3 = [
        ("TransactionId", txid.clone()),
        ("PaRes", prop("string", "From the ACS page")),
    ];
    paths.insert(
        "/payments/cards/post3ds".into(),
        op(
            "Finish 3-D Secure",
            "Approved or declined shape; 5206 when the ACS answer was Fail",
            &["TransactionId", "PaRes"],
            &p3,
            "Transaction",
        ),
    );
    paths.insert(
        "/payments/post3ds".into(),
        op(
            "Finish 3-D Secure (legacy path)",
            "Same as /payments/cards/post3ds",
            &["TransactionId", "PaRes"],
            &p3,
            "Transaction",
        ),
    );
    paths.insert(
        "/payments/tokens/charge".into(),
        op(
            "One-stage token payment",
            "Malformed, declined or approved shape (no 3-DS)",
            &["Amount", "AccountId", "Token"],
            &token_props,
            "Transaction",
        ),
    );
    paths.insert(
        "/payments/tokens/auth".into(),
        op(
            "Two-stage token payment",
            "Malformed, declined or approved shape",
            &["Amount", "AccountId", "Token"],
            &token_props,
            "Transaction",
        ),
    );
    let ta = [
        ("TransactionId", txid.clone()),
        ("Amount", amount.clone()),
        ("JsonData", json!({})),
    ];
    paths.insert(
        "/payments/confirm".into(),
        op(
            "Capture an Authorized payment (partial allowed)",
            "{Success:true, Message:null}",
            &["TransactionId", "Amount"],
            &ta,
            "Empty envelope",
        ),
    );
    paths.insert(
        "/payments/void".into(),
        op(
            "Cancel an Authorized payment",
            "{Success:true, Message:null}",
            &["TransactionId"],
            &[("TransactionId", txid.clone())],
            "Empty envelope",
        ),
    );
    paths.insert(
        "/payments/refund".into(),
        op(
            "Refund a Completed payment (full or partial)",
            "Model{TransactionId: new refund id}; the original shows Refunded:true",
            &["TransactionId", "Amount"],
            &ta,
            "Refund id",
        ),
    );
    paths.insert(
        "/payments/get".into(),
        op(
            "Read a transaction",
            "Success:false with a Model for non-success states",
            &["TransactionId"],
            &[("TransactionId", txid.clone())],
            "Transaction",
        ),
    );
    let inv = [("InvoiceId", prop("string", ""))];
    paths.insert(
        "/payments/find".into(),
        op(
            "Latest payment with an InvoiceId",
            "Approved or declined shape; {Success:false, Message:\"Not found\"}",
            &["InvoiceId"],
            &inv,
            "Transaction",
        ),
    );
    paths.insert(
        "/v2/payments/find".into(),
        op(
            "Latest transaction (refunds too) with an InvoiceId",
            "As /payments/find",
            &["InvoiceId"],
            &inv,
            "Transaction",
        ),
    );
    paths.insert(
        "/payments/list".into(),
        op(
            "Transactions of one day",
            "Model: [Transaction]",
            &["Date"],
            &[
                ("Date", prop("string", "yyyy-MM-dd")),
                ("TimeZone", prop("string", "UTC (default), MSK, ...")),
            ],
            "List",
        ),
    );
    paths.insert(
        "/v2/payments/list".into(),
        op(
            "Transactions in a period, 100 per page, oldest first",
            "Model: [Transaction]",
            &["CreatedDateGte", "CreatedDateLte", "PageNumber"],
            &[
                ("CreatedDateGte", prop("string", "yyyy-MM-ddTHH:mm:ss")),
                ("CreatedDateLte", prop("string", "yyyy-MM-ddTHH:mm:ss")),
                ("PageNumber", prop("integer", "≥ 1")),
                ("TimeZone", prop("string", "")),
                (
                    "Statuses",
                    json!({"type": "array", "items": {"type": "string"}}),
                ),
            ],
            "List",
        ),
    );
    paths.insert(
        "/payments/tokens/list".into(),
        op(
            "Saved cards",
            "Model: [{Token, AccountId, CardMask, ExpirationDateMonth, ExpirationDateYear}]",
            &[],
            &[("PageNumber", prop("integer", "default 1"))],
            "List",
        ),
    );
    paths.insert(
        "/subscriptions/create".into(),
        op(
            "Not supported",
            "Answers Success:false with an explanation",
            &[],
            &[],
            "Not supported",
        ),
    );
    json!({
        "openapi": "3.0.3",
        "info": {"title": "CloudPayments gateway emulator", "version": env!("CARGO_PKG_VERSION"),
            "description": "A CloudPayments-compatible API for tests and local runs. Every method is POST with a JSON or form body; keys are case-insensitive; responses are PascalCase JSON, HTTP 200 for every business outcome."},
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic", "description": "Public ID : API Secret"}},
            "schemas": {"Envelope": {"type": "object", "properties": {"Success": {"type": "boolean"}, "Message": {"type": "string", "nullable": true}, "Model": {"description": "Transaction, 3-DS challenge, list or absent"}}}}
        },
        "paths": paths
    })
}

fn docs_html() -> String {
    let spec = openapi();
    let mut ops = String::new();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, item) in paths {
            let post = &item["post"];
            let schema = &post["requestBody"]["content"]["application/json"]["schema"];
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let mut rows = String::new();
            if let Some(props) = schema["properties"].as_object() {
                for (name, p) in props {
                    rows.push_str(&format!(
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(name),
                        if required.contains(&name.as_str()) {
                            " *"
                        } else {
                            ""
                        },
                        esc(p["type"].as_str().unwrap_or("any")),
                        esc(p["description"].as_str().unwrap_or(""))
                    ));
                }
            }
            ops.push_str(&format!(
                "<section><h3><span class=\"m\">POST</span> <code>{}</code> — {}</h3><p>{}</p>{}</section>",
                esc(path),
                esc(post["summary"].as_str().unwrap_or("")),
                esc(post["description"].as_str().unwrap_or("")),
                if rows.is_empty() { String::new() } else { format!("<table><tr><th>Field</th><th>Type</th><th>Notes</th></tr>{rows}</table>") }
            ));
        }
    }
    let mut cards_rows = String::new();
    for c in cards::ALL.iter() {
        let o = |x: cards::Outcome| match x {
            cards::Outcome::Approve => "approved".to_owned(),
            cards::Outcome::Decline(code) => format!("declined {code}"),
        };
        cards_rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.pan,
            c.card_type.name(),
            if c.three_ds { "yes" } else { "no" },
            o(c.cryptogram),
            o(c.token)
        ));
    }
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>CloudPayments emulator API</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:24px auto;padding:0 16px;color:#222}}table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}code{{background:#f3f3f3;padding:1px 4px}}.m{{background:#1565c0;color:#fff;padding:2px 6px;border-radius:4px;font-size:13px}}section{{border-top:1px solid #eee;padding-top:8px}}</style></head><body>
<h1>CloudPayments gateway emulator</h1>
<p>Machine-readable spec: <a href="/api/openapi.json">/api/openapi.json</a>. Auth: HTTP Basic, Public ID : API Secret (default terminal <code>pk_test_emulator</code> : <code>emulator_secret</code>). Bodies: JSON or form; keys case-insensitive; answers PascalCase JSON with HTTP 200 for every business outcome.</p>
<h2>Test cards</h2><p>Any unexpired expiry date and any CVV. Other card numbers are approved without 3-D Secure; an expired card is declined 5054.</p>
<table><tr><th>Card</th><th>Scheme</th><th>3-DS</th><th>Cryptogram payment</th><th>Later token payments</th></tr>{cards_rows}</table>
<h2>Cryptograms</h2>
<ul><li>Legacy: <code>01</code>/<code>02</code> + first 6 + last 4 + <code>YYMM</code> + key version (2) + base64 body. The header picks the card; the body is ignored.</li>
<li>Mobile SDK: base64 of <code>{{"Type":"CloudCard","CardInfo":{{"FirstSixDigits","LastFourDigits","ExpDateYear","ExpDateMonth"}},...}}</code>.</li>
<li>Emulator-only: <code>EMU1:&lt;pan&gt;:&lt;MM&gt;/&lt;YY&gt;:&lt;cvv&gt;[:scenario]</code>, scenario = <code>approve</code>, <code>3ds</code>, <code>3ds-fail</code> (→5206), <code>decline-&lt;code&gt;</code>, <code>timeout</code>, <code>5xx</code>.</li>
<li>Every packet is single-use: a second payment with the same packet is declined with ReasonCode 5012 (InvalidTransaction).</li>
<li>Build one: <code>gateway-emulator cryptogram --card 4242424242424242 --scenario 3ds</code>.</li></ul>
<h2>3-D Secure</h2><p>The 3-DS answer carries <code>AcsUrl</code> = <code>/acs</code> on this emulator and a <code>PaReq</code>. POST the form fields <code>MD</code>, <code>PaReq</code>, <code>TermUrl</code> there; the page's Confirm/Fail buttons POST <code>MD</code> + <code>PaRes</code> to TermUrl; then call post3ds.</p>
<h2>Methods</h2>{ops}
<h2>Control API</h2><p>Under <code>/_emulator/</code>, no authentication: transactions, ledger, faults, webhooks, reset. See the crate README.</p>
</body></html>"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_page_is_offline() {
        let html = super::docs_html();
        assert!(!html.contains("<script src"), "no external scripts");
        assert!(!html.contains("cdn"), "no CDN");
        assert!(html.contains("4242424242424242"));
        assert!(html.contains("/payments/tokens/charge"));
    }
}
