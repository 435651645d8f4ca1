//! Who is calling (issue 14, first step): bearer JWTs issued by the auth service, verified
//! against its JWKS. This module decides only *who* the caller is and *on whose behalf* it may
//! act; the edges (`grpc`, `rest`) call it for every request but the unauthenticated ones
//! (health, docs, the 3-DS TermUrl).
//!
//! - Keys come from a JWKS file (`BILLING_AUTH_JWKS_FILE`) or URL (`BILLING_AUTH_JWKS_URL`,
//!   fetched at start and again when a token names a key id it does not know: the auth service
//!   rotated its keys; such refetches happen at most every [`REFETCH_AT_MOST_EVERY`]).
//! - Only asymmetric keys: RSA (RS256/384/512, PS256/384/512), EC (ES256/384) and Ed25519
//!   (EdDSA). A token's `alg` must be the algorithm of the key its `kid` names, so `alg: none`
//!   and an HS256 token "signed" with a public key are refused.
//! - `exp` is required, `nbf` honoured, both with [`LEEWAY`]; `iss` and `aud` must match.
//! - `sub` is the user's UUID; `roles` (array of strings): `admin` acts on any subscription,
//!   `service` (a trusted internal caller, e.g. the frontend's backend) acts on behalf of the
//!   user a request names; any other token acts only for its own `sub`.

use billing_domain::AccountId;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// An unknown `kid` refetches a JWKS URL at most this often (a flood of made-up key ids must
/// not become a flood of requests to the auth service).
pub const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// Where the auth service's public keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

/// What a token must say to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub jwks: JwksSource,
    pub issuer: String,
    pub audience: String,
}

/// Why a request is not authenticated: `UNAUTHENTICATED` / HTTP 401 with
/// `WWW-Authenticate: Bearer`. The message says what to fix, never which key or claim value
/// the server expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send Authorization: Bearer <token of the auth service>")]
    Missing,
    #[error("the bearer token is not valid: {0}")]
    Invalid(String),
}

/// The refusal of an authenticated caller: `PERMISSION_DENIED` / HTTP 403. The same text
/// whether or not the other user or subscription exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not allowed: this token may act only on its own subscription")]
pub struct Denied;

/// Who is calling, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: the user it was issued to (for a service, the service's own id).
    pub subject: AccountId,
    pub admin: bool,
    pub service: bool,
}

impl Caller {
    /// The caller when auth is disabled (`BILLING_AUTH=disabled`, dev only): acts as an admin
    /// on whatever user the request names.
    pub fn unchecked() -> Caller {
        Caller {
            subject: AccountId(uuid::Uuid::nil()),
            admin: true,
            service: true,
        }
    }

    /// Whether the caller may act on a subscription owned by `owner` (looked up by the edge:
    /// a subscription that does not exist is answered [`Denied`] too, to plain users).
    pub fn may_act_on(&self, owner: AccountId) -> Result<(), Denied> {
        if self.admin || self.service || owner == self.subject {
            Ok(())
        } else {
            Err(Denied)
        }
    }

