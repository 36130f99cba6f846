//! Files too large for a request: a presigned URL of a real S3 emulator (the moto server `make
//! test` starts), the PUT, then the bucket's object-created event read by the same code the
//! `ingest-worker` function runs.

use integration_tests::{spawn_state, test_config, test_store, TestApp};
use opengpts::api::AppState;
use reqwest::Method;
use serde_json::{json, Value};

/// The emulator `make test` starts: moto serves S3 beside DynamoDB.
pub fn moto_endpoint() -> String {
    std::env::var("DYNAMODB_TEST_ENDPOINT")
        .expect("DYNAMODB_TEST_ENDPOINT is not set: run `make test`, which starts the moto emulator (S3 too)")
}

async fn upload_app() -> (TestApp, AppState) {
    let bucket = format!("uploads-{}", uuid::Uuid::new_v4().simple());
    let endpoint = moto_endpoint();
    let config = test_config(move |name| match name {
        "UPLOAD_BUCKET" => Some(bucket.clone()),
        "AWS_ENDPOINT_URL_S3" => Some(endpoint.clone()),
        _ => None,
    });
    let state = AppState::new(config, test_store().await).expect("a valid configuration");
    (spawn_state(state.clone()).await, state)
}

/// The S3 event the bucket sends for one new object, as S3's documentation shows it (keys
/// URL-encoded, a space as `+`).
pub fn object_created(bucket: &str, key: &str) -> Value {
    let encoded = key.replace(' ', "+");
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "Uploaded",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": encoded, "size": 1, "eTag": "0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}},
    }]})
}

/// Asks for an upload URL and PUTs `bytes` to it; returns the upload's id and object key.
pub async fn upload(app: &TestApp, user: &str, config: Value, name: &str, bytes: &[u8]) -> (String, String) {
    let (status, upload) =
        app.post("/ingest/uploads", user, json!({"config": config, "file_name": name, "size": bytes.len()})).await;
    assert_eq!(status, 200, "{upload}");
    let url = upload["url"].as_str().unwrap();
    let mut put = reqwest::Client::new().put(url).body(bytes.to_vec());
    for (name, value) in upload["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let stored = put.send().await.unwrap();
    assert!(stored.status().is_success(), "the PUT: {} {}", stored.status(), stored.text().await.unwrap());
    let key = reqwest::Url::parse(url).unwrap().path().splitn(3, '/').nth(2).unwrap().to_string();
    let key = key.replace("%20", " ");
    (upload["upload_id"].as_str().unwrap().to_string(), key)
}

#[tokio::test]
async fn a_large_file_goes_through_a_presigned_url_and_the_buckets_event() {
    let (app, state) = upload_app().await;
    let user = "uploading-user";
    let rag = json!({"configurable": {"type": "chat_retrieval", "type==chat_retrieval/llm_type": "Offline"}});
    let assistant_id = app.assistant(user, rag, false).await;
    let config = json!({"configurable": {"assistant_id": assistant_id}});
    let notes = "The secret code word is PAPAYA-42.\n".repeat(40);
    let (upload_id, key) = upload(&app, user, config, "big notes.txt", notes.as_bytes()).await;
    assert!(key.starts_with(&format!("uploads/{assistant_id}/{upload_id}/")), "{key}");
    let status = format!("/ingest/uploads/{upload_id}");
    assert_eq!(app.get(&status, user).await.1, json!({"status": "pending"}), "not read before the event");

    let uploads = state.uploads.as_ref().unwrap();
    let bucket = state.config.uploads.as_ref().unwrap().bucket.clone();
    uploads.handle_event(&state.library, &object_created(&bucket, &key)).await.expect("the event is handled");
    let (_, outcome) = app.get(&status, user).await;
    assert_eq!(outcome["status"], "done", "{outcome}");
    assert_eq!(outcome["namespace"], json!(assistant_id));
    assert_eq!(outcome["ids"].as_array().unwrap().len(), 2, "1,400 characters: two chunks");
    assert_eq!(app.get(&status, "someone-else").await.0, 404, "only the owner sees it");

    let (_, thread) = app.post("/threads", user, json!({"name": "t", "assistant_id": assistant_id})).await;
    let thread_id = thread["thread_id"].as_str().unwrap();
    let input = json!({"messages": [{"type": "human", "content": "what is the secret code word?"}]});
    app.stream(user, json!({"thread_id": thread_id, "input": input})).await;
    let (_, state_now) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    assert!(state_now["values"][3]["content"].as_str().unwrap().contains("PAPAYA-42"), "{state_now}");
}

#[tokio::test]
async fn uploads_are_checked_before_the_url_is_given_and_a_bad_file_fails_clearly() {
    let (app, state) = upload_app().await;
    let user = "checked-uploader";
    let assistant_id = app.assistant(user, json!({"configurable": {"type": "chat_retrieval"}}), false).await;
    let config = json!({"configurable": {"assistant_id": assistant_id}});
    let ask = |name: &str, size: u64| json!({"config": config, "file_name": name, "size": size});
    let cases = [
        (ask("huge.pdf", (100 << 20) + 1), "someone", 404, "Assistant not found"),
        (ask("huge.pdf", (100 << 20) + 1), user, 413, "MAX_UPLOAD_BYTES"),
        (ask("data.json", 10), user, 415, "data.json"),
        (json!({"config": config, "size": 10}), user, 422, "file_name"),
    ];
    for (body, who, status, says) in cases {
        let (got, answer) = app.post("/ingest/uploads", who, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["detail"].to_string().contains(says), "{says} not in {answer}");
    }
    let (upload_id, key) = upload(&app, user, config.clone(), "broken.pdf", b"%PDF-1.4 not really").await;
    let bucket = state.config.uploads.as_ref().unwrap().bucket.clone();
    state.uploads.as_ref().unwrap().handle_event(&state.library, &object_created(&bucket, &key)).await.unwrap();
    let (_, outcome) = app.get(&format!("/ingest/uploads/{upload_id}"), user).await;
    assert_eq!(outcome["status"], "failed");
    assert!(outcome["detail"].as_str().unwrap().starts_with("broken.pdf could not be read as PDF"), "{outcome}");

    let plain = integration_tests::spawn_app().await;
    let (status, answer) = plain.post("/ingest/uploads", user, ask("a.txt", 1)).await;
    assert_eq!(status, 501, "a valid request for what this server does not do");
    assert!(answer["detail"].as_str().unwrap().contains("UPLOAD_BUCKET is not set"));
    let (status, answer) = plain.get(&format!("/ingest/uploads/{}", uuid::Uuid::new_v4()), user).await;
    assert_eq!(status, 501);
    assert!(answer["detail"].as_str().unwrap().contains("UPLOAD_BUCKET is not set"));
    let response = plain.request(Method::GET, "/ingest/uploads/not-a-uuid", Some(user)).send().await.unwrap();
    assert_eq!(response.status(), 422);
}
