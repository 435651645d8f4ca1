//! What every request handler shares: the configured terminals, the store, fault rules, the
//! webhook sender and the rendered API documentation.
//!
//! It sits below the pipeline, the operations and the other routes, so all of them can take an
//! `Arc<AppState>` without importing the server that builds it.

use crate::faults::Faults;
use crate::model::{Status, Transaction};
use crate::settings::Terminal;
use crate::store::Store;
use crate::webhooks::{webhook_fields, Kind, WebhookConfig, Webhooks};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

/// A configured terminal and its live request count.
pub struct TerminalState {
    /// Credentials.
    pub terminal: Terminal,
    /// Requests in flight (for the 429 limit).
    pub inflight: AtomicUsize,
}

/// `/api/openapi.json` and `/api/docs`, rendered once at start-up from the route table.
#[derive(Debug, Clone, Default)]
pub struct ApiDocs {
    /// The OpenAPI document, serialised.
    pub openapi_json: Bytes,
    /// The offline HTML page.
    pub html: String,
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
    /// Per-terminal concurrency limit (at least 1).
    pub max_concurrent: usize,
    /// 3-DS deadline.
    pub three_ds_ttl: Duration,
    /// ACS answers at once.
    pub acs_auto_submit: bool,
    /// The API documentation served under `/api/`.
    pub docs: ApiDocs,
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
