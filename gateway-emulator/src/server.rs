//! Application state, routing, the HTTP/1 server loop, background tasks and graceful shutdown.

use crate::api::{self, Op};
use crate::faults::Faults;
use crate::model::{webhook_date, Status, Transaction};
use crate::money::format_minor;
use crate::settings::{Settings, Terminal};
use crate::store::Store;
use crate::webhooks::{Kind, WebhookConfig, Webhooks};
use crate::Error;
use axum::extract::{Request, State};
use axum::routing::{any, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// Marker extension: close the connection instead of sending this response.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// A configured terminal and its live request count.
pub struct TerminalState {
    /// Credentials.
    pub terminal: Terminal,
    /// Requests in flight (for the 429 limit).
    pub inflight: AtomicUsize,
}

/// Shared by all handlers.
pub struct AppState {
    /// Terminals by Public ID.
    pub terminals: HashMap<String, Arc<TerminalState>>,
    /// Terminals by their exact `Authorization` header value (fast path).
    pub terminals_by_header: HashMap<Vec<u8>, Arc<TerminalState>>,
    /// All state.
    pub store: Arc<Store>,
    /// Fault rules.
    pub faults: Faults,
    /// Webhook sender and log.
    pub webhooks: Arc<Webhooks>,
    /// Public base URL (no trailing slash), used for `AcsUrl` and `TerminalUrl`.
    pub base_url: String,
    /// Per-terminal concurrency limit.
    pub max_concurrent: usize,
    /// 3-DS deadline.
    pub three_ds_ttl: Duration,
    /// ACS answers at once.
    pub acs_auto_submit: bool,
}

impl AppState {
    /// The webhook configured for a terminal and type.
    pub fn webhook_for(&self, public_id: &str, kind: Kind) -> Option<WebhookConfig> {
        self.store
            .webhooks
            .read()
            .iter()
            .find(|w| w.kind == kind && w.public_id == public_id)
            .cloned()
    }

    /// Sends a notification about `t` if one is configured.
    pub fn notify(&self, term: &TerminalState, kind: Kind, t: &Transaction) {
        if let Some(cfg) = self.webhook_for(&term.terminal.public_id, kind) {
            let fields = webhook_fields(kind, t, t.status == Status::Authorized);
            self.webhooks
                .send(cfg, term.terminal.api_secret.clone(), t.id, fields);
        }
    }
}

fn s(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// The form fields of a notification, in the documented order.
pub fn webhook_fields(kind: Kind, t: &Transaction, two_stage: bool) -> Vec<(&'static str, String)> {
    let amount = format_minor(t.amount_minor);
    let date = webhook_date(t.created_ms);
    let mut f: Vec<(&'static str, String)> = Vec::with_capacity(48);
    match kind {
        Kind::Refund => {
            f.push(("TransactionId", t.id.to_string()));
            f.push((
                "PaymentTransactionId",
                t.original_transaction_id.unwrap_or_default().to_string(),
            ));
            f.push(("Amount", amount));
            f.push(("DateTime", date));
            f.push(("OperationType", "Refund".into()));
            f.push(("InvoiceId", s(&t.invoice_id)));
            f.push(("AccountId", s(&t.account_id)));
            f.push(("Email", s(&t.email)));
            f.push(("Data", s(&t.json_data)));
            f.push(("Rrn", s(&t.rrn)));
            f.push(("CustomFields", String::new()));
            return f;
        }
        Kind::Cancel => {
            f.push(("TransactionId", t.id.to_string()));
            f.push(("Amount", amount));
            f.push(("DateTime", date));
            f.push(("InvoiceId", s(&t.invoice_id)));
            f.push(("AccountId", s(&t.account_id)));
            f.push(("Email", s(&t.email)));
            f.push(("Data", s(&t.json_data)));
            f.push(("Rrn", s(&t.rrn)));
            return f;
        }
        _ => {}
    }
    f.push(("TransactionId", t.id.to_string()));
    f.push(("Amount", amount.clone()));
    f.push(("Currency", t.currency.clone()));
    f.push(("PaymentAmount", amount));
    f.push(("PaymentCurrency", t.currency.clone()));
    f.push(("OperationType", "Payment".into()));
    f.push(("InvoiceId", s(&t.invoice_id)));
    f.push(("AccountId", s(&t.account_id)));
    f.push(("SubscriptionId", String::new()));
    f.push(("Name", s(&t.name)));
    f.push(("Email", s(&t.email)));
    f.push(("DateTime", date));
    f.push(("IpAddress", s(&t.ip_address)));
    f.push(("IpCountry", String::new()));
    f.push(("IpCity", String::new()));
    f.push(("IpRegion", String::new()));
    f.push(("IpDistrict", String::new()));
    f.push(("IpLatitude", String::new()));
    f.push(("IpLongitude", String::new()));
    f.push(("CardFirstSix", t.card.first_six.clone()));
    f.push(("CardLastFour", t.card.last_four.clone()));
    f.push(("CardType", t.card.card_type.name().into()));
    f.push(("CardExpDate", t.card.exp_text()));
    f.push(("Issuer", "CloudPayments".into()));
    f.push(("IssuerBankCountry", "RU".into()));
    f.push(("Description", s(&t.description)));
    f.push(("TestMode", "1".into()));
    match kind {
        Kind::Check => {
            f.push((
                "Status",
                if two_stage { "Authorized" } else { "Completed" }.into(),
            ));
            f.push(("Data", s(&t.json_data)));
            f.push(("CardProduct", String::new()));
            f.push(("PaymentMethod", String::new()));
        }
        Kind::Pay | Kind::Confirm => {
            f.push(("Status", t.status.name().into()));
            f.push(("GatewayName", "Test".into()));
            f.push(("AuthCode", s(&t.auth_code)));
            f.push(("Token", s(&t.token)));
            f.push(("Data", s(&t.json_data)));
            f.push(("TotalFee", "0.00".into()));
            f.push(("CardProduct", String::new()));
            f.push(("PaymentMethod", String::new()));
            f.push(("Rrn", s(&t.rrn)));
            f.push(("CustomFields", String::new()));
            f.push(("FallBackScenarioDeclinedTransactionId", String::new()));
            f.push(("VatAboveTotalFee", "0.00".into()));
            f.push(("ProcessorAndPartnerFee", "0.00".into()));
            f.push(("VatWithinProcessorFee", "0.00".into()));
        }
        Kind::Fail => {
            let (reason, _, _) = crate::model::reason(t.reason_code);
            f.push(("Status", "Declined".into()));
            f.push(("StatusCode", "5".into()));
            f.push(("Reason", reason.into()));
            f.push(("ReasonCode", t.reason_code.to_string()));
            f.push(("Token", s(&t.token)));
            f.push(("Data", s(&t.json_data)));
            f.push(("PaymentMethod", String::new()));
            f.push(("Rrn", String::new()));
            f.push(("CustomFields", String::new()));
            f.push(("FallBackScenarioDeclinedTransactionId", String::new()));
            f.push(("RetryAfter", String::new()));
            f.push(("ProviderMessage", String::new()));
        }
        Kind::Refund | Kind::Cancel => {}
    }
    f
}

fn op_route(op: Op) -> axum::routing::MethodRouter<Arc<AppState>> {
    post(move |st: State<Arc<AppState>>, req: Request| api::handle(st, op, req))
}

/// All routes.
pub fn router(state: Arc<AppState>) -> Router {
    let mut r = Router::new()
        .route("/test", op_route(Op::Test))
        .route("/payments/cards/charge", op_route(Op::CardsCharge))
        .route("/payments/cards/auth", op_route(Op::CardsAuth))
        .route("/payments/cards/post3ds", op_route(Op::Post3ds))
        .route("/payments/post3ds", op_route(Op::Post3ds))
        .route("/payments/tokens/charge", op_route(Op::TokensCharge))
        .route("/payments/tokens/auth", op_route(Op::TokensAuth))
        .route("/payments/confirm", op_route(Op::Confirm))
        .route("/payments/void", op_route(Op::Void))
        .route("/payments/refund", op_route(Op::Refund))
        .route("/payments/get", op_route(Op::Get))
        .route("/payments/find", op_route(Op::Find))
        .route("/v2/payments/find", op_route(Op::FindV2))
        .route("/payments/list", op_route(Op::List))
        .route("/v2/payments/list", op_route(Op::ListV2))
        .route("/payments/tokens/list", op_route(Op::TokensList))
        .route(
            "/site/notifications/{kind}/get",
            op_route(Op::NotificationsGet),
        )
        .route(
            "/site/notifications/{kind}/update",
            op_route(Op::NotificationsUpdate),
        );
    for p in ["create", "get", "find", "update", "cancel"] {
        r = r.route(&format!("/subscriptions/{p}"), op_route(Op::Subscriptions));
    }
    r.route(
        "/subscriptions/{*rest}",
        any(move |st: State<Arc<AppState>>, req: Request| api::handle(st, Op::Subscriptions, req)),
    )
    .merge(crate::acs::routes())
    .merge(crate::control::routes())
    .merge(crate::docs::routes())
    .fallback(api::not_found)
    .with_state(state)
}

/// A built (bound, not yet serving) emulator.
pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    state_file: Option<std::path::PathBuf>,
}

impl App {
    /// Loads state, binds the listener.
    pub async fn build(settings: Settings) -> Result<App, Error> {
        let terminals_cfg = if settings.terminals.is_empty() {
            vec![Terminal::default_terminal()]
        } else {
            settings.terminals.clone()
        };
        let mut terminals = HashMap::new();
        let mut by_header = HashMap::new();
        for t in terminals_cfg {
            use base64::Engine as _;
            let header = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", t.public_id, t.api_secret))
            );
            let ts = Arc::new(TerminalState {
                terminal: t.clone(),
                inflight: AtomicUsize::new(0),
            });
            if terminals.insert(t.public_id.clone(), ts.clone()).is_some() {
                return Err(Error::Settings(format!(
                    "terminal {} is configured twice",
                    t.public_id
                )));
            }
            by_header.insert(header.into_bytes(), ts);
        }
        let store = match &settings.state_file {
            Some(p) => Store::load(p)?,
            None => Store::default(),
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: settings.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: settings.listen,
            source,
        })?;
        let base_url = settings
            .public_base_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{addr}"));
        let state = Arc::new(AppState {
            terminals,
            terminals_by_header: by_header,
            store: Arc::new(store),
            faults: Faults::default(),
            webhooks: Arc::new(Webhooks::default()),
            base_url,
            max_concurrent: settings.max_concurrent_per_terminal.max(1),
            three_ds_ttl: settings.three_ds_ttl,
            acs_auto_submit: settings.acs_auto_submit,
        });
        Ok(App {
            listener,
            addr,
            state,
            state_file: settings.state_file,
        })
    }

    /// Bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT` of the bound listener.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a webhook target before serving (used by the `--webhook` flag).
    pub fn add_webhook(&self, cfg: WebhookConfig) {
        let mut hooks = self.state.store.webhooks.write();
        hooks.retain(|h| !(h.public_id == cfg.public_id && h.kind == cfg.kind));
        hooks.push(cfg);
    }

    /// Serves until `shutdown` resolves, then drains connections (≤ 5 s) and writes the state file.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let App {
            listener,
            state,
            state_file,
            ..
        } = self;
        let router = router(state.clone());
        let background = tokio::spawn(background(state.clone(), state_file.clone()));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let router = router.clone();
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let router = router.clone();
                        async move {
                            let resp = router.oneshot(req.map(axum::body::Body::new)).await.unwrap_or_else(|e| match e {});
                            if resp.extensions().get::<DropConnection>().is_some() {
                                return Err(std::io::Error::other("connection dropped on purpose"));
                            }
                            Ok(resp)
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 5 s; closing them");
        }
        background.abort();
        if let Some(path) = &state_file {
            let store = state.store.clone();
            let path = path.clone();
            tokio::task::spawn_blocking(move || store.save(&path, true))
                .await
                .map_err(|e| Error::Serve(std::io::Error::other(e)))??;
        }
        Ok(())
    }

    /// Shared state (tests and the control API).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }
}

async fn background(state: Arc<AppState>, state_file: Option<std::path::PathBuf>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        if n % 5 == 0 {
            let expired = state.store.sweep();
            for id in expired {
                if let Some(t) = state.store.get_txn(id) {
                    if let Some(term) = state.terminals.get(&t.public_id) {
                        state.notify(term, Kind::Fail, &t);
                    }
                }
            }
        }
        if let Some(path) = &state_file {
            let store = state.store.clone();
            let path = path.clone();
            match tokio::task::spawn_blocking(move || store.save(&path, false)).await {
                Ok(Err(e)) => tracing::error!(error = %e, "state snapshot failed"),
                Err(e) => tracing::error!(error = %e, "state snapshot task failed"),
                Ok(Ok(())) => {}
            }
        }
    }
}
