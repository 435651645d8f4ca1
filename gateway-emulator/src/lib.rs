//! CloudPayments-compatible payment gateway emulator, for tests and local runs.
//!
//! Module map, from the edge inwards:
//! * `settings` ([`Settings`]): terminals, listen address, state file, 3-DS switches;
//! * [`server`]: [`App`] (`build` → `port` → `run_until_stopped`), the route table of the whole
//!   emulator, graceful shutdown;
//! * [`routing`]: routes and OpenAPI entries from one list (`operation!`, `endpoint!`,
//!   [`routing::Routes`]);
//! * [`api`]: the CloudPayments operation families together, and the 404 for unknown paths;
//! * [`pipeline`]: the stages in front of every operation: [`pipeline::auth`] →
//!   [`pipeline::limit`] (429) → [`pipeline::delivery`] → [`pipeline::body`] →
//!   [`pipeline::idempotency`] (`X-Request-ID`) → [`pipeline::faults`];
//! * [`ops`]: the operations: payments, 3-D Secure, confirm/void/refund, reads, notifications,
//!   subscriptions;
//! * [`acs`], [`control`], [`docs`]: the 3-DS page, the `/_emulator/` control API, and
//!   `/api/openapi.json` + `/api/docs` (generated from the route table);
//! * [`reply`], [`state`]: answers and their envelopes; what every handler shares;
//! * [`params`] / [`money`]: request parsing (case-insensitive keys, exact decimal amounts);
//! * [`cryptogram`] / [`cards`]: packet formats and the 15 official test cards;
//! * [`model`] / [`store`]: transactions, tokens, idempotency records, the state-file snapshot;
//! * [`faults`], [`webhooks`]: fault rules, notifications.

pub mod acs;
pub mod api;
pub mod cards;
pub mod control;
pub mod cryptogram;
pub mod docs;
mod error;
pub mod faults;
pub mod model;
pub mod money;
pub mod ops;
pub mod params;
pub mod pipeline;
pub mod reply;
pub mod routing;
pub mod server;
mod settings;
pub mod state;
pub mod store;
pub mod webhooks;

pub use error::Error;
pub use server::App;
pub use settings::{Settings, Terminal, DEFAULT_API_SECRET, DEFAULT_PUBLIC_ID};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An emulator running on the current tokio runtime; stops when dropped or on [`RunningEmulator::stop`].
pub struct RunningEmulator {
    port: u16,
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Shuts down gracefully and waits for the state file to be written.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Err(e)) => tracing::error!(error = %e, "emulator stopped with an error"),
                Err(e) => tracing::error!(error = %e, "emulator task failed"),
                Ok(Ok(())) => {}
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Builds the emulator and serves it in a background task.
pub async fn spawn(settings: Settings) -> Result<RunningEmulator, Error> {
    let app = App::build(settings).await?;
    let port = app.port();
    let base_url = app.base_url();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    Ok(RunningEmulator {
        port,
        base_url,
        stop: Some(tx),
        task: Some(task),
    })
}