    /// Operations for operators only (the test clock).
    pub fn require_admin(&self) -> Result<(), Denied> {
        if self.admin {
            Ok(())
        } else {
            Err(Denied)
        }
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// A key of the JWKS and the one algorithm tokens signed with it may name.
struct Key {
    key: DecodingKey,
    alg: Algorithm,
}

struct Keys {
    by_kid: BTreeMap<String, Key>,
    /// The last refetch an unknown kid caused (`None`: only the load at start so far, so the
    /// first rotation after start is picked up at once).
    refetched_at: Option<Instant>,
}

/// Verifies bearer tokens. Cheap to share (`Arc`).
pub struct Verifier {
    settings: AuthSettings,
    keys: RwLock<Keys>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Loads the keys; a JWKS that cannot be read or holds no usable key stops start-up with a
    /// message naming the variable.
    pub async fn load(settings: AuthSettings) -> Result<Verifier, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let by_kid = fetch(&settings.jwks, &http).await?;
        if by_kid.is_empty() {
            return Err(format!(
                "{}: the JWKS has no usable key (RSA, EC or Ed25519 with a kid)",
                source_name(&settings.jwks)
            ));
        }
        Ok(Verifier {
            settings,
            keys: RwLock::new(Keys {
                by_kid,
                refetched_at: None,
            }),
            http,
        })
    }

    /// The caller of a request whose `Authorization` header (or gRPC metadata) is `header`.
    pub async fn caller(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let header = header.map(str::trim).filter(|h| !h.is_empty());
        let Some(header) = header else {
            return Err(AuthError::Missing);
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| AuthError::Invalid("the Authorization scheme must be Bearer".into()))?;
        self.verify(token).await
    }

    /// Verifies one token.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("not a signed JWT".into()))?;
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("the token names no key (kid)".into()))?;
        if !self.knows(&kid) {
            self.refetch().await;
        }
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let key = keys
            .by_kid
            .get(&kid)
            .ok_or_else(|| AuthError::Invalid("signed with an unknown key".into()))?;
        if header.alg != key.alg {
            return Err(AuthError::Invalid(
                "the token's algorithm is not its key's".into(),
            ));
        }
        let mut v = Validation::new(key.alg);
        v.leeway = LEEWAY.as_secs();
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        v.set_issuer(&[self.settings.issuer.as_str()]);
        v.set_audience(&[self.settings.audience.as_str()]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            AuthError::Invalid(
                match e.kind() {
                    K::ExpiredSignature => "expired",
                    K::ImmatureSignature => "not valid yet (nbf)",
                    K::InvalidIssuer => "wrong issuer",
                    K::InvalidAudience => "wrong audience",
                    K::InvalidSignature => "bad signature",
                    K::MissingRequiredClaim(_) => {
                        "a required claim (exp, sub, iss, aud) is missing"
                    }
                    _ => "malformed",
                }
                .into(),
            )
        })?;
        let subject = AccountId::parse(&data.claims.sub)
            .map_err(|_| AuthError::Invalid("sub is not a user id (UUID)".into()))?;
        let has = |r: &str| data.claims.roles.iter().any(|x| x == r);
        Ok(Caller {
            subject,
            admin: has("admin"),
            service: has("service"),
        })
    }

    fn knows(&self, kid: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_kid
            .contains_key(kid)
    }

    /// Reloads a JWKS URL (a file is read once: restart to rotate), at most every
    /// [`REFETCH_AT_MOST_EVERY`]; a failed fetch keeps the keys it had.
    async fn refetch(&self) {
        if !matches!(self.settings.jwks, JwksSource::Url(_)) {
            return;
        }
        {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            if keys
                .refetched_at
                .is_some_and(|t| t.elapsed() < REFETCH_AT_MOST_EVERY)
            {
                return;
            }
        }
        // Claim the slot before fetching, so concurrent unknown kids cause one fetch.
        {
            let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
            if keys
                .refetched_at
                .is_some_and(|t| t.elapsed() < REFETCH_AT_MOST_EVERY)
            {
                return;
            }
            keys.refetched_at = Some(Instant::now());
        }
        let fetched = fetch(&self.settings.jwks, &self.http).await;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        match fetched {
            Ok(by_kid) if !by_kid.is_empty() => keys.by_kid = by_kid,
            Ok(_) => tracing::warn!("the refetched JWKS has no usable key; keeping the old keys"),
            Err(e) => tracing::warn!(error = %e, "JWKS refetch failed; keeping the old keys"),
        }
    }
}

fn source_name(s: &JwksSource) -> &'static str {
    match s {
        JwksSource::File(_) => "BILLING_AUTH_JWKS_FILE",
        JwksSource::Url(_) => "BILLING_AUTH_JWKS_URL",
    }
}

async fn fetch(
    source: &JwksSource,
    http: &reqwest::Client,
) -> Result<BTreeMap<String, Key>, String> {
    let name = source_name(source);
    let body = match source {
        JwksSource::File(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("{name}={}: cannot read: {e}", p.display()))?,
        JwksSource::Url(u) => http
            .get(u)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("{name}={u}: cannot fetch: {e}"))?
            .text()
            .await
            .map_err(|e| format!("{name}={u}: cannot read: {e}"))?,
    };
    let set: JwkSet =
        serde_json::from_str(&body).map_err(|e| format!("{name}: not a JWKS document: {e}"))?;
    Ok(set.keys.iter().filter_map(usable).collect())
}

