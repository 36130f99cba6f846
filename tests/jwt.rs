//! Bearer-token auth (`AUTH_TYPE=jwt_local` and `jwt_oidc`) over real HTTP: every token problem
//! is a 401 that says which, and the user is the token's `sub`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::get;
use axum::Json;
use base64::Engine;
use integration_tests::{json_of, spawn_app_with, test_config, test_store, TestApp};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ISSUER: &str = "https://issuer.test";
const SECRET: &[u8] = b"a-test-only-hmac-secret";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("a test fixture")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iss": ISSUER, "aud": "opengpts", "exp": now() + 600})
}

fn sign(claims: &Value, algorithm: Algorithm, key: &EncodingKey, kid: Option<&str>) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    encode(&header, claims, key).expect("a signed token")
}

fn hs(claims: &Value) -> String {
    sign(claims, Algorithm::HS256, &EncodingKey::from_secret(SECRET).unwrap(), None)
}

async fn app_with(vars: Vec<(&'static str, String)>) -> TestApp {
    let config = test_config(move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.clone()));
    spawn_app_with(config, test_store().await).await
}

fn local(algorithm: &str, key: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("AUTH_TYPE", "jwt_local".into()),
        ("JWT_ISS", ISSUER.into()),
        ("JWT_AUD", "other, opengpts".into()),
        ("JWT_ALG", algorithm.into()),
        ("JWT_DECODE_KEY_B64", base64::engine::general_purpose::STANDARD.encode(key)),
    ]
}

async fn call(app: &TestApp, token: Option<&str>) -> (StatusCode, Value) {
    let mut request =
        app.client.request(Method::POST, app.url("/assistants")).json(&json!({"name": "a", "config": {}}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    json_of(request.send().await.unwrap()).await
}

async fn refused(app: &TestApp, token: Option<&str>, detail: &str) {
    let (status, body) = call(app, token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["detail"].as_str().unwrap().contains(detail), "expected '{detail}' in {body}");
}

#[tokio::test]
async fn local_hs256_tokens_and_each_way_they_fail() {
    let app = app_with(local("HS256", SECRET)).await;
    let (status, assistant) = call(&app, Some(&hs(&claims("user-from-token")))).await;
    assert_eq!((status, &assistant["user_id"]), (StatusCode::OK, &json!("user-from-token")));

    let mut expired = claims("u");
    expired["exp"] = json!(now() - 600);
    refused(&app, Some(&hs(&expired)), "expired").await;
    let mut wrong_issuer = claims("u");
    wrong_issuer["iss"] = json!("https://elsewhere.test");
    refused(&app, Some(&hs(&wrong_issuer)), "issuer").await;
    let mut wrong_audience = claims("u");
    wrong_audience["aud"] = json!("someone-else");
    refused(&app, Some(&hs(&wrong_audience)), "audience").await;
    let forged = sign(&claims("u"), Algorithm::HS256, &EncodingKey::from_secret(b"another secret").unwrap(), None);
    refused(&app, Some(&forged), "signature").await;
    let mut anonymous = claims("u");
    anonymous.as_object_mut().unwrap().remove("sub");
    refused(&app, Some(&hs(&anonymous)), "'sub'").await;
    refused(&app, Some("not.a.token"), "malformed").await;
    refused(&app, None, "Bearer").await;
    // The LangGraph clients send the token as their API key.
    let by_key = app
        .client
        .post(app.url("/langgraph/threads"))
        .header("x-api-key", hs(&claims("key-user")))
        .json(&json!({"metadata": {"via": "key"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_key.status(), StatusCode::OK);
    let thread = by_key.json::<Value>().await.unwrap()["thread_id"].as_str().unwrap().to_string();
    let read = app.client.get(app.url(&format!("/langgraph/threads/{thread}"))).bearer_auth(hs(&claims("key-user")));
    assert_eq!(read.send().await.unwrap().status(), StatusCode::OK, "the same user either way");
    let forged_key = app.client.get(app.url(&format!("/langgraph/threads/{thread}"))).header("x-api-key", &forged);
    assert_eq!(forged_key.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // The cookie is not an identity once tokens are required.
    let cookie_only = app.request(Method::GET, "/assistants", Some("someone")).send().await.unwrap();
    assert_eq!(cookie_only.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn local_rs256_and_es256_keys() {
    let app = app_with(local("RS256", &fixture("rsa-public.pem"))).await;
    let rsa = EncodingKey::from_rsa_pem(&fixture("rsa-private.pem")).unwrap();
    assert_eq!(call(&app, Some(&sign(&claims("rsa-user"), Algorithm::RS256, &rsa, None))).await.0, StatusCode::OK);
    refused(&app, Some(&hs(&claims("u"))), "algorithm").await;

    let app = app_with(local("ES256", &fixture("ec-public.pem"))).await;
    let ec = EncodingKey::from_ec_pem(&fixture("ec-private.pem")).unwrap();
    assert_eq!(call(&app, Some(&sign(&claims("ec-user"), Algorithm::ES256, &ec, None))).await.0, StatusCode::OK);
    refused(&app, Some(&sign(&claims("u"), Algorithm::RS256, &rsa, None)), "algorithm").await;
}

#[tokio::test]
async fn oidc_keys_come_from_the_issuers_jwks_and_are_refetched_for_unknown_kids() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let jwks: Value = serde_json::from_slice(&fixture("jwks.json")).unwrap();
    let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")});
    let counter = fetches.clone();
    let idp = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { Json(discovery) }))
        .route(
            "/keys",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { Json(jwks) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, idp).await });

    // Configured as template.yaml configures the functions for AuthType=jwt_oidc.
    let deployed = crate::template::deployed_environment(&[
        ("AuthType", "jwt_oidc"),
        ("JwtIssuer", issuer.as_str()),
        ("JwtAudience", "opengpts"),
    ]);
    let config = test_config(move |name| {
        deployed.iter().find(|(variable, _)| variable == name).map(|(_, value)| value.clone()).filter(|v| !v.is_empty())
    });
    let app = spawn_app_with(config, test_store().await).await;
    let rsa = EncodingKey::from_rsa_pem(&fixture("rsa-private.pem")).unwrap();
    let mut good = claims("oidc-user");
    good["iss"] = json!(issuer);
    let token = sign(&good, Algorithm::RS256, &rsa, Some("test-key-1"));
    let (status, assistant) = call(&app, Some(&token)).await;
    assert_eq!((status, &assistant["user_id"]), (StatusCode::OK, &json!("oidc-user")), "{assistant}");
    assert_eq!(call(&app, Some(&token)).await.0, StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the keys are cached");

    let rotated = sign(&good, Algorithm::RS256, &rsa, Some("rotated-key"));
    refused(&app, Some(&rotated), "'rotated-key'").await;
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "an unknown kid makes it fetch the keys again");
    refused(&app, Some(&sign(&good, Algorithm::RS256, &rsa, None)), "'kid'").await;
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 600);
    refused(&app, Some(&sign(&expired, Algorithm::RS256, &rsa, Some("test-key-1"))), "expired").await;
}
