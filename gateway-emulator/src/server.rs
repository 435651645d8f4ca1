//! The server: [`App`] (`build` → `port` → `run_until_stopped`), the route table of the whole
//! emulator, the HTTP/1 connection loop, background tasks (3-DS expiry, snapshots) and graceful
//! shutdown.

use crate::faults::Faults;
use crate::reply::DropConnection;
use crate::routing::Routes;
use crate::settings::{Settings, Terminal};
use crate::state::{AppState, TerminalState};
use crate::store::Store;
use crate::webhooks::{Kind, WebhookConfig, Webhooks};
use crate::Error;
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

/// Every route the emulator serves: the CloudPayments API, the ACS page, the control API and
/// the docs.
pub fn routes() -> Routes {
    crate::api::routes()
        .merge(crate::acs::routes())
        .merge(crate::control::routes())
        .merge(crate::docs::routes())
}

/// The OpenAPI document of [`routes`], as served at `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().openapi(crate::docs::about())
}

/// The router; unknown paths get a CloudPayments-shaped 404.
pub fn router(state: Arc<AppState>) -> Router {
    routes()
        .into_router(&state)
        .fallback(crate::api::not_found)
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
        store.set_idempotency_ttl(settings.idempotency_ttl);
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
            faults: Faults::seeded(settings.fault_seed),
            webhooks: Arc::new(Webhooks::default()),
            base_url,
            max_concurrent: settings.max_concurrent_per_terminal.max(1),
            three_ds_ttl: settings.three_ds_ttl,
            acs_auto_submit: settings.acs_auto_submit,
            docs: crate::docs::render(&openapi()),
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