/// A public, asymmetric key with a kid, and its algorithm; anything else is skipped (a
/// symmetric `oct` key would let anyone who has the JWKS mint tokens).
fn usable(jwk: &Jwk) -> Option<(String, Key)> {
    let kid = jwk.common.key_id.clone()?;
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::OctetKey(_), _) => return None,
        (_, Some(a)) => match a {
            KeyAlgorithm::RS256 => Algorithm::RS256,
            KeyAlgorithm::RS384 => Algorithm::RS384,
            KeyAlgorithm::RS512 => Algorithm::RS512,
            KeyAlgorithm::PS256 => Algorithm::PS256,
            KeyAlgorithm::PS384 => Algorithm::PS384,
            KeyAlgorithm::PS512 => Algorithm::PS512,
            KeyAlgorithm::ES256 => Algorithm::ES256,
            KeyAlgorithm::ES384 => Algorithm::ES384,
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
            _ => return None,
        },
        (AlgorithmParameters::RSA(_), None) => Algorithm::RS256,
        (AlgorithmParameters::OctetKeyPair(_), None) => Algorithm::EdDSA,
        (AlgorithmParameters::EllipticCurve(_), None) => Algorithm::ES256,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Key { key, alg }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{EncodingKey, Header};
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::json;

    const ISS: &str = "https://auth.test";
    const AUD: &str = "billing";

    struct Issuer {
        kid: String,
        pkcs8: Vec<u8>,
        public_jwk: serde_json::Value,
    }

    impl Issuer {
        /// An Ed25519 key made now.
        fn new(kid: &str) -> Issuer {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
                .unwrap()
                .as_ref()
                .to_vec();
            let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            Issuer {
                kid: kid.into(),
                pkcs8,
                public_jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
            }
        }

        fn token(&self, claims: serde_json::Value) -> String {
            let mut h = Header::new(Algorithm::EdDSA);
            h.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ed_der(&self.pkcs8)).unwrap()
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims(sub: &str, roles: &[&str]) -> serde_json::Value {
        json!({"sub": sub, "roles": roles, "iss": ISS, "aud": AUD, "exp": now() + 300})
    }

    async fn verifier(keys: &[&Issuer]) -> (Verifier, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let set = json!({"keys": keys.iter().map(|k| k.public_jwk.clone()).collect::<Vec<_>>()});
        std::fs::write(&path, set.to_string()).unwrap();
        let v = Verifier::load(AuthSettings {
            jwks: JwksSource::File(path),
            issuer: ISS.into(),
            audience: AUD.into(),
        })
        .await
        .unwrap();
        (v, dir)
    }

    fn user() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    #[tokio::test]
    async fn a_valid_token_names_its_user_and_roles() {
        let k = Issuer::new("k1");
        let (v, _d) = verifier(&[&k]).await;
        let u = user();
        let c = v
            .caller(Some(&format!(
                "Bearer {}",
                k.token(claims(&u, &["service"]))
            )))
            .await
            .unwrap();
        assert_eq!(c.subject.to_string(), u);
        assert!(c.service && !c.admin);
    }

    #[tokio::test]
    async fn bad_tokens_are_unauthenticated() {
        let k = Issuer::new("k1");
        let stranger = Issuer::new("k1"); // same kid, another key
        let (v, _d) = verifier(&[&k]).await;
        let u = user();
        let mut expired = claims(&u, &[]);
        expired["exp"] = json!(now() - 120);
        let mut early = claims(&u, &[]);
        early["nbf"] = json!(now() + 120);
        let mut wrong_iss = claims(&u, &[]);
        wrong_iss["iss"] = json!("https://evil.test");
        let mut wrong_aud = claims(&u, &[]);
        wrong_aud["aud"] = json!("other");
        let mut no_exp = claims(&u, &[]);
        no_exp.as_object_mut().unwrap().remove("exp");
        let mut bad_sub = claims(&u, &[]);
        bad_sub["sub"] = json!("not-a-uuid");
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(claims(&u, &["admin"]).to_string())
        );
        // HS256 "signed" with the public key as the secret (the RS/HS confusion attack).
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some("k1".into());
        let confused = jsonwebtoken::encode(
            &hs,
            &claims(&u, &["admin"]),
            &EncodingKey::from_secret(k.public_jwk["x"].as_str().unwrap().as_bytes()),
        )
        .unwrap();
        for (what, token, expect) in [
            ("expired", k.token(expired), "expired"),
            ("nbf", k.token(early), "not valid yet"),
            ("issuer", k.token(wrong_iss), "wrong issuer"),
            ("audience", k.token(wrong_aud), "wrong audience"),
            ("no exp", k.token(no_exp), "missing"),
            ("sub", k.token(bad_sub), "sub"),
            (
                "foreign key",
                stranger.token(claims(&u, &[])),
                "bad signature",
            ),
            ("alg none", none, "not a signed JWT"),
            ("hs/rs confusion", confused, "algorithm"),
            ("garbage", "abc".into(), "not a signed JWT"),
        ] {
            let e = v.verify(&token).await.unwrap_err();
            assert!(e.to_string().contains(expect), "{what}: {e}");
        }
        assert_eq!(v.caller(None).await.unwrap_err(), AuthError::Missing);
        assert!(matches!(
            v.caller(Some("Basic dXNlcjpwYXNz")).await.unwrap_err(),
            AuthError::Invalid(_)
        ));
    }

    #[tokio::test]
    async fn rs256_tokens_verify_against_an_rsa_jwk() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let jwk = json!({
            "kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        });
        let ed = Issuer::new("e1");
        let rsa_issuer = Issuer {
            kid: "r1".into(),
            pkcs8: Vec::new(),
            public_jwk: jwk,
        };
        let (v, _d) = verifier(&[&rsa_issuer, &ed]).await;
        let u = user();
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("r1".into());
        let der = private.to_pkcs1_der().unwrap();
        let key = EncodingKey::from_rsa_der(der.as_bytes());
        let token = jsonwebtoken::encode(&h, &claims(&u, &["admin"]), &key).unwrap();
        let c = v.verify(&token).await.unwrap();
        assert!(c.admin && c.subject.to_string() == u);
        // The same RSA key under the Ed25519 key's kid: the algorithm is not that key's.
        h.kid = Some("e1".into());
        let token = jsonwebtoken::encode(&h, &claims(&u, &[]), &key).unwrap();
        let e = v.verify(&token).await.unwrap_err();
        assert!(e.to_string().contains("algorithm"), "{e}");
        // And both kinds verify side by side.
        assert!(v.verify(&ed.token(claims(&u, &[]))).await.is_ok());
    }

    #[test]
    fn who_may_act_for_whom() {
        let me = AccountId::parse(&user()).unwrap();
        let other = AccountId::parse(&user()).unwrap();
        let plain = Caller {
            subject: me,
            admin: false,
            service: false,
        };
        assert_eq!(plain.may_act_on(me), Ok(()));
        assert_eq!(plain.may_act_on(other), Err(Denied));
        assert_eq!(plain.require_admin(), Err(Denied));
        let service = Caller {
            service: true,
            ..plain.clone()
        };
        assert_eq!(service.may_act_on(other), Ok(()));
        assert_eq!(service.require_admin(), Err(Denied));
        let admin = Caller {
            admin: true,
            ..plain
        };
        assert!(admin.may_act_on(other).is_ok() && admin.require_admin().is_ok());
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_a_jwks_url_once_rotated() {
        use axum::routing::get;
        let old = Issuer::new("old");
        let new = Issuer::new("new");
        let served = std::sync::Arc::new(std::sync::Mutex::new(json!({"keys": [old.public_jwk]})));
        let s = served.clone();
        let app = axum::Router::new().route(
            "/jwks",
            get(move || {
                let s = s.clone();
                async move { axum::Json(s.lock().unwrap().clone()) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let v = Verifier::load(AuthSettings {
            jwks: JwksSource::Url(format!("http://{addr}/jwks")),
            issuer: ISS.into(),
            audience: AUD.into(),
        })
        .await
        .unwrap();
        let u = user();
        assert!(v.verify(&old.token(claims(&u, &[]))).await.is_ok());
        // A made-up kid refetches (the first time since start) and is refused.
        let stranger = Issuer::new("made-up");
        assert!(v.verify(&stranger.token(claims(&u, &[]))).await.is_err());
        // The auth service rotates: a token of the new key is refused while the refetch window
        // of the last refetch runs (a flood of unknown kids is one fetch), then accepted.
        *served.lock().unwrap() = json!({"keys": [new.public_jwk]});
        assert!(v.verify(&new.token(claims(&u, &[]))).await.is_err());
        v.keys.write().unwrap().refetched_at = Some(Instant::now() - REFETCH_AT_MOST_EVERY);
        assert!(v.verify(&new.token(claims(&u, &[]))).await.is_ok());
    }

    #[tokio::test]
    async fn a_jwks_without_usable_keys_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(
            &path,
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#,
        )
        .unwrap();
        let e = Verifier::load(AuthSettings {
            jwks: JwksSource::File(path),
            issuer: ISS.into(),
            audience: AUD.into(),
        })
        .await
        .unwrap_err();
        assert!(
            e.contains("BILLING_AUTH_JWKS_FILE") && e.contains("no usable key"),
            "{e}"
        );
    }
}
