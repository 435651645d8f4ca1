//! Webhook settings through the CloudPayments API (`/site/notifications/{Type}/get` and
//! `…/update`), the way a merchant sets them in the cabinet. They are the same targets as
//! `POST /_emulator/webhooks` and `--webhook` set, one per terminal and type.

use super::TAG;
use crate::params::{request, ParamError};
use crate::pipeline::Call;
use crate::pipeline::FaultPoint::Pipeline;
use crate::reply::{Envelope, Notice, Reply};
use crate::routing::{operation, Routes};
use crate::webhooks::{Kind, WebhookConfig};
use serde::Serialize;
use utoipa::ToSchema;

/// `Model` of `/site/notifications/{Type}/get`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct NotificationSettings {
    /// Whether a target is set.
    pub is_enabled: bool,
    /// The target URL.
    pub address: Option<String>,
    /// Always `POST`.
    pub http_method: &'static str,
    /// Always `UTF8`.
    pub encoding: &'static str,
    /// Always `CloudPayments`.
    pub format: &'static str,
}

request! {
    /// Body of `/site/notifications/{Type}/update`.
    pub struct NotificationUpdate {
        /// `false` (default) removes the target.
        is_enabled: Option<bool> = opt_bool("IsEnabled"),
        /// The target URL; required when enabled.
        address: Option<String> = opt_str("Address"),
    }
}

/// Get and update.
pub fn routes() -> Routes {
    Routes::default()
        .with(operation!(notifications_get, Pipeline))
        .with(operation!(notifications_update, Pipeline))
}

/// The notification type named by the path, any casing.
fn kind(call: &Call) -> Result<Kind, ParamError> {
    let name = call
        .path()
        .trim_start_matches("/site/notifications/")
        .split('/')
        .next()
        .unwrap_or("");
    Kind::parse(name).ok_or_else(|| {
        ParamError(format!(
            "Notification type {name} is not supported by this emulator"
        ))
    })
}

/// The target of one notification type.
#[utoipa::path(post, path = "/site/notifications/{Type}/get", tag = TAG,
    params(("Type" = String, Path, description = "Check, Pay, Fail, Confirm, Refund or Cancel (any casing)")),
    responses((status = 200, description = "The settings, or an unsupported type", body = Envelope<NotificationSettings>)))]
pub async fn notifications_get(call: Call) -> Result<Reply, ParamError> {
    let cfg = call
        .state
        .webhook_for(&call.term.terminal.public_id, kind(&call)?);
    Ok(Reply::json(&Envelope::ok(NotificationSettings {
        is_enabled: cfg.is_some(),
        address: cfg.map(|c| c.url),
        http_method: "POST",
        encoding: "UTF8",
        format: "CloudPayments",
    })))
}

/// Sets or removes the target of one notification type.
#[utoipa::path(post, path = "/site/notifications/{Type}/update", tag = TAG,
    params(("Type" = String, Path, description = "Check, Pay, Fail, Confirm, Refund or Cancel (any casing)")),
    request_body = NotificationUpdate,
    responses((status = 200, description = "Done, or refused", body = Notice)))]
pub async fn notifications_update(call: Call) -> Result<Reply, ParamError> {
    let kind = kind(&call)?;
    let req = NotificationUpdate::parse(&call.params)?;
    let pid = call.term.terminal.public_id.clone();
    let store = &call.state.store;
    let mut hooks = store.webhooks.write();
    hooks.retain(|h| !(h.public_id == pid && h.kind == kind));
    if req.is_enabled.unwrap_or(false) {
        let url = req
            .address
            .ok_or_else(|| ParamError("Address is required".into()))?;
        hooks.push(WebhookConfig {
            public_id: pid,
            kind,
            url,
            retry_delays_ms: None,
            max_attempts: None,
        });
    }
    store.mark_dirty();
    Ok(Reply::done())
}
