//! The API documentation. `/api/openapi.json` is the OpenAPI document the route table generates
//! ([`crate::routing`]: every served route with its `#[utoipa::path]` entry), so it lists what
//! the emulator really serves. `/api/docs` is an offline HTML page (no scripts, no CDN) rendered
//! from that document, plus the test cards, cryptogram formats and the 3-D Secure flow. Both are
//! rendered once at start-up ([`render`]) and served from [`ApiDocs`].

use crate::acs::esc;
use crate::cards;
use crate::routing::{endpoint, Routes};
use crate::state::{ApiDocs, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde_json::Value;
use std::fmt::Write as _;
use std::sync::Arc;
use utoipa::OpenApi as _;

/// OpenAPI tag of the documentation routes.
const TAG: &str = "Docs";

/// Title, description and tags of the document; the routes add the rest.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "CloudPayments gateway emulator",
        description = "A CloudPayments-compatible API for tests and local runs. Every CloudPayments method is POST with a JSON or form body; keys match case-insensitively; answers are PascalCase JSON, with HTTP 200 for every business outcome (`Success:false` included). Amounts are decimal roubles."
    ),
    tags(
        (name = "CloudPayments", description = "The emulated API. HTTP Basic: Public ID : API Secret (default terminal `pk_test_emulator` : `emulator_secret`)."),
        (name = "3-D Secure ACS", description = "The bank's page a browser opens from `AcsUrl`; no authentication."),
        (name = "Control", description = "Inspect and steer the emulator (not CloudPayments); no authentication."),
        (name = "Docs", description = "This document and the page rendered from it.")
    )
)]
struct About;

/// The frame of the document (title, description, tags).
pub fn about() -> utoipa::openapi::OpenApi {
    About::openapi()
}

/// `/api/*` and `/` routes.
pub fn routes() -> Routes {
    Routes::default()
        .with(endpoint!(openapi_json))
        .with(endpoint!(docs_page))
        .with(endpoint!(root))
}

/// The OpenAPI 3.1 document of every route.
#[utoipa::path(get, path = "/api/openapi.json", tag = TAG,
    responses((status = 200, description = "This document", content_type = "application/json")))]
async fn openapi_json(State(st): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        st.docs.openapi_json.clone(),
    )
        .into_response()
}

/// The documentation as one HTML page that works offline.
#[utoipa::path(get, path = "/api/docs", tag = TAG,
    responses((status = 200, description = "The page", content_type = "text/html")))]
async fn docs_page(State(st): State<Arc<AppState>>) -> Html<String> {
    Html(st.docs.html.clone())
}

/// Redirects to `/api/docs`.
#[utoipa::path(get, path = "/", tag = TAG,
    responses((status = 307, description = "To /api/docs")))]
async fn root() -> Redirect {
    Redirect::temporary("/api/docs")
}

/// Serialises the document and renders the page from it.
pub fn render(doc: &utoipa::openapi::OpenApi) -> ApiDocs {
    let json = serde_json::to_vec(doc).unwrap_or_default();
    let value: Value = serde_json::from_slice(&json).unwrap_or_default();
    ApiDocs {
        openapi_json: Bytes::from(json),
        html: page(&value),
    }
}

/// The schema a `$ref` points to (or `s` itself).
fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match ref_name(s) {
        Some(name) => &doc["components"]["schemas"][name],
        None => s,
    }
}

fn ref_name(s: &Value) -> Option<&str> {
    s["$ref"].as_str()?.strip_prefix("#/components/schemas/")
}

/// A short type for a table cell: `string`, `integer | null`, `[Transaction]`, `A | B`.
fn type_name(s: &Value) -> String {
    if let Some(name) = ref_name(s) {
        return name.to_owned();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = s[key].as_array() {
            return parts.iter().map(type_name).collect::<Vec<_>>().join(" | ");
        }
    }
    let one = |t: &str| match t {
        "array" => format!("[{}]", type_name(&s["items"])),
        other => other.to_owned(),
    };
    match &s["type"] {
        Value::String(t) => one(t),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_owned(),
    }
}

