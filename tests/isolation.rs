//! A second user against every endpoint with the first user's ids: nothing leaks, nothing changes.

use integration_tests::{spawn_app, spawn_app_with, test_config, test_store};
use reqwest::StatusCode;
use serde_json::json;

const OWNER: &str = "owner";
const INTRUDER: &str = "intruder";

#[tokio::test]
async fn a_user_never_reads_changes_or_takes_over_another_users_data() {
    let app = spawn_app().await;
    let private = app.assistant(OWNER, json!({"configurable": {"type": "chatbot"}}), false).await;
    let public = app.assistant(OWNER, json!({}), true).await;
    let (status, thread) = app.post("/threads", OWNER, json!({"name": "secret", "assistant_id": private})).await;
    assert_eq!(status, StatusCode::OK);
    let thread = thread["thread_id"].as_str().unwrap().to_string();
    let input = json!([{"type": "human", "content": "my secret"}]);
    let (_, run) = app.post("/runs", OWNER, json!({"thread_id": thread, "input": input})).await;
    let run = run["run_id"].as_str().unwrap().to_string();
    app.wait_for_run(OWNER, &run).await;

    let snapshot = || async {
        (
            app.get(&format!("/assistants/{private}"), OWNER).await,
            app.get(&format!("/assistants/{public}"), OWNER).await,
            app.get(&format!("/threads/{thread}"), OWNER).await,
            app.get(&format!("/threads/{thread}/state"), OWNER).await,
        )
    };
    let before = snapshot().await;

    let not_found = |entity: &str| (StatusCode::NOT_FOUND, json!({"detail": format!("{entity} not found")}));
    let assistant_body = json!({"name": "mine now", "config": {}, "public": true});
    let thread_body = json!({"name": "mine now", "assistant_id": public});
    let message = json!({"messages": [{"type": "human", "content": "injected"}]});
    // Reads.
    assert_eq!(app.get(&format!("/assistants/{private}"), INTRUDER).await, not_found("Assistant"));
    assert_eq!(app.get(&format!("/threads/{thread}"), INTRUDER).await, not_found("Thread"));
    assert_eq!(app.get(&format!("/threads/{thread}/messages"), INTRUDER).await, not_found("Thread"));
    assert_eq!(app.get(&format!("/threads/{thread}/state"), INTRUDER).await, not_found("Thread"));
    assert_eq!(app.get(&format!("/runs/{run}"), INTRUDER).await, not_found("Run"));
    assert_eq!(app.get("/assistants", INTRUDER).await.1, json!([]));
    assert_eq!(app.get("/threads", INTRUDER).await.1, json!([]));
    let (_, public_list) = app.get("/assistants/public", INTRUDER).await;
    assert_eq!(public_list.as_array().unwrap().len(), 1, "the private assistant is not listed");
    // Changes and takeovers.
    assert_eq!(
        app.put(&format!("/assistants/{private}"), INTRUDER, assistant_body.clone()).await,
        not_found("Assistant")
    );
    assert_eq!(app.put(&format!("/assistants/{public}"), INTRUDER, assistant_body).await, not_found("Assistant"));
    assert_eq!(app.delete(&format!("/assistants/{private}"), INTRUDER).await, not_found("Assistant"));
    assert_eq!(app.delete(&format!("/assistants/{public}"), INTRUDER).await, not_found("Assistant"));
    assert_eq!(app.put(&format!("/threads/{thread}"), INTRUDER, thread_body).await, not_found("Thread"));
    assert_eq!(app.delete(&format!("/threads/{thread}"), INTRUDER).await, not_found("Thread"));
    assert_eq!(app.post(&format!("/threads/{thread}/messages"), INTRUDER, message.clone()).await, not_found("Thread"));
    assert_eq!(
        app.post(&format!("/threads/{thread}/state"), INTRUDER, json!({"values": []})).await,
        not_found("Thread")
    );
    // Runs on a foreign thread, or naming a foreign private assistant.
    let foreign_run = json!({"thread_id": thread, "input": {"messages": []}});
    assert_eq!(app.post("/runs", INTRUDER, foreign_run.clone()).await, not_found("Thread"));
    assert_eq!(app.post("/runs/stream", INTRUDER, foreign_run).await, not_found("Thread"));
    assert_eq!(app.post(&format!("/runs/{run}/cancel"), INTRUDER, json!({})).await, not_found("Run"));
    let own_thread = json!({"name": "x", "assistant_id": private});
    assert_eq!(app.post("/threads", INTRUDER, own_thread).await, not_found("Assistant"));
    let (_, intruder_thread) = app.thread(INTRUDER, json!({})).await;
    let borrowed = json!({"thread_id": intruder_thread, "assistant_id": private, "input": {"messages": []}});
    assert_eq!(app.post("/runs", INTRUDER, borrowed).await, not_found("Assistant"));
    // A public assistant may be used, not changed.
    let (status, _) = app.post("/threads", INTRUDER, json!({"name": "x", "assistant_id": public})).await;
    assert_eq!(status, StatusCode::OK);
    // Everything public the intruder can read carries no trace of the owner's id: under the
    // cookie mock it would be the owner's credential.
    let seen = [
        app.get("/assistants/public", INTRUDER).await.1,
        app.get(&format!("/assistants/public/?shared_id={public}"), INTRUDER).await.1,
        app.get(&format!("/assistants/{public}"), INTRUDER).await.1,
    ];
    for answer in &seen {
        assert!(answer.to_string().contains(&public), "{answer}");
        assert!(!answer.to_string().contains(OWNER), "the owner's id is shown: {answer}");
    }
    assert_eq!(app.get(&format!("/assistants/{public}"), OWNER).await.1["user_id"], OWNER, "owners see their own id");

    assert_eq!(snapshot().await, before, "the owner's data is unchanged");

    // Making the public assistant private hides it from everyone else at once.
    let hide = json!({"name": "hidden", "config": {}, "public": false});
    assert_eq!(app.put(&format!("/assistants/{public}"), OWNER, hide).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/assistants/{public}"), INTRUDER).await, not_found("Assistant"));
    assert_eq!(app.get("/assistants/public", INTRUDER).await.1, json!([]));
}

/// Where strangers can call, the cookie mock takes only random UUIDs (`COOKIE_USER_IDS=uuid`).
#[tokio::test]
async fn guessable_cookie_ids_are_refused_when_only_uuids_are_allowed() {
    let config = test_config(|name| (name == "COOKIE_USER_IDS").then(|| "uuid".into()));
    let app = spawn_app_with(config, test_store().await).await;
    for guessable in ["foo", "owner", "00000000-0000-0000-0000-000000000000"] {
        let (status, error) = app.get("/assistants", guessable).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{guessable}");
        assert!(error["detail"].as_str().unwrap().contains("must be a random UUID"), "{error}");
    }
    let (status, _) = app.get("/assistants", &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(status, StatusCode::OK);
    // The local default lets the user's document's `opengpts_user_id=foo` in.
    assert_eq!(spawn_app().await.get("/assistants", "foo").await.0, StatusCode::OK);
}
