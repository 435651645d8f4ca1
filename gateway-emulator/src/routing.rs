//! The route table. Every path the emulator serves is an [`Endpoint`]: a handler together with
//! the OpenAPI operation its `#[utoipa::path]` attribute declares (path, methods, body,
//! answers). [`Routes`] collects the endpoints of each module (`api`, `acs`, `control`, `docs`)
//! and builds both the axum router and the OpenAPI document from that one list, so
//! `/api/openapi.json` lists exactly what is served. A route that OpenAPI cannot describe is
//! added with [`Endpoint::undocumented_operation`], which must say why;
//! `tests/integration/docs.rs` allows no others.

use crate::pipeline::{self, Call, FaultPoint, Stages};
use crate::reply::Answer;
use crate::state::AppState;
use axum::handler::Handler;
use axum::routing::{any_service, on, on_service, MethodFilter, MethodRouter};
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use utoipa::openapi::path::{HttpMethod, Operation, PathItem};
use utoipa::openapi::OpenApi;

/// The OpenAPI document of exactly one function that carries `#[utoipa::path]`.
macro_rules! doc_of {
    ($($f:ident)::+) => {{
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($f)::+))]
        struct Entry;
        <Entry as utoipa::OpenApi>::openapi()
    }};
}
pub(crate) use doc_of;

/// An [`Endpoint`] for an axum handler that carries `#[utoipa::path]`: served where the
/// attribute says, documented by it. `endpoint!(health)`.
macro_rules! endpoint {
    ($($f:ident)::+) => {
        $crate::routing::Endpoint::handler($crate::routing::doc_of!($($f)::+), $($f)::+)
    };
}
pub(crate) use endpoint;

/// An [`Endpoint`] for a CloudPayments operation (`async fn(Call) -> Answer`, or
/// `-> Result<Reply, ParamError>`, with `#[utoipa::path]`), served behind the [`pipeline`] with
/// its fault rules applied at the given [`FaultPoint`]. `operation!(get, Pipeline)`.
macro_rules! operation {
    ($($f:ident)::+, $faults:expr) => {
        $crate::routing::Endpoint::operation($crate::routing::doc_of!($($f)::+), $($f)::+, $faults)
    };
}
pub(crate) use operation;

/// Builds the route's method router once the state exists.
type Serve = Box<dyn FnOnce(&Arc<AppState>) -> MethodRouter<Arc<AppState>> + Send>;

/// One route: path, methods, how it is served, and its OpenAPI entry (or why it has none).
pub struct Endpoint {
    path: String,
    /// Upper-case names; `*` for every method.
    methods: Vec<String>,
    serve: Serve,
    doc: OpenApi,
    undocumented: Option<&'static str>,
}

impl Endpoint {
    /// Use `endpoint!`: `doc` is the document of exactly this handler.
    pub fn handler<H, T>(mut doc: OpenApi, handler: H) -> Self
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        let (path, methods, filter) = route_of(&mut doc);
        Self {
            path,
            methods,
            serve: Box::new(move |_| on(filter, handler)),
            doc,
            undocumented: None,
        }
    }

    /// Use `operation!`: `doc` is the document of exactly this operation; the pipeline adds
    /// to it what it does (auth, 429, `X-Request-ID`, …).
    pub fn operation<F, Fut, A>(mut doc: OpenApi, operation: F, faults: FaultPoint) -> Self
    where
        F: Fn(Call) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = A> + Send + 'static,
        A: Into<Answer> + 'static,
    {
        let (path, methods, filter) = route_of(&mut doc);
        for item in doc.paths.paths.values_mut() {
            for (_, op) in operations_mut(item) {
                pipeline::document(op);
            }
        }
        pipeline::document_components(&mut doc);
        Self {
            path,
            methods,
            serve: Box::new(move |state| {
                on_service(filter, Stages::new(state.clone(), faults, operation))
            }),
            doc,
            undocumented: None,
        }
    }

    /// An operation served at `path` for every method, which OpenAPI cannot describe; `why`
    /// says so.
    pub fn undocumented_operation<F, Fut, A>(
        path: &str,
        operation: F,
        faults: FaultPoint,
        why: &'static str,
    ) -> Self
    where
        F: Fn(Call) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = A> + Send + 'static,
        A: Into<Answer> + 'static,
    {
        Self {
            path: path.to_owned(),
            methods: vec!["*".to_owned()],
            serve: Box::new(move |state| {
                any_service(Stages::new(state.clone(), faults, operation))
            }),
            doc: OpenApi::default(),
            undocumented: Some(why),
        }
    }

    /// The same handler and documentation at another path, under another `operationId` (OpenAPI
    /// wants them unique): for a handler served at several paths.
    pub fn at(mut self, path: &str, operation_id: &str) -> Self {
        let mut item = self.doc.paths.paths.remove(&self.path).unwrap_or_default();
        for (_, op) in operations_mut(&mut item) {
            op.operation_id = Some(operation_id.to_owned());
        }
        self.doc.paths.paths.insert(path.to_owned(), item);
        self.path = path.to_owned();
        self
    }
}