/// Table rows (field, type, notes) of an object schema, flattening `allOf`.
fn field_rows(doc: &Value, schema: &Value, out: &mut String) {
    let schema = resolve(doc, schema);
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            field_rows(doc, part, out);
        }
        return;
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, p) in schema["properties"].as_object().into_iter().flatten() {
        let _ = write!(
            out,
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            if required.contains(&name.as_str()) {
                " *"
            } else {
                ""
            },
            esc(&type_name(p)),
            esc(p["description"].as_str().unwrap_or(""))
        );
    }
}

fn table(head: &str, rows: &str) -> String {
    if rows.is_empty() {
        return String::new();
    }
    format!("<table><tr>{head}</tr>{rows}</table>")
}

/// One operation: summary, parameters, body fields, answers.
fn operation(doc: &Value, method: &str, path: &str, op: &Value) -> String {
    let mut params = String::new();
    for p in op["parameters"].as_array().into_iter().flatten() {
        let _ = write!(
            params,
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
            esc(p["name"].as_str().unwrap_or("")),
            if p["required"] == true { " *" } else { "" },
            esc(p["in"].as_str().unwrap_or("")),
            esc(p["description"].as_str().unwrap_or(""))
        );
    }
    let body = &op["requestBody"];
    let mut fields = String::new();
    if let Some((_, content)) = body["content"].as_object().and_then(|c| c.iter().next()) {
        field_rows(doc, &content["schema"], &mut fields);
    }
    let mut answers = String::new();
    for (status, r) in op["responses"].as_object().into_iter().flatten() {
        let schema = r["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|c| type_name(&c["schema"]))
            .filter(|t| t != "any")
            .map(|t| format!(" → <code>{}</code>", esc(&t)))
            .unwrap_or_default();
        let _ = write!(
            answers,
            "<li><b>{}</b> {}{schema}</li>",
            esc(status),
            esc(r["description"].as_str().unwrap_or(""))
        );
    }
    format!(
        "<section><h3><span class=\"m\">{}</span> <code>{}</code> — {}</h3><p>{}</p>{}{}{}<ul>{answers}</ul></section>",
        method.to_ascii_uppercase(),
        esc(path),
        esc(op["summary"].as_str().unwrap_or("")),
        esc(op["description"].as_str().unwrap_or("")),
        table("<th>Parameter</th><th>In</th><th>Notes</th>", &params),
        body["description"]
            .as_str()
            .map(|d| format!("<p>Body: {}</p>", esc(d)))
            .unwrap_or_default(),
        table("<th>Field</th><th>Type</th><th>Notes</th>", &fields),
    )
}

/// The methods, grouped by tag in the document's order.
fn methods(doc: &Value) -> String {
    let mut tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or("").to_owned(),
                t["description"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut sections: Vec<String> = vec![String::new(); tags.len()];
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let tag = op["tags"][0].as_str().unwrap_or("");
            let i = match tags.iter().position(|(name, _)| name == tag) {
                Some(i) => i,
                None => {
                    tags.push((tag.to_owned(), String::new()));
                    sections.push(String::new());
                    tags.len() - 1
                }
            };
            sections[i].push_str(&operation(doc, method, path, op));
        }
    }
    let mut out = String::new();
    for ((name, description), ops) in tags.iter().zip(sections) {
        let _ = write!(
            out,
            "<h2>{}</h2><p>{}</p>{ops}",
            esc(name),
            esc(description)
        );
    }
    out
}

