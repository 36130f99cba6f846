//! The Lambda functions' HTTP layer behind each AWS front door: API Gateway REST (the stage in
//! the path), HTTP API (default and named stages) and Function URLs. The events are parsed by
//! lambda_http exactly as in a deployed function, then served by the same app.

use std::sync::Arc;

use opengpts::api::{self, AppState};
use opengpts::store::MemoryStore;
use serde_json::{json, Value};
use tower::ServiceExt;

fn app() -> opengpts::serve::Lambda {
    let config = integration_tests::test_config(|_| None);
    opengpts::serve::lambda_app(api::routes(), AppState::new(config, Arc::new(MemoryStore::new())).unwrap())
}

async fn send(app: &opengpts::serve::Lambda, event: Value) -> (u16, Value) {
    let request = lambda_http::request::from_str(&event.to_string()).expect("a valid event");
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn rest(method: &str, path: &str, stage: &str, body: Option<Value>) -> Value {
    json!({
        "resource": "/{proxy+}", "path": path, "httpMethod": method,
        "headers": {"cookie": "opengpts_user_id=rest-user", "content-type": "application/json"},
        "multiValueHeaders": {"cookie": ["opengpts_user_id=rest-user"], "content-type": ["application/json"]},
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": path.trim_start_matches('/')}, "stageVariables": null,
        "requestContext": {"accountId": "123456789012", "resourceId": "r1", "stage": stage, "requestId": "req",
            "identity": {"sourceIp": "203.0.113.1"}, "resourcePath": "/{proxy+}", "httpMethod": method,
            "apiId": "api", "path": format!("/{stage}{path}")},
        "body": body.map(|b| b.to_string()), "isBase64Encoded": false,
    })
}

fn http_api(method: &str, raw_path: &str, stage: &str, body: Option<Value>) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": raw_path, "rawQueryString": "",
        "cookies": ["opengpts_user_id=http-user"], "headers": {"content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "api.example",
            "domainPrefix": "api", "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.1", "userAgent": "test"}, "requestId": "req", "routeKey": "$default",
            "stage": stage, "time": "28/Nov/2026:16:00:00 +0000", "timeEpoch": 0},
        "body": body.map(|b| b.to_string()), "isBase64Encoded": false,
    })
}

#[tokio::test]
async fn rest_api_stage_prefixes_do_not_reach_the_routes() {
    let app = app();
    let created = json!({"name": "via rest", "config": {}});
    let (status, assistant) = send(&app, rest("POST", "/assistants", "prod", Some(created))).await;
    assert_eq!(status, 200, "{assistant}");
    assert_eq!(assistant["user_id"], "rest-user");
    let id = assistant["assistant_id"].as_str().unwrap();
    let (status, read) = send(&app, rest("GET", &format!("/assistants/{id}"), "prod", None)).await;
    assert_eq!((status, &read["name"]), (200, &json!("via rest")));
    assert_eq!(send(&app, rest("GET", "/nope", "prod", None)).await, (404, json!({"detail": "Not Found"})));
}

#[tokio::test]
async fn http_api_stages_and_function_urls_reach_the_same_routes() {
    let app = app();
    let (status, _) =
        send(&app, http_api("POST", "/assistants", "$default", Some(json!({"name": "a", "config": {}})))).await;
    assert_eq!(status, 200);
    let (status, named) = send(&app, http_api("GET", "/live/assistants", "live", None)).await;
    assert_eq!((status, named.as_array().map(Vec::len)), (200, Some(1)), "{named}");
    // A Function URL event is an HTTP API event on `$default`.
    let (status, listed) = send(&app, http_api("GET", "/assistants/", "$default", None)).await;
    assert_eq!((status, listed[0]["user_id"].as_str()), (200, Some("http-user")));
    // A path that merely starts like the stage name is left alone.
    assert_eq!(send(&app, http_api("GET", "/livestream", "live", None)).await.0, 404);
}

/// The event protocol behind a Function URL (`Frontend=function-url`: every route in the `api`
/// function, which streams): a command starts a run, and the thread's events come back over SSE,
/// the run's end among them.
#[tokio::test]
async fn the_event_protocol_answers_behind_a_function_url() {
    use futures::StreamExt;
    let app = app();
    let thread = uuid::Uuid::new_v4();
    let input = json!({"messages": [{"role": "user", "content": "hi"}]});
    let start = json!({"id": 1, "method": "run.start", "params": {"assistant_id": "chatbot", "input": input}});
    let command = http_api("POST", &format!("/langgraph/threads/{thread}/commands"), "$default", Some(start));
    let (status, started) = send(&app, command).await;
    assert_eq!((status, &started["type"]), (200, &json!("success")), "{started}");
    let watch = json!({"channels": ["lifecycle"], "since": 0});
    let events = http_api("POST", &format!("/langgraph/threads/{thread}/stream/events"), "$default", Some(watch));
    let request = lambda_http::request::from_str(&events.to_string()).expect("a valid event");
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
    // The stream does not end: it is read until the run's end.
    let mut body = axum::body::Body::new(response.into_body()).into_data_stream();
    let mut text = String::new();
    while !text.contains("||completed") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next()).await;
        text.push_str(&String::from_utf8_lossy(&chunk.expect("the run's events come").unwrap().unwrap()));
    }
    assert!(text.starts_with("event: lifecycle\r\ndata: ") && text.contains("||running"), "{text}");
}
