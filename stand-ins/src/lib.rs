//! Stand-ins for the services billing calls, for the local stack and tests.
//!
//! Both are real tonic servers on a listener the caller chooses (port 0 in tests). They apply
//! the contract's idempotency (a repeated transaction id changes nothing) and record every call,
//! so tests can assert "access granted once, until D" and "this notification, once".
//!
//! [`dev_auth`] stands in for the auth service's token side: a JWKS and dev tokens over HTTP.

pub mod dev_auth;
pub use dev_auth::{billing_client, Bearer, BillingClient, DevIssuer, DEV_AUDIENCE, DEV_ISSUER};

use billing_proto::access::v1::access_service_server::{AccessService, AccessServiceServer};
use billing_proto::access::v1::{
    GrantAccessRequest, GrantAccessResponse, RevokeAccessRequest, RevokeAccessResponse,
};
use billing_proto::notification::v1::notification_service_server::{
    NotificationService, NotificationServiceServer,
};
use billing_proto::notification::v1::{SendEventRequest, SendEventResponse};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// Everything the stand-ins received.
#[derive(Default)]
pub struct Recorder {
    /// Every GrantAccess call, repeats included.
    pub grant_calls: Mutex<Vec<GrantAccessRequest>>,
    pub revoke_calls: Mutex<Vec<RevokeAccessRequest>>,
    /// Every SendEvent call, repeats included.
    pub event_calls: Mutex<Vec<SendEventRequest>>,
    /// Effective access per user: `until` in Unix seconds (absent = no access).
    access: Mutex<HashMap<String, i64>>,
    seen_grants: Mutex<HashMap<String, i64>>,
    seen_events: Mutex<HashMap<(i32, String), ()>>,
    /// Fail this many next calls with UNAVAILABLE (tests of retries).
    fail_next: Mutex<u32>,
}

impl Recorder {
    /// Access of a user until (Unix seconds), as the auth service would hold it.
    pub fn access_until(&self, user_id: &str) -> Option<i64> {
        self.access.lock().get(user_id).copied()
    }

    /// Distinct events (after idempotency) for a user, in arrival order.
    pub fn events_for(&self, user_id: &str) -> Vec<SendEventRequest> {
        let mut seen = std::collections::HashSet::new();
        self.event_calls
            .lock()
            .iter()
            .filter(|e| e.user_id == user_id && seen.insert((e.kind, e.transaction_id.clone())))
            .cloned()
            .collect()
    }

    pub fn grants_for(&self, user_id: &str) -> Vec<GrantAccessRequest> {
        self.grant_calls
            .lock()
            .iter()
            .filter(|g| g.user_id == user_id)
            .cloned()
            .collect()
    }

    pub fn fail_next_calls(&self, n: u32) {
        *self.fail_next.lock() = n;
    }

