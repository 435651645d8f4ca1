//! The 3-D Secure first payment in a real browser. Headless Chromium (Debian's `chromium`,
//! installed by `scripts/test.sh` through `scripts/install-tools.sh --with-chromium`) opens a
//! merchant checkout page that auto-posts MD/PaReq/TermUrl to the gateway emulator's ACS page,
//! the test clicks "Confirm" there (a DOM click in the page, over the Chrome DevTools Protocol),
//! and the browser follows the ACS form post to the TermUrl and its 303 to the frontend result
//! page. Then the subscription must be active with exactly one charge and access granted.
//!
//! Everything runs on 127.0.0.1; the browser flags keep Chromium from reaching for the network.

mod common;

use base64::Engine as _;
use billing_proto::billing::v1::start_subscription_response::Outcome;
use billing_proto::billing::v1::ThreeDsChallenge;
use common::*;
use futures::{SinkExt, StreamExt};
use gateway_emulator::cards;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const CHROMIUM: &str = "/usr/bin/chromium";
/// From launching the browser to landing on the result page.
const BROWSER_DEADLINE: Duration = Duration::from_secs(30);
/// One DevTools call (bounded further by the deadline).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// What the test reads from the page on every poll.
const PAGE_STATE_JS: &str = r#"(() => ({
  href: location.href,
  ready: document.readyState,
  title: document.title,
  confirm: !!document.querySelector('#confirm button'),
  status: document.querySelector('#result')?.dataset.status ?? null,
  subscription: document.querySelector('#subscription')?.textContent ?? null,
  text: (document.body ? document.body.innerText : '').slice(0, 2000),
}))()"#;