/// The component schemas (answers and bodies), field by field.
fn schemas(doc: &Value) -> String {
    let mut out = String::new();
    for (name, s) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let mut rows = String::new();
        field_rows(doc, s, &mut rows);
        let shape = if rows.is_empty() {
            format!("<p>{}</p>", esc(&type_name(s)))
        } else {
            table("<th>Field</th><th>Type</th><th>Notes</th>", &rows)
        };
        let _ = write!(
            out,
            "<section><h3 id=\"{0}\">{0}</h3><p>{1}</p>{shape}</section>",
            esc(name),
            esc(s["description"].as_str().unwrap_or(""))
        );
    }
    out
}

fn cards_table() -> String {
    let o = |x: cards::Outcome| match x {
        cards::Outcome::Approve => "approved".to_owned(),
        cards::Outcome::Decline(code) => format!("declined {code}"),
    };
    let mut rows = String::new();
    for c in cards::ALL.iter() {
        let _ = write!(
            rows,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.pan,
            c.card_type.name(),
            if c.three_ds { "yes" } else { "no" },
            o(c.cryptogram),
            o(c.token)
        );
    }
    rows
}

fn page(doc: &Value) -> String {
    let title = esc(doc["info"]["title"].as_str().unwrap_or(""));
    let intro = esc(doc["info"]["description"].as_str().unwrap_or(""));
    let (cards_rows, methods, schemas) = (cards_table(), methods(doc), schemas(doc));
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:24px auto;padding:0 16px;color:#222}}table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}code{{background:#f3f3f3;padding:1px 4px}}.m{{background:#1565c0;color:#fff;padding:2px 6px;border-radius:4px;font-size:13px}}section{{border-top:1px solid #eee;padding-top:8px}}</style></head><body>
<h1>{title}</h1>
<p>{intro}</p>
<p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1, generated from the emulator's route table). Fields marked * are required.</p>
<h2>Test cards</h2><p>Any unexpired expiry date and any CVV. Other card numbers are approved without 3-D Secure; an expired card is declined 5054.</p>
<table><tr><th>Card</th><th>Scheme</th><th>3-DS</th><th>Cryptogram payment</th><th>Later token payments</th></tr>{cards_rows}</table>
<h2>Cryptograms</h2>
<ul><li>Legacy: <code>01</code>/<code>02</code> + first 6 + last 4 + <code>YYMM</code> + key version (2) + base64 body. The header picks the card; the body is ignored.</li>
<li>Mobile SDK: base64 of <code>{{"Type":"CloudCard","CardInfo":{{"FirstSixDigits","LastFourDigits","ExpDateYear","ExpDateMonth"}},...}}</code>.</li>
<li>Emulator-only: <code>EMU1:&lt;pan&gt;:&lt;MM&gt;/&lt;YY&gt;:&lt;cvv&gt;[:scenario]</code>, scenario = <code>approve</code>, <code>3ds</code>, <code>3ds-fail</code> (→5206), <code>decline-&lt;code&gt;</code>, <code>timeout</code>, <code>5xx</code>.</li>
<li>Legacy and SDK packets, and EMU1 packets with a nonce, are single-use: a second payment with the same packet is declined with ReasonCode 5012 (InvalidTransaction).</li>
<li>Build one: <code>gateway-emulator cryptogram --card 4242424242424242 --scenario 3ds</code>.</li></ul>
<h2>3-D Secure</h2><p>The 3-DS answer carries <code>AcsUrl</code> = <code>/acs</code> on this emulator and a <code>PaReq</code>. POST the form fields <code>MD</code>, <code>PaReq</code>, <code>TermUrl</code> there; the page's Confirm/Fail buttons POST <code>MD</code> + <code>PaRes</code> to TermUrl; then call post3ds.</p>
{methods}
<h2>Schemas</h2>{schemas}
</body></html>"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_page_is_offline() {
        let html = super::render(&crate::server::openapi()).html;
        assert!(!html.contains("<script src"), "no external scripts");
        assert!(!html.contains("cdn"), "no CDN");
        assert!(html.contains("4242424242424242"));
        assert!(html.contains("/payments/tokens/charge"));
    }
}
