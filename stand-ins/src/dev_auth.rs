//! A stand-in for the auth service's token side, for the local stack and tests: an Ed25519 key
//! made at start, its JWKS, and dev tokens minted on request. Billing verifies these tokens the
//! way it verifies the real auth service's (`BILLING_AUTH_JWKS_URL` pointed here); set the
//! `BILLING_AUTH_*` variables to the real service and this part is not used.
//!
//! HTTP (dev only, never exposed in production: the stand-ins are not part of a deployment):
//! - `GET /.well-known/jwks.json`: the public keys (newest first).
//! - `GET /dev/token?sub=<user uuid>&roles=admin,service&ttl_secs=3600`: a signed token as
//!   plain text (`sub` omitted: a new random user).
//! - `POST /dev/rotate`: a new key signs from now on (the old one stays in the JWKS).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use billing_proto::billing::v1::billing_service_client::BillingServiceClient;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::RwLock;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;

/// The dev issuer's `iss` (billing's `BILLING_AUTH_ISSUER` in the local stack).
pub const DEV_ISSUER: &str = "billing-dev-auth";
/// The audience its tokens name (billing's default `BILLING_AUTH_AUDIENCE`).
pub const DEV_AUDIENCE: &str = "billing";

struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

impl SigningKey {
    fn generate() -> Result<SigningKey, String> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| "cannot generate an Ed25519 key".to_string())?
            .as_ref()
            .to_vec();
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| "cannot read the generated key".to_string())?;
        let kid = format!("dev-{}", uuid::Uuid::new_v4().simple());
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
        Ok(SigningKey { kid, pkcs8, jwk })
    }
}

/// Mints tokens with keys made in this process.
pub struct DevIssuer {
    issuer: String,
    audience: String,
    /// Newest first; the newest signs.
    keys: RwLock<Vec<SigningKey>>,
}

impl DevIssuer {
    pub fn new(issuer: &str, audience: &str) -> Result<DevIssuer, String> {
        Ok(DevIssuer {
            issuer: issuer.into(),
            audience: audience.into(),
            keys: RwLock::new(vec![SigningKey::generate()?]),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The public keys, as the auth service publishes them.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys.read().iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    /// A new key signs from now on; returns its kid.
    pub fn rotate(&self) -> Result<String, String> {
        let k = SigningKey::generate()?;
        let kid = k.kid.clone();
        self.keys.write().insert(0, k);
        Ok(kid)
    }

    /// A token for `sub` with `roles`, valid for `ttl` (tests; panics if signing fails).
    pub fn mint(&self, sub: &str, roles: &[&str], ttl: Duration) -> String {
        self.try_mint(sub, roles, ttl)
            .unwrap_or_else(|e| panic!("signing a dev token: {e}"))
    }

    /// Same, with a signing failure as an error (the HTTP endpoint).
    pub fn try_mint(&self, sub: &str, roles: &[&str], ttl: Duration) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        self.try_mint_claims(json!({
            "sub": sub,
            "roles": roles,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl.as_secs() as i64,
        }))
    }

    /// A token with exactly these claims, signed by the newest key (tests of bad claims;
    /// panics if signing fails).
    pub fn mint_claims(&self, claims: Value) -> String {
        self.try_mint_claims(claims)
            .unwrap_or_else(|e| panic!("signing a dev token: {e}"))
    }

    fn try_mint_claims(&self, claims: Value) -> Result<String, String> {
        let keys = self.keys.read();
        let k = keys.first().ok_or("the dev issuer has no key")?;
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(k.kid.clone());
        jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ed_der(&k.pkcs8))
            .map_err(|e| format!("signing a dev token: {e}"))
    }

    /// The HTTP routes described in the module docs.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/jwks.json", get(jwks))
            .route("/dev/token", get(token))
            .route("/dev/rotate", post(rotate))
            .with_state(self)
    }
}

async fn jwks(State(i): State<Arc<DevIssuer>>) -> Json<Value> {
    Json(i.jwks())
}

#[derive(Deserialize)]
struct TokenQuery {
    sub: Option<String>,
    roles: Option<String>,
    ttl_secs: Option<u64>,
}

async fn token(State(i): State<Arc<DevIssuer>>, Query(q): Query<TokenQuery>) -> Response {
    let sub = q
        .sub
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if uuid::Uuid::parse_str(sub.trim()).is_err() {
        return (
            StatusCode::BAD_REQUEST,
            "sub must be a user UUID (or omitted for a new one)\n",
        )
            .into_response();
    }
    let roles: Vec<String> = q
        .roles
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    let ttl = Duration::from_secs(q.ttl_secs.unwrap_or(3600).clamp(1, 7 * 86400));
    match i.try_mint(sub.trim(), &roles, ttl) {
        Ok(t) => (StatusCode::OK, t).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn rotate(State(i): State<Arc<DevIssuer>>) -> Response {
    match i.rotate() {
        Ok(kid) => (StatusCode::OK, Json(json!({"kid": kid}))).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

/// Adds `authorization: Bearer <token>` to every call of a gRPC client.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// `None`: calls go out without a token. A token that is not valid metadata text (it
    /// never is for a JWT) is sent as none.
    pub fn new(token: Option<&str>) -> Bearer {
        Bearer(token.and_then(|t| format!("Bearer {t}").parse().ok()))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A `BillingService` client that signs its calls with one token.
pub type BillingClient = BillingServiceClient<InterceptedService<Channel, Bearer>>;

/// A client over `channel` sending `token` (`None`: no token).
pub fn billing_client(channel: Channel, token: Option<&str>) -> BillingClient {
    BillingServiceClient::with_interceptor(channel, Bearer::new(token))
}
