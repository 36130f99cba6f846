//! A cold start as Lambda gives it: each function's binary (its init: config, store client,
//! warm-up, the runtime loop) started against a local Lambda Runtime API that speaks the runtime
//! protocol, with the DynamoDB store pointed at the emulator. Measured: from exec to the
//! function's first `next` request (its init), and from handing it its first event to its whole
//! answer.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{json, Value};
use tokio::sync::Notify;
use uuid::Uuid;

/// One function: its binary, what its first invocation is sent, and what must come back.
pub struct Case {
    pub function: &'static str,
    /// What the first invocation is, for the report.
    pub first: &'static str,
    pub event: Value,
    pub answer: Expected,
}

pub enum Expected {
    /// An HTTP response with this status.
    Status(u16),
    /// An error answer: the event names something that is not there, which the function says.
    Error,
}

/// Every function of the template, each with a first event that reaches the store where it can.
pub fn cases() -> Vec<Case> {
    let missing = Uuid::new_v4();
    let run_job = json!({
        "run": {"run_id": Uuid::new_v4(), "thread_id": missing, "assistant_id": Uuid::new_v4(), "user_id": "bench-init",
            "status": "pending", "error": null, "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z"},
        "generation": "latest", "configurable": {"type": "chatbot", "type==chatbot/llm_type": "Offline"},
    });
    let upload = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "bench-uploads"},
            "object": {"key": format!("uploads/{missing}/{}/notes.txt", Uuid::new_v4()), "size": 5}}}]});
    vec![
        Case {
            function: "api",
            first: "GET /assistants",
            event: http("GET", "/assistants", None),
            answer: Expected::Status(200),
        },
        Case {
            function: "assistants",
            first: "GET /assistants",
            event: rest("GET", "/assistants", None),
            answer: Expected::Status(200),
        },
        Case {
            function: "threads",
            first: "GET /threads",
            event: rest("GET", "/threads", None),
            answer: Expected::Status(200),
        },
        Case {
            function: "runs",
            first: "GET /runs/{id} (404)",
            event: rest("GET", &format!("/runs/{missing}"), None),
            answer: Expected::Status(404),
        },
        Case {
            function: "runs-stream",
            first: "POST /runs/stream (404)",
            event: rest("POST", "/runs/stream", Some(json!({"thread_id": missing, "input": []}))),
            answer: Expected::Status(404),
        },
        Case {
            function: "ingest",
            first: "POST /ingest, not multipart (refused)",
            event: rest("POST", "/ingest", Some(json!({}))),
            answer: Expected::Status(415),
        },
        // The worker claims the run in the store before anything else: one it does not find there
        // (none was created) is an error it reports.
        Case {
            function: "run-worker",
            first: "a run not in the store (error)",
            event: run_job,
            answer: Expected::Error,
        },
        Case { function: "ingest-worker", first: "a missing upload (error)", event: upload, answer: Expected::Error },
    ]
}

/// A REST API event (payload 1.0, the route functions' front door) as user `bench-init`.
fn rest(method: &str, path: &str, body: Option<Value>) -> Value {
    json!({
        "resource": "/{proxy+}", "path": path, "httpMethod": method,
        "headers": {"cookie": "opengpts_user_id=bench-init", "accept": "application/json",
            "content-type": "application/json"},
        "multiValueHeaders": {"cookie": ["opengpts_user_id=bench-init"], "accept": ["application/json"],
            "content-type": ["application/json"]},
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": path.trim_start_matches('/')}, "stageVariables": null,
        "requestContext": {"accountId": "123456789012", "resourceId": "r1", "stage": "prod", "requestId": "req-1",
            "identity": {"sourceIp": "127.0.0.1"}, "resourcePath": "/{proxy+}", "httpMethod": method,
            "apiId": "abc", "path": format!("/prod{path}")},
        "body": body.map(|body| body.to_string()),
        "isBase64Encoded": false,
    })
}

/// A Function URL event (payload 2.0, the `api` function's front door) as user `bench-init`.
fn http(method: &str, path: &str, body: Option<Value>) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "cookies": ["opengpts_user_id=bench-init"],
        "headers": {"host": "abc.lambda-url.us-east-1.on.aws", "accept": "application/json",
            "content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1", "userAgent": "bench"}, "requestId": "req-1", "routeKey": "$default",
            "stage": "$default", "time": "01/Dec/2026:00:00:00 +0000", "timeEpoch": 1796083200000_u64},
        "body": body.map(|body| body.to_string()),
        "isBase64Encoded": false,
    })
}

#[derive(Default)]
struct Seen {
    first_next: Option<Instant>,
    event_sent: Option<Instant>,
    response: Option<(Instant, Vec<u8>)>,
    error: Option<String>,
    error_at: Option<Instant>,
    init_error: Option<String>,
}

#[derive(Clone)]
struct Stub {
    seen: Arc<Mutex<Seen>>,
    answered: Arc<Notify>,
    event: Arc<Value>,
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
        ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:bench".into()),
        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".into()),
        ("content-type", "application/json".into()),
    ];
    let mut response = stub.event.to_string().into_response();
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
    {
        let mut seen = stub.seen.lock().unwrap();
        seen.error = Some(String::from_utf8_lossy(&body).into_owned());
        seen.error_at = Some(Instant::now());
    }
    stub.answered.notify_one();
    StatusCode::ACCEPTED
}

async fn init_failed(State(stub): State<Stub>, body: Bytes) -> StatusCode {
    stub.seen.lock().unwrap().init_error = Some(String::from_utf8_lossy(&body).into_owned());
    stub.answered.notify_one();
    StatusCode::ACCEPTED
}

pub struct ColdStart {
    pub init: Duration,
    pub first_invocation: Duration,
}

pub async fn measure(binaries: &Path, case: &Case, env: &[(&str, String)]) -> ColdStart {
    let stub = Stub { seen: Arc::default(), answered: Arc::default(), event: Arc::new(case.event.clone()) };
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(failed))
        .route("/2018-06-01/runtime/init/error", post(init_failed))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut command = Command::new(binaries.join(case.function));
    command
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", case.function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let started = Instant::now();
    let mut child = command.spawn().unwrap_or_else(|error| panic!("{} does not start: {error}", case.function));
    tokio::time::timeout(Duration::from_secs(30), stub.answered.notified()).await.expect("the function answered");
    let _ = child.kill();
    let _ = child.wait();
    let seen = stub.seen.lock().unwrap();
    let function = case.function;
    assert!(seen.init_error.is_none(), "{function} failed to start: {:?}", seen.init_error);
    let answered_at = match (&case.answer, &seen.response, &seen.error) {
        (Expected::Error, None, Some(_)) => seen.error_at.expect("an error"),
        (Expected::Status(status), Some((at, body)), None) => {
            let body = String::from_utf8_lossy(body);
            assert!(body.contains(&format!("\"statusCode\":{status}")), "{function}: not a {status}: {body}");
            *at
        }
        (_, response, error) => panic!("{function} answered {response:?}, error {error:?}"),
    };
    ColdStart {
        init: seen.first_next.expect("a next request") - started,
        first_invocation: answered_at - seen.event_sent.expect("an event sent"),
    }
}
