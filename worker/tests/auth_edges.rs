//! Identity at the edges (issue 14): bearer JWTs of the auth service on gRPC and REST, signed
//! in the test with keys made in the test (the stand-ins' dev issuer, served as a JWKS URL).
//! Each refusal is checked for what a user would see: the right status, nothing charged,
//! nothing changed, and no hint whether another user's subscription exists.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use billing_proto::billing::v1 as pb;
use billing_proto::billing::v1::start_subscription_response::Outcome;
use common::*;
use gateway_emulator::cards;
use serde_json::{json, Value};
use std::time::Duration;
use tonic::Code;

fn get_by_user(user: &str) -> pb::GetSubscriptionRequest {
    pb::GetSubscriptionRequest {
        user_id: user.into(),
        subscription_id: String::new(),
    }
}

fn get_by_id(id: &str) -> pb::GetSubscriptionRequest {
    pb::GetSubscriptionRequest {
        user_id: String::new(),
        subscription_id: id.into(),
    }
}

fn by_id(id: &str) -> Option<pb::SubscriptionRef> {
    Some(pb::SubscriptionRef {
        subscription_id: id.into(),
        user_id: String::new(),
    })
}

fn code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> (Code, String) {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(s) => (s.code(), s.message().to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_callers_act_only_where_allowed() {
    let h = Harness::start(Options::default()).await;
    let alice = new_user();
    let bob = new_user();
    let alice_token = h.token(&alice, &[]);
    let mut as_alice = h.client_as(Some(&alice_token));
    let mut as_service = h.client_as(Some(&h.token(&new_user(), &["service"])));

    // Alice subscribes herself: the request may leave user_id empty, her `sub` is used.
    let own = as_alice
        .start_subscription(start_request("", cards::NO_3DS_SUCCESS, "alice-1"))
        .await
        .expect("own start")
        .into_inner();
    let Some(Outcome::Paid(alice_paid)) = own.outcome else {
        panic!("{own:?}")
    };
    let mine = as_alice
        .get_subscription(get_by_user(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.user_id, alice);
    assert_eq!(mine.subscription_id, alice_paid.subscription_id);
    assert_eq!(
        as_alice
            .get_subscription(get_by_id(&alice_paid.subscription_id))
            .await
            .unwrap()
            .into_inner()
            .user_id,
        alice
    );

    // The frontend's backend (role service) subscribes Bob on his behalf; it must name him.
    let (c, m) = code(
        as_service
            .start_subscription(start_request("", cards::NO_3DS_SUCCESS, "svc-0"))
            .await,
    );
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert!(m.contains("user_id"), "{m}");
    let bob_paid = match as_service
        .start_subscription(start_request(&bob, cards::NO_3DS_SUCCESS, "bob-1"))
        .await
        .expect("service start")
        .into_inner()
        .outcome
    {
        Some(Outcome::Paid(p)) => p,
        other => panic!("{other:?}"),
    };
    let charges = h.completed_charges().await;
    assert_eq!(charges, 2);

    // Alice cannot read or touch Bob's subscription, by user id or by subscription id, and the
    // refusal of Bob's real subscription reads exactly like that of one that does not exist.
    let (c, m) = code(as_alice.get_subscription(get_by_user(&bob)).await);
    assert_eq!(c, Code::PermissionDenied, "{m}");
    let (c, real) = code(
        as_alice
            .get_subscription(get_by_id(&bob_paid.subscription_id))
            .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{real}");
    let nobody = uuid::Uuid::new_v4().to_string();
    let (c, absent) = code(as_alice.get_subscription(get_by_id(&nobody)).await);
    assert_eq!(c, Code::PermissionDenied, "{absent}");
    assert_eq!(real, absent, "the refusal reveals whether it exists");
    assert!(!real.contains(&bob_paid.subscription_id) && !real.contains(&bob));
    for target in [r(&bob), by_id(&bob_paid.subscription_id), by_id(&nobody)] {
        let (c, m) = code(
            as_alice
                .cancel_subscription(pb::CancelSubscriptionRequest {
                    subscription: target.clone(),
                    immediately: true,
                })
                .await,
        );
        assert_eq!(c, Code::PermissionDenied, "{m}");
        assert_eq!(m, absent);
        let (c, _) = code(
            as_alice
                .change_tariff(pb::ChangeTariffRequest {
                    subscription: target.clone(),
                    tariff_code: "premium-monthly".into(),
                })
                .await,
        );
        assert_eq!(c, Code::PermissionDenied);
        let (c, _) = code(as_alice.resume_subscription(target.clone().unwrap()).await);
        assert_eq!(c, Code::PermissionDenied);
    }
    // Nor start one in Bob's name (which would lock Bob out with ALREADY_EXISTS).
    let (c, _) = code(
        as_alice
            .start_subscription(start_request(&bob, cards::NO_3DS_SUCCESS, "evil-1"))
            .await,
    );
    assert_eq!(c, Code::PermissionDenied);
    // A 3-D Secure answer for a transaction that is not hers: refused like an unknown one.
    let (c, m) = code(
        as_alice
            .confirm3ds(pb::Confirm3dsRequest {
                transaction_id: 999_999_999,
                pa_res: "eyJ0ZXN0IjoxfQ".into(),
            })
            .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{m}");
    // The operator sees the truth.
    let (c, m) = code(h.grpc.clone().get_subscription(get_by_id(&nobody)).await);
    assert_eq!(c, Code::NotFound, "{m}");

    // Bob is untouched: active, charged once.
    let v = h.subscription_of(&bob).await.unwrap();
    assert_eq!(v.status, "active", "{v:?}");
    assert!(v.note.is_empty() && v.pending_tariff_code.is_empty());
    assert_eq!(h.completed_charges().await, charges);

    // The test clock: admin only.
    let advance = |target: &str| pb::AdvanceTestClockRequest {
        subscription: r(target),
        seconds: 3600,
    };
    let (c, _) = code(as_alice.advance_test_clock(advance(&alice)).await);
    assert_eq!(c, Code::PermissionDenied);
    let (c, _) = code(as_service.advance_test_clock(advance(&alice)).await);
    assert_eq!(c, Code::PermissionDenied);
    h.grpc
        .clone()
        .advance_test_clock(advance(&alice))
        .await
        .expect("admin moves the clock");

    // Alice cancels her own.
    let v = as_alice
        .cancel_subscription(pb::CancelSubscriptionRequest {
            subscription: Some(pb::SubscriptionRef::default()),
            immediately: false,
        })
        .await
        .expect("own cancel")
        .into_inner();
    assert!(v.cancel_at_period_end, "{v:?}");
}

/// Tokens that must not get in, with what each is.
fn forged_tokens(h: &Harness, user: &str) -> Vec<(&'static str, Option<String>)> {
    let issuer = &h.stand_ins.issuer;
    let jwks = issuer.jwks();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_string();
    let now = chrono::Utc::now().timestamp();
    let claims = |iss: &str, aud: &str, exp: i64| json!({"sub": user, "roles": ["admin"], "iss": iss, "aud": aud, "exp": exp});
    let good_iss = billing_stand_ins::DEV_ISSUER;
    let good_aud = billing_stand_ins::DEV_AUDIENCE;
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(claims(good_iss, good_aud, now + 300).to_string())
    );
    // HS256 "signed" with the issuer's public key as the HMAC secret (key confusion).
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(kid.clone());
    let confused = jsonwebtoken::encode(
        &hs,
        &claims(good_iss, good_aud, now + 300),
        &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()),
    )
    .unwrap();
    // A key the auth service never published.
    let stranger = billing_stand_ins::DevIssuer::new(good_iss, good_aud).unwrap();
    vec![
        ("no token", None),
        ("garbage", Some("not-a-jwt".into())),
        (
            "expired",
            Some(issuer.mint_claims(claims(good_iss, good_aud, now - 120))),
        ),
        (
            "wrong issuer",
            Some(issuer.mint_claims(claims("https://evil.example", good_aud, now + 300))),
        ),
        (
            "wrong audience",
            Some(issuer.mint_claims(claims(good_iss, "another-service", now + 300))),
        ),
        ("alg none", Some(none)),
        ("HS256 with the public key", Some(confused)),
        (
            "unknown key",
            Some(stranger.mint(user, &["admin"], Duration::from_secs(300))),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_tokens_are_unauthenticated_on_grpc_and_rest() {
    let h = Harness::start(Options::default()).await;
    let user = new_user();
    start_paid(&h, &user, cards::NO_3DS_SUCCESS).await;
    let charges = h.completed_charges().await;
    // First (a made-up kid below takes the refetch slot for 30 s): the auth service rotates
    // its key: a token of the new key names a kid billing has not
    // seen; billing refetches the JWKS and accepts it. The old key, still published, works too.
    let old = h.token(&user, &[]);
    h.stand_ins.issuer.rotate().unwrap();
    let new = h.token(&user, &[]);
    assert_ne!(
        jsonwebtoken::decode_header(&old).unwrap().kid,
        jsonwebtoken::decode_header(&new).unwrap().kid
    );
    for t in [new, old] {
        let v = h
            .client_as(Some(&t))
            .get_subscription(get_by_user(""))
            .await
            .expect("a token of a rotated key")
            .into_inner();
        assert_eq!(v.user_id, user);
    }
    let plain = reqwest::Client::new();
    for (what, token) in forged_tokens(&h, &user) {
        let mut client = h.client_as(token.as_deref());
        let (c, m) = code(client.get_subscription(get_by_user(&user)).await);
        assert_eq!(c, Code::Unauthenticated, "{what}: {m}");
        let (c, _) = code(
            client
                .start_subscription(start_request(&new_user(), cards::NO_3DS_SUCCESS, what))
                .await,
        );
        assert_eq!(c, Code::Unauthenticated, "{what}");
        let (c, _) = code(
            client
                .cancel_subscription(pb::CancelSubscriptionRequest {
                    subscription: r(&user),
                    immediately: true,
                })
                .await,
        );
        assert_eq!(c, Code::Unauthenticated, "{what}");
        let (c, _) = code(client.list_tariffs(pb::ListTariffsRequest {}).await);
        assert_eq!(c, Code::Unauthenticated, "{what}");

        let mut req = plain.get(format!("{}/api/v1/users/{user}/subscription", h.http_base));
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{what}");
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
        assert_eq!(
            challenge.contains("invalid_token"),
            token.is_some(),
            "{what}: {challenge}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated", "{what}: {body}");
    }
    // Nothing was charged or changed by any of them.
    assert_eq!(h.completed_charges().await, charges);
    assert_eq!(h.subscription_of(&user).await.unwrap().status, "active");

    // Open on purpose: health, the OpenAPI document and the docs page.
    for path in ["/healthz", "/api/openapi.json", "/api/docs"] {
        let resp = plain
            .get(format!("{}{path}", h.http_base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let doc: Value = plain
        .get(format!("{}/api/openapi.json", h.http_base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "{doc}"
    );
    assert!(doc["paths"]["/api/v1/subscriptions"]["post"]["responses"]["401"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rest_callers_act_only_where_allowed() {
    let h = Harness::start(Options::default()).await;
    let alice = new_user();
    let bob = new_user();
    let plain = reqwest::Client::new();
    let alice_token = h.token(&alice, &[]);
    let start_body = |user: Option<&str>, id: &str| {
        let mut b = json!({
            "tariff_code": "basic-monthly",
            "card_cryptogram": gateway_emulator::cryptogram::legacy(cards::NO_3DS_SUCCESS, 12, 2030),
            "cardholder_name": "IVAN PETROV", "payer_ip": "203.0.113.7", "email": "ivan@example.com",
            "client_request_id": id
        });
        if let Some(u) = user {
            b["user_id"] = json!(u);
        }
        b
    };
    // Alice subscribes herself without naming a user.
    let resp = plain
        .post(format!("{}/api/v1/subscriptions", h.http_base))
        .bearer_auth(&alice_token)
        .json(&start_body(None, "rest-alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let paid: Value = resp.json().await.unwrap();
    assert_eq!(paid["outcome"], "paid", "{paid}");
    let alice_sub = paid["subscription_id"].as_str().unwrap().to_string();
    let bob_sub = start_paid(&h, &bob, cards::NO_3DS_SUCCESS)
        .await
        .subscription_id;

    let get = |path: String, token: &str| {
        plain
            .get(format!("{}{path}", h.http_base))
            .bearer_auth(token)
            .send()
    };
    for path in [
        format!("/api/v1/subscriptions/{alice_sub}"),
        format!("/api/v1/users/{alice}/subscription"),
    ] {
        let r = get(path.clone(), &alice_token).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["user_id"], json!(alice));
    }
    // Bob's, and one that does not exist: the same 403, word for word.
    let mut bodies = Vec::new();
    for path in [
        format!("/api/v1/subscriptions/{bob_sub}"),
        format!("/api/v1/subscriptions/{}", uuid::Uuid::new_v4()),
        format!("/api/v1/users/{bob}/subscription"),
    ] {
        let r = get(path.clone(), &alice_token).await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        bodies.push(r.text().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1]);
    assert!(!bodies[0].contains(&bob_sub));
    let r = plain
        .post(format!("{}/api/v1/subscriptions", h.http_base))
        .bearer_auth(&alice_token)
        .json(&start_body(Some(&bob), "rest-evil"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // An operator gets the truth about the missing one.
    let r = h
        .api
        .get(format!(
            "{}/api/v1/subscriptions/{}",
            h.http_base,
            uuid::Uuid::new_v4()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(h.completed_charges().await, 2);
}