fn challenge(o: Option<Outcome>) -> ThreeDsChallenge {
    match o {
        Some(Outcome::ThreeDs(c)) => c,
        other => panic!("expected a 3-D Secure challenge, got {other:?}"),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The merchant's checkout page after StartSubscription answered with a challenge: a form to the
/// ACS carrying MD, PaReq and TermUrl, submitted on load (with a button for browsers without JS).
fn merchant_page(c: &ThreeDsChallenge) -> String {
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Merchant checkout</title></head>\
<body onload=\"document.forms[0].submit()\"><p>Redirecting you to your bank for 3-D Secure…</p>\
<form method=\"POST\" action=\"{acs}\">\
<input type=\"hidden\" name=\"MD\" value=\"{md}\">\
<input type=\"hidden\" name=\"PaReq\" value=\"{pa_req}\">\
<input type=\"hidden\" name=\"TermUrl\" value=\"{term}\">\
<noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
        acs = esc(&c.acs_url),
        md = esc(&c.md),
        pa_req = esc(&c.pa_req),
        term = esc(&c.term_url),
    )
}

/// Serves the merchant page on 127.0.0.1:0; returns its URL. The server lives as long as the
/// test's runtime.
async fn serve_merchant_page(html: String) -> String {
    let app = axum::Router::new().route(
        "/checkout",
        axum::routing::get(move || async move { axum::response::Html(html) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind merchant page");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/checkout")
}

/// Headless Chromium in a process group of its own, with a fresh profile. Dropping it (also
/// while a failed assertion unwinds) kills the whole group and reaps the browser.
struct Browser {
    child: Child,
    stderr_path: PathBuf,
    // Profile and stderr log; removed when dropped, after the processes are gone (fields drop
    // after `Drop::drop`).
    _dir: tempfile::TempDir,
}

impl Browser {
    fn launch(url: &str) -> Browser {
        assert!(
            std::path::Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: run scripts/test.sh, it installs chromium \
             (or `bash scripts/install-tools.sh --with-chromium`)"
        );
        let dir = tempfile::Builder::new()
            .prefix("browser-3ds-")
            .tempdir()
            .expect("temp dir");
        let profile = dir.path().join("profile");
        let stderr_path = dir.path().join("chromium.stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-quic",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // The wrapper script execs the browser, so its pid leads the group of all its
            // processes (zygotes, renderers, utilities).
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        Browser {
            child,
            stderr_path,
            _dir: dir,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The last lines of the browser's stderr, without the D-Bus noise of a machine without one.
    fn stderr_tail(&self) -> String {
        let all = self.stderr();
        let lines: Vec<&str> = all.lines().filter(|l| !l.contains("dbus")).collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The DevTools port, from the "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/.."
    /// line the browser prints to stderr.
    async fn devtools_port(&mut self, deadline: Instant) -> u16 {
        loop {
            if let Some(port) = self.stderr().lines().find_map(|l| {
                let rest = l.trim().strip_prefix("DevTools listening on ws://")?;
                let host_port = rest.split('/').next()?;
                host_port.rsplit(':').next()?.parse::<u16>().ok()
            }) {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "chromium exited ({status}) before DevTools was listening; stderr:\n{}",
                    self.stderr_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromium printed no \"DevTools listening on\" line in time; stderr:\n{}",
                self.stderr_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on the process group this test created (pgid == the child's pid).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        // Wait (briefly) for the rest of the group to be gone before the profile is removed.
        let until = Instant::now() + Duration::from_secs(5);
        // SAFETY: signal 0 only checks whether the group still has members.
        while unsafe { libc::kill(-pgid, 0) } == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A DevTools session on one page target.
struct Cdp {
    ws: Ws,
    next_id: u64,
}

impl Cdp {
    /// Waits for the page target (the tab the browser opened with the merchant URL) and connects
    /// to its websocket.
    async fn connect_page(http: &reqwest::Client, port: u16, deadline: Instant) -> Cdp {
        let list_url = format!("http://127.0.0.1:{port}/json/list");
        let mut last: String;
        let ws_url = loop {
            match http.get(&list_url).timeout(CALL_TIMEOUT).send().await {
                Ok(r) => match r.json::<Value>().await {
                    Ok(targets) => {
                        let page = targets.as_array().into_iter().flatten().find(|t| {
                            t["type"] == "page"
                                && !t["url"].as_str().unwrap_or("").starts_with("chrome")
                        });
                        if let Some(ws) = page.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
                            break ws.replacen("ws://localhost:", "ws://127.0.0.1:", 1);
                        }
                        last = targets.to_string();
                    }
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            assert!(
                Instant::now() < deadline,
                "no page target at {list_url}; last answer: {last}"
            );
            tokio::time::sleep(POLL).await;
        };
        let (ws, _) = tokio::time::timeout(
            CALL_TIMEOUT,
            tokio_tungstenite::connect_async(ws_url.as_str()),
        )
        .await
        .unwrap_or_else(|_| panic!("DevTools websocket {ws_url}: connect timed out"))
        .unwrap_or_else(|e| panic!("DevTools websocket {ws_url}: {e}"));
        Cdp { ws, next_id: 0 }
    }

    /// Sends one command and waits for its answer (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        let exchange = async {
            self.ws
                .send(Message::text(msg))
                .await
                .map_err(|e| format!("{method}: send: {e}"))?;
            loop {
                let frame = self
                    .ws
                    .next()
                    .await
                    .ok_or_else(|| format!("{method}: DevTools websocket closed"))?
                    .map_err(|e| format!("{method}: receive: {e}"))?;
                let Message::Text(text) = frame else { continue };
                let v: Value = serde_json::from_str(text.as_str())
                    .map_err(|e| format!("{method}: bad JSON {e}: {text}"))?;
                if v["id"].as_u64() != Some(id) {
                    continue;
                }
                return match v.get("error") {
                    Some(err) => Err(format!("{method}: {err}")),
                    None => Ok(v["result"].clone()),
                };
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("{method}: no answer within {CALL_TIMEOUT:?}")))
    }

    /// `Runtime.evaluate` in the page's current document, by value.
    async fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("exception: {ex}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls the page state until `done` accepts it (an `Err` from `done` fails at once).
    /// Evaluation errors while a navigation swaps documents are retried.
    async fn wait_for(
        &mut self,
        what: &str,
        deadline: Instant,
        mut done: impl FnMut(&Value) -> Result<bool, String>,
    ) -> Result<Value, String> {
        let mut last = Value::Null;
        let mut last_err = String::new();
        loop {
            match self.eval(PAGE_STATE_JS).await {
                Ok(state) => {
                    match done(&state) {
                        Ok(true) => return Ok(state),
                        Ok(false) => {}
                        Err(e) => return Err(format!("{what}: {e}\n  page: {}", describe(&state))),
                    }
                    last = state;
                }
                Err(e) => last_err = e,
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{what}: not reached within {BROWSER_DEADLINE:?}\n  page: {}\n  last evaluation error: {}",
                    describe(&last),
                    if last_err.is_empty() { "none" } else { &last_err }
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Saves a screenshot of the page under the target dir; returns where (or why not).
    async fn screenshot(&mut self, name: &str) -> String {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.png"));
        let shot = match self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await
        {
            Ok(r) => r,
            Err(e) => return format!("no screenshot: {e}"),
        };
        let Some(png) = shot["data"]
            .as_str()
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        else {
            return "no screenshot: no data".into();
        };
        match std::fs::write(&path, png) {
            Ok(()) => format!("screenshot: {}", path.display()),
            Err(e) => format!("no screenshot ({}): {e}", path.display()),
        }
    }
}

fn describe(state: &Value) -> String {
    if state.is_null() {
        return "(never read)".into();
    }
    format!(
        "url={} readyState={} title={:?} text={:?}",
        state["href"].as_str().unwrap_or("?"),
        state["ready"].as_str().unwrap_or("?"),
        state["title"].as_str().unwrap_or(""),
        state["text"].as_str().unwrap_or(""),
    )
}

/// Fails the test with the browser's side of the story: a screenshot and its stderr.
async fn fail(cdp: &mut Cdp, browser: &Browser, msg: String) -> ! {
    let shot = cdp.screenshot("browser_3ds-failure").await;
    panic!(
        "{msg}\n  {shot}\n  chromium stderr (tail):\n{}",
        browser.stderr_tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chromium_confirms_the_challenge_on_the_acs_page_and_lands_on_the_success_url() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    let c = challenge(
        h.start_subscription(start_request(
            &user,
            cards::VISA_3DS_SUCCESS,
            "req-browser-3ds",
        ))
        .await
        .expect("start")
        .outcome,
    );
    let merchant_url = serve_merchant_page(merchant_page(&c)).await;

    let deadline = Instant::now() + BROWSER_DEADLINE;
    let mut browser = Browser::launch(&merchant_url);
    let port = browser.devtools_port(deadline).await;
    let mut cdp = Cdp::connect_page(&h.http, port, deadline).await;

    // The merchant page auto-submits to the ACS: wait for the bank's page with its buttons.
    let acs_url = c.acs_url.clone();
    let on_acs = cdp
        .wait_for("the ACS page with a Confirm button", deadline, |s| {
            Ok(s["href"].as_str() == Some(acs_url.as_str())
                && s["ready"] == "complete"
                && s["confirm"] == true)
        })
        .await;
    let on_acs = match on_acs {
        Ok(s) => s,
        Err(e) => fail(&mut cdp, &browser, e).await,
    };
    let text = on_acs["text"].as_str().unwrap_or("");
    assert!(
        text.contains("Confirm") && text.contains("Fail") && !text.contains("auto-submit"),
        "ACS page: {}",
        describe(&on_acs)
    );
    // Nothing is paid before the click.
    let view = h.subscription_of(&user).await.unwrap();
    assert_eq!(view.payment_state, "awaiting_3ds");
    assert_eq!(h.completed_charges().await, 0);
    assert!(h.stand_ins.recorder.grants_for(&user).is_empty());

    // The cardholder clicks "Confirm": the ACS form posts MD + PaRes to the TermUrl.
    match cdp.eval("(() => { const b = document.querySelector('#confirm button'); b.click(); return b.textContent; })()").await {
        Ok(label) if label == "Confirm" => {}
        Ok(other) => fail(&mut cdp, &browser, format!("clicked an unexpected button: {other}")).await,
        Err(e) => fail(&mut cdp, &browser, format!("click on #confirm failed: {e}")).await,
    }

    // The TermUrl answers 303 to the frontend's success URL.
    let result_prefix = format!("{}/3ds/result?", h.http_base);
    let landed = cdp
        .wait_for("the frontend success URL", deadline, |s| {
            let href = s["href"].as_str().unwrap_or("");
            if !href.starts_with(&result_prefix) {
                return Ok(false);
            }
            if s["status"].is_null() || s["ready"] != "complete" {
                return Ok(false); // the result page is still loading (a slow machine)
            }
            if s["status"] != "paid" {
                return Err(format!(
                    "landed on a result page with status {}",
                    s["status"]
                ));
            }
            Ok(true)
        })
        .await;
    let landed = match landed {
        Ok(s) => s,
        Err(e) => fail(&mut cdp, &browser, e).await,
    };
    let href = landed["href"].as_str().unwrap();
    assert!(
        href.contains("status=paid")
            && href.contains(&format!("subscription_id={}", c.subscription_id)),
        "{href}"
    );
    assert_eq!(
        landed["subscription"].as_str(),
        Some(c.subscription_id.as_str()),
        "{}",
        describe(&landed)
    );
    assert_eq!(
        landed["title"],
        "Payment confirmed",
        "{}",
        describe(&landed)
    );

    // The billing side: active, charged once, access granted until the period end.
    let view = h.subscription_of(&user).await.unwrap();
    assert_eq!(view.status, "active", "{view:?}");
    assert_eq!(view.subscription_id, c.subscription_id);
    assert_eq!(h.completed_charges().await, 1);
    let until = h
        .stand_ins
        .recorder
        .access_until(&user)
        .expect("access granted");
    assert_eq!(Some(until), view.current_period_end.map(|t| t.seconds));

    drop(cdp);
    drop(browser);
}
