//! The stages in front of every CloudPayments operation, one module each, outermost first:
//!
//! 1. [`auth`]: HTTP Basic names the terminal, or 401;
//! 2. [`limit`]: at most N requests in flight per terminal, or 429;
//! 3. [`delivery`]: carries out "hold, then close" answers. It sits inside the limit, so a held
//!    request still counts against it, and outside idempotency, so a held request does not keep
//!    its `X-Request-ID` busy;
//! 4. [`body::read`]: the raw body, at most 1 MiB;
//! 5. [`idempotency`]: `X-Request-ID` replays the stored answer, waits for a duplicate in flight,
//!    or runs the request and stores its answer. Nothing answered before this stage is stored;
//! 6. [`body::parse`]: JSON or form into [`Params`]. A body that does not parse is an answer
//!    like any other, so it is stored;
//! 7. [`faults`]: injected faults, for operations that move no money ([`FaultPoint::Pipeline`]).
//!    Charges and authorisations look theirs up themselves once the card or token is known
//!    ([`FaultPoint::Operation`]), with [`faults::before_operation`].
//!
//! Then the operation runs with a [`Call`] and returns an [`Answer`] (or a `Result<Reply,
//! ParamError>`, which is one).
//!
//! Each stage is an `async fn` that takes what it needs (the terminal, the raw body, …), the
//! request, and `next`, the rest of the pipeline; what it produces (the terminal, the body, the
//! parameters) it hands to `next` as arguments. Answers travel back out as HTTP responses with
//! the markers of [`crate::reply`] in their extensions. `Stages::run` nests the stages in the
//! order above; the whole pipeline is one tower service per route, so a request pays one
//! allocation for it, not one per stage.
//!
//! Adding a stage (an idempotency TTL, a latency fault, a notification hook): write it in its
//! own module in the same shape, nest it at its place in `Stages::run`, and add what it
//! changes for the client (headers, statuses) to the OpenAPI operation in [`document`], so
//! `/api/openapi.json` says it.

pub mod auth;
pub mod body;
pub mod delivery;
pub mod faults;
pub mod idempotency;
pub mod limit;

use crate::params::Params;
use crate::reply::{Answer, Notice};
use crate::state::{AppState, TerminalState};
use axum::extract::Request;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::Service;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{Components, Content, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{PartialSchema as _, ToSchema as _};

/// Where an operation's fault rules are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// In the pipeline, before the operation runs: every operation that moves no money.
    Pipeline,
    /// In the operation, once the card or token is known: charges and authorisations.
    Operation,
}

/// What an operation receives: the app, the authenticated terminal, the URI and the parsed body.
pub struct Call {
    /// Shared state.
    pub state: Arc<AppState>,
    /// The terminal the request authenticated as.
    pub term: Arc<TerminalState>,
    /// Request URI (the path is part of fault scopes and idempotency keys).
    pub uri: Uri,
    /// The body's fields.
    pub params: Params,
}

impl Call {
    /// Request path.
    pub fn path(&self) -> &str {
        self.uri.path()
    }
}

/// One operation behind the whole pipeline, as a tower service (for `on_service`).
pub struct Stages<F> {
    state: Arc<AppState>,
    faults_at: FaultPoint,
    operation: F,
}

impl<F: Clone> Clone for Stages<F> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            faults_at: self.faults_at,
            operation: self.operation.clone(),
        }
    }
}

impl<F, Fut, A> Stages<F>
where
    F: Fn(Call) -> Fut,
    Fut: Future<Output = A>,
    A: Into<Answer>,
{
    /// `operation` behind the pipeline, its fault rules applied at `faults_at`.
    pub fn new(state: Arc<AppState>, faults_at: FaultPoint, operation: F) -> Self {
        Self {
            state,
            faults_at,
            operation,
        }
    }

    /// The stages in the order of the module doc, each nested in the one before.
    async fn run(&self, req: Request) -> Response {
        let state = &*self.state;
        auth::stage(state, req, async |req, term| {
            limit::stage(state, &term, req, async |req| {
                delivery::stage(req, async |req| {
                    body::read(req, async |req, raw| {
                        idempotency::stage(state, &term, &raw, req, async |req| {
                            body::parse(&raw, req, async |req, params| match self.faults_at {
                                FaultPoint::Pipeline => {
                                    faults::stage(state, &term, req, params, async |req, params| {
                                        self.operate(&term, req, params).await
                                    })
                                    .await
                                }
                                FaultPoint::Operation => self.operate(&term, req, params).await,
                            })
                            .await
                        })
                        .await
                    })
                    .await
                })
                .await
            })
            .await
        })
        .await
    }

    async fn operate(&self, term: &Arc<TerminalState>, req: Request, params: Params) -> Response {
        let call = Call {
            state: self.state.clone(),
            term: term.clone(),
            uri: req.into_parts().0.uri,
            params,
        };
        (self.operation)(call).await.into().into_response()
    }
}

impl<F, Fut, A> Service<Request> for Stages<F>
where
    F: Fn(Call) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = A> + Send + 'static,
    A: Into<Answer>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let stages = self.clone();
        Box::pin(async move { Ok(stages.run(req).await) })
    }
}

/// Adds to an operation what the stages do for every CloudPayments request: Basic auth and 401,
/// 429, `X-Request-ID`, JSON or form bodies with case-insensitive keys, and injected faults.
pub fn document(op: &mut Operation) {
    auth::document(op);
    limit::document(op);
    body::document(op);
    idempotency::document(op);
    faults::document(op);
}

/// Adds to the document what [`document`]ed operations refer to (the Basic security scheme).
pub fn document_components(doc: &mut OpenApi) {
    auth::document_components(doc);
    let components = doc.components.get_or_insert_with(Components::new);
    let mut schemas = vec![(Notice::name().into_owned(), Notice::schema())];
    Notice::schemas(&mut schemas);
    components.schemas.extend(schemas);
}

/// Documents that the stages may answer `status` with a [`Notice`].
fn document_notice(op: &mut Operation, status: u16, description: &str) {
    let body = Content::new(Some(Ref::from_schema_name(Notice::name())));
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/json", body)
        .build();
    op.responses
        .responses
        .insert(status.to_string(), RefOr::T(response));
}
