//! A cold start as Lambda gives it: the `api` binary (every function's code and init: config,
//! store client, warm-up, the runtime loop) started against a local Lambda Runtime API that
//! speaks the runtime protocol, with the DynamoDB store pointed at the emulator. Measured: from
//! exec to the function's first `next` request (its init), and from handing it the first event
//! (a Function URL `GET /assistants`) to its whole response.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::Notify;

#[derive(Default)]
struct Seen {
    first_next: Option<Instant>,
    event_sent: Option<Instant>,
    response: Option<(Instant, Vec<u8>)>,
    error: Option<String>,
}

#[derive(Clone)]
struct Stub {
    seen: Arc<Mutex<Seen>>,
    answered: Arc<Notify>,
}

/// A Function URL event (payload 2.0) for `GET /assistants` as user `bench-init`.
fn event() -> serde_json::Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/assistants", "rawQueryString": "",
        "cookies": ["opengpts_user_id=bench-init"],
        "headers": {"host": "abc.lambda-url.us-east-1.on.aws", "accept": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc", "http": {"method": "GET", "path": "/assistants", "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1", "userAgent": "bench"}, "requestId": "req-1", "routeKey": "$default",
            "stage": "$default", "time": "01/Dec/2026:00:00:00 +0000", "timeEpoch": 1796083200000_u64},
        "isBase64Encoded": false,
    })
}

async fn next(State(stub): State<Stub>) -> Response {
    let already = {
        let mut seen = stub.seen.lock().unwrap();
        let first = seen.first_next.is_none();
        if first {
            seen.first_next = Some(Instant::now());
            seen.event_sent = Some(Instant::now());
        }
        !first
    };
    if already {
        // One invocation is all we measure: the function waits here until it is stopped.
        std::future::pending::<()>().await;
    }
    let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let headers = [
        ("lambda-runtime-aws-request-id", "req-1".to_string()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:api".into()),
        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".into()),
        ("content-type", "application/json".into()),
    ];
    let mut response = event().to_string().into_response();
    for (name, value) in headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

async fn respond(State(stub): State<Stub>, body: Bytes) -> StatusCode {
    stub.seen.lock().unwrap().response = Some((Instant::now(), body.to_vec()));
    stub.answered.notify_one();
    StatusCode::ACCEPTED
}

async fn failed(State(stub): State<Stub>, _headers: HeaderMap, body: Bytes) -> StatusCode {
    stub.seen.lock().unwrap().error = Some(String::from_utf8_lossy(&body).into_owned());
    stub.answered.notify_one();
    StatusCode::ACCEPTED
}

pub struct ColdStart {
    pub init: Duration,
    pub first_invocation: Duration,
}

pub async fn measure(binary: &Path, env: &[(&str, String)]) -> ColdStart {
    let stub = Stub { seen: Arc::default(), answered: Arc::default() };
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(failed))
        .route("/2018-06-01/runtime/init/error", post(failed))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut command = Command::new(binary);
    command
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "api")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("the api binary starts");
    tokio::time::timeout(Duration::from_secs(30), stub.answered.notified()).await.expect("the function answered");
    let _ = child.kill();
    let _ = child.wait();
    let seen = stub.seen.lock().unwrap();
    assert!(seen.error.is_none(), "the function reported an error: {:?}", seen.error);
    let (answered_at, body) = seen.response.clone().expect("a response");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("\"statusCode\":200") || body.contains("200"), "not a 200: {body}");
    ColdStart {
        init: seen.first_next.expect("a next request") - started,
        first_invocation: answered_at - seen.event_sent.expect("an event sent"),
    }
}