    fn maybe_fail(&self) -> Result<(), Status> {
        let mut n = self.fail_next.lock();
        if *n > 0 {
            *n -= 1;
            return Err(Status::unavailable("stand-in: injected failure"));
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct Access(pub Arc<Recorder>);

#[tonic::async_trait]
impl AccessService for Access {
    async fn grant_access(
        &self,
        req: Request<GrantAccessRequest>,
    ) -> Result<Response<GrantAccessResponse>, Status> {
        self.0.maybe_fail()?;
        let r = req.into_inner();
        if r.user_id.is_empty() || r.transaction_id.is_empty() {
            return Err(Status::invalid_argument(
                "user_id and transaction_id are required",
            ));
        }
        let until = r
            .until
            .ok_or_else(|| Status::invalid_argument("until is required"))?;
        tracing::info!(user_id = %r.user_id, until = until.seconds, transaction_id = %r.transaction_id, "grant access");
        self.0.grant_calls.lock().push(r.clone());
        let first = self
            .0
            .seen_grants
            .lock()
            .insert(r.transaction_id.clone(), until.seconds)
            .is_none();
        if first {
            let mut access = self.0.access.lock();
            let e = access.entry(r.user_id.clone()).or_insert(until.seconds);
            *e = (*e).max(until.seconds);
        }
        Ok(Response::new(GrantAccessResponse {
            access_until: Some(until),
        }))
    }

    async fn revoke_access(
        &self,
        req: Request<RevokeAccessRequest>,
    ) -> Result<Response<RevokeAccessResponse>, Status> {
        self.0.maybe_fail()?;
        let r = req.into_inner();
        tracing::info!(user_id = %r.user_id, transaction_id = %r.transaction_id, reason = %r.reason, "revoke access");
        self.0.access.lock().remove(&r.user_id);
        self.0.revoke_calls.lock().push(r);
        Ok(Response::new(RevokeAccessResponse {}))
    }
}

#[derive(Clone)]
pub struct Notifications(pub Arc<Recorder>);

#[tonic::async_trait]
impl NotificationService for Notifications {
    async fn send_event(
        &self,
        req: Request<SendEventRequest>,
    ) -> Result<Response<SendEventResponse>, Status> {
        self.0.maybe_fail()?;
        let r = req.into_inner();
        tracing::info!(user_id = %r.user_id, kind = r.kind, transaction_id = %r.transaction_id, message = %r.message, "notification event");
        self.0
            .seen_events
            .lock()
            .insert((r.kind, r.transaction_id.clone()), ());
        self.0.event_calls.lock().push(r);
        Ok(Response::new(SendEventResponse {}))
    }
}

/// The stand-ins, running. Dropping it stops them.
pub struct RunningStandIns {
    pub access_addr: SocketAddr,
    pub notification_addr: SocketAddr,
    /// The dev auth issuer's HTTP address (JWKS and dev tokens).
    pub auth_addr: SocketAddr,
    pub recorder: Arc<Recorder>,
    pub issuer: Arc<DevIssuer>,
    stop: Vec<oneshot::Sender<()>>,
}

impl RunningStandIns {
    pub fn access_url(&self) -> String {
        format!("http://{}", self.access_addr)
    }
    pub fn notification_url(&self) -> String {
        format!("http://{}", self.notification_addr)
    }
    /// Where billing fetches the dev issuer's keys (`BILLING_AUTH_JWKS_URL`).
    pub fn jwks_url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.auth_addr)
    }
    pub fn stop(mut self) {
        for s in self.stop.drain(..) {
            let _ = s.send(());
        }
    }
}

/// Starts the stand-ins on the given listeners.
pub fn serve(
    access: TcpListener,
    notification: TcpListener,
    auth: TcpListener,
) -> std::io::Result<RunningStandIns> {
    let recorder = Arc::new(Recorder::default());
    let access_addr = access.local_addr()?;
    let notification_addr = notification.local_addr()?;
    let auth_addr = auth.local_addr()?;
    let issuer = Arc::new(DevIssuer::new(DEV_ISSUER, DEV_AUDIENCE).map_err(std::io::Error::other)?);
    let (tx1, rx1) = oneshot::channel::<()>();
    let (tx2, rx2) = oneshot::channel::<()>();
    let (tx3, rx3) = oneshot::channel::<()>();
    let routes = issuer.clone().router();
    tokio::spawn(async move {
        let _ = axum::serve(auth, routes)
            .with_graceful_shutdown(async {
                let _ = rx3.await;
            })
            .await;
    });
    let a = AccessServiceServer::new(Access(recorder.clone()));
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(a)
            .serve_with_incoming_shutdown(TcpListenerStream::new(access), async {
                let _ = rx1.await;
            })
            .await;
    });
    let n = NotificationServiceServer::new(Notifications(recorder.clone()));
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(n)
            .serve_with_incoming_shutdown(TcpListenerStream::new(notification), async {
                let _ = rx2.await;
            })
            .await;
    });
    Ok(RunningStandIns {
        access_addr,
        notification_addr,
        auth_addr,
        recorder,
        issuer,
        stop: vec![tx1, tx2, tx3],
    })
}

/// Binds all three on 127.0.0.1 port 0 (tests).
pub async fn spawn_local() -> std::io::Result<RunningStandIns> {
    let a = TcpListener::bind("127.0.0.1:0").await?;
    let n = TcpListener::bind("127.0.0.1:0").await?;
    let t = TcpListener::bind("127.0.0.1:0").await?;
    serve(a, n, t)
}