/// Path, method names and axum filter of a one-path document.
fn route_of(doc: &mut OpenApi) -> (String, Vec<String>, MethodFilter) {
    let (path, item) = doc
        .paths
        .paths
        .iter_mut()
        .next()
        .expect("a #[utoipa::path] function documents one path");
    let methods: Vec<(MethodFilter, &str)> =
        operations_mut(item).map(|(m, _)| method(&m)).collect();
    let filter = methods
        .iter()
        .map(|m| m.0)
        .reduce(MethodFilter::or)
        .expect("a #[utoipa::path] function has a method");
    let names = methods.iter().map(|m| m.1.to_owned()).collect();
    (path.clone(), names, filter)
}

/// A route as the table knows it (for tests and diagnostics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Path in axum syntax (`{id}`, `{*rest}`).
    pub path: String,
    /// Upper-case method names; `*` for every method.
    pub methods: Vec<String>,
    /// `None` when documented; otherwise why not.
    pub undocumented: Option<&'static str>,
}

/// Every route, documented or (with a reason) not.
#[derive(Default)]
pub struct Routes {
    endpoints: Vec<Endpoint>,
}

impl Routes {
    /// With one more endpoint.
    pub fn with(mut self, e: Endpoint) -> Self {
        self.endpoints.push(e);
        self
    }

    /// Both tables in one.
    pub fn merge(mut self, other: Routes) -> Self {
        self.endpoints.extend(other.endpoints);
        self
    }

    /// `base` (title, description, tags) with every endpoint's documentation.
    pub fn openapi(&self, mut base: OpenApi) -> OpenApi {
        for e in &self.endpoints {
            base.merge(e.doc.clone());
        }
        base
    }

    /// What the router built by [`Routes::into_router`] serves.
    pub fn served(&self) -> Vec<Served> {
        self.endpoints
            .iter()
            .map(|e| Served {
                path: e.path.clone(),
                methods: e.methods.clone(),
                undocumented: e.undocumented,
            })
            .collect()
    }

    /// The router, each route served as it was declared.
    pub fn into_router(self, state: &Arc<AppState>) -> Router<Arc<AppState>> {
        self.endpoints.into_iter().fold(Router::new(), |router, e| {
            router.route(&e.path, (e.serve)(state))
        })
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, &mut item.get),
        (HttpMethod::Put, &mut item.put),
        (HttpMethod::Post, &mut item.post),
        (HttpMethod::Delete, &mut item.delete),
        (HttpMethod::Options, &mut item.options),
        (HttpMethod::Head, &mut item.head),
        (HttpMethod::Patch, &mut item.patch),
        (HttpMethod::Trace, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
}

/// axum's filter and the upper-case name of each OpenAPI method.
const METHODS: [(HttpMethod, MethodFilter, &str); 8] = [
    (HttpMethod::Get, MethodFilter::GET, "GET"),
    (HttpMethod::Put, MethodFilter::PUT, "PUT"),
    (HttpMethod::Post, MethodFilter::POST, "POST"),
    (HttpMethod::Delete, MethodFilter::DELETE, "DELETE"),
    (HttpMethod::Options, MethodFilter::OPTIONS, "OPTIONS"),
    (HttpMethod::Head, MethodFilter::HEAD, "HEAD"),
    (HttpMethod::Patch, MethodFilter::PATCH, "PATCH"),
    (HttpMethod::Trace, MethodFilter::TRACE, "TRACE"),
];

fn method(m: &HttpMethod) -> (MethodFilter, &'static str) {
    METHODS
        .iter()
        .find(|(x, _, _)| x == m)
        .map(|(_, filter, name)| (*filter, *name))
        .unwrap_or((MethodFilter::GET, "GET"))
}
