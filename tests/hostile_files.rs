//! Hostile files over `POST /ingest`: each answers as its corpus entry says (accepted and
//! searchable, or refused with the status and a detail naming the file and the limit), within the
//! per-file deadline. And random and mutated files of every type fed to the reader: no panic, no
//! hang past the deadline, whatever the bytes.

use std::time::{Duration, Instant};

use integration_tests::hostile::{corpus, Expect};
use integration_tests::{spawn_app_with, test_config, test_store};
use opengpts::config::IngestLimits;
use opengpts::documents::{detect, read_text};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The deadline of one file, and what a request may take beyond it.
const FILE_SECONDS: u64 = 10;
const SLACK: Duration = Duration::from_secs(5);

#[tokio::test]
async fn every_hostile_file_is_answered_as_expected_within_its_bounds() {
    let app = spawn_app_with(test_config(|_| None), test_store().await).await;
    let user = "attacker";
    let assistant_id = app.assistant(user, json!({"configurable": {"type": "chat_retrieval"}}), false).await;
    let config = Some(json!({"configurable": {"assistant_id": assistant_id}}));
    let mut failures = Vec::new();
    for file in corpus() {
        assert!(file.bytes.len() <= 4 << 20, "{} fits an upload: {} bytes", file.name, file.bytes.len());
        let started = Instant::now();
        let (status, answer) = crate::retrieval::ingest(
            &app,
            user,
            &[(file.name, "application/octet-stream", &file.bytes)],
            config.clone(),
        )
        .await;
        let took = started.elapsed();
        eprintln!(
            "{:<18} {:>8} bytes  {status}  {:>6} ms  {}",
            file.name,
            file.bytes.len(),
            took.as_millis(),
            file.what
        );
        if took > Duration::from_secs(FILE_SECONDS) + SLACK {
            failures.push(format!("{}: took {took:?}", file.name));
        }
        let detail = answer["detail"].to_string();
        match file.expect {
            Expect::Accepted(_) if status == 200 => {}
            Expect::Refused(expected, words)
                if status == expected && detail.contains(file.name) && detail.contains(words) => {}
            expect => failures.push(format!("{}: expected {expect:?}, got {status} {answer}", file.name)),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn an_accepted_hostile_file_is_searchable() {
    let app = spawn_app_with(test_config(|_| None), test_store().await).await;
    let user = "deep-reader";
    let rag = json!({"configurable": {"type": "chat_retrieval", "type==chat_retrieval/llm_type": "Offline"}});
    let assistant_id = app.assistant(user, rag, false).await;
    let deep = corpus().into_iter().find(|file| file.name == "deep.html").unwrap();
    let Expect::Accepted(words) = deep.expect else { unreachable!() };
    let config = Some(json!({"configurable": {"assistant_id": assistant_id}}));
    let (status, _) = crate::retrieval::ingest(&app, user, &[(deep.name, "text/html", &deep.bytes)], config).await;
    assert_eq!(status, 200);
    let (_, thread) = app.post("/threads", user, json!({"assistant_id": assistant_id, "name": "q"})).await;
    let thread_id = thread["thread_id"].as_str().unwrap();
    app.stream(user, json!({"thread_id": thread_id, "input": [{"type": "human", "content": "deep zorblax"}]})).await;
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    let documents: Vec<Value> = state["values"][2]["content"].as_array().cloned().unwrap_or_default();
    assert!(documents.iter().any(|d| d["page_content"] == words), "{state}");
}

#[tokio::test]
async fn limits_are_named_and_can_be_raised() {
    // A lower text limit refuses plain text past it, naming the variable; raised, it passes.
    let text = "zorblax ".repeat(1000);
    for (limit, expected) in [("100", 413), ("100000", 200)] {
        let vars = [("MAX_INGEST_TEXT_CHARS", limit.to_string())];
        let config = test_config(move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, v)| v.clone()));
        let app = spawn_app_with(config, test_store().await).await;
        let assistant_id = app.assistant("limited", json!({"configurable": {"type": "chat_retrieval"}}), false).await;
        let (status, answer) = crate::retrieval::ingest(
            &app,
            "limited",
            &[("notes.txt", "text/plain", text.as_bytes())],
            Some(json!({"configurable": {"assistant_id": assistant_id}})),
        )
        .await;
        assert_eq!(status, expected, "{answer}");
        if expected == 413 {
            let detail = answer["detail"].as_str().unwrap();
            assert!(detail.contains("notes.txt") && detail.contains("MAX_INGEST_TEXT_CHARS"), "{detail}");
        }
    }
}

/// A valid file of each type, for the mutations to start from.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("seed.txt", b"The zorblax hums at dawn.\nIt is purple.".to_vec()),
        (
            "seed.html",
            b"<html><head><title>t</title></head><body><p>The <b>zorblax</b> hums.</p></body></html>".to_vec(),
        ),
        ("seed.pdf", crate::retrieval::pdf("The zorblax hums at dawn.")),
        ("seed.docx", crate::retrieval::docx(&["The zorblax hums at dawn.", "It is purple."])),
    ]
}

/// A seed with bytes flipped, cut, or spliced in.
fn mutated() -> impl Strategy<Value = (String, Vec<u8>)> {
    let edits = prop::collection::vec((any::<u8>(), any::<prop::sample::Index>(), 0u8..3), 1..24);
    (0..4usize, edits).prop_map(|(which, edits)| {
        let (name, mut bytes) = seeds().swap_remove(which);
        for (byte, at, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at.index(bytes.len());
            match kind {
                0 => bytes[at] ^= byte.max(1),
                1 => bytes.truncate(at.max(1)),
                _ => bytes.insert(at, byte),
            }
        }
        (name.to_string(), bytes)
    })
}

fn random() -> impl Strategy<Value = (String, Vec<u8>)> {
    let names = prop::sample::select(vec!["r.txt", "r.html", "r.pdf", "r.docx", "r"]);
    (names, prop::collection::vec(any::<u8>(), 0..4096)).prop_map(|(name, bytes)| (name.to_string(), bytes))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_read_or_refused_within_the_deadline((name, bytes) in prop_oneof![mutated(), random()]) {
        let limits = IngestLimits { file_seconds: 3, file_memory_mb: 128, ..IngestLimits::default() };
        let started = Instant::now();
        // The reader is the one `/ingest` uses: a panic or an abort inside it is a refusal here.
        let outcome = detect(&name, &bytes).and_then(|kind| read_text(&name, kind, &bytes, &limits));
        prop_assert!(started.elapsed() < Duration::from_secs(3) + SLACK, "{name} took {:?}", started.elapsed());
        if let Err(error) = outcome {
            prop_assert!(error.to_string().contains(&name), "the refusal names the file: {error}");
        }
    }
}

#[tokio::test]
async fn bodies_and_stores_past_their_caps_are_refused_naming_the_variable() {
    let vars = [
        ("MAX_THREAD_MESSAGES", "4"),
        ("MAX_TOOLS_PER_ASSISTANT", "2"),
        ("MAX_CHUNKS_PER_NAMESPACE", "3"),
        ("MAX_THREAD_BYTES", "5000"),
        ("MAX_STORED_BYTES_PER_USER", "6000"),
    ];
    let config = test_config(move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, v)| v.to_string()));
    let app = spawn_app_with(config, test_store().await).await;
    let user = "capped";
    let detail = |answer: &Value| answer["detail"].to_string();

    let tools: Vec<Value> = ["wikipedia", "arxiv", "pubmed"]
        .iter()
        .map(|kind| integration_tests::mock_services::ui_tool(kind, json!({})))
        .collect();
    let body = json!({"name": "many tools", "config": {"configurable": {"type": "agent", "type==agent/tools": tools}}});
    let (status, answer) = app.post("/assistants", user, body).await;
    assert_eq!(status, 422, "{answer}");
    assert!(detail(&answer).contains("MAX_TOOLS_PER_ASSISTANT"), "{answer}");

    let chatbot = json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "Offline"}});
    let (assistant_id, thread_id) = app.thread(user, chatbot).await;
    let messages = |count: usize, size: usize| json!({"messages": (0..count).map(|_| json!({"type": "human", "content": "z".repeat(size)})).collect::<Vec<_>>()});
    let path = format!("/threads/{thread_id}/messages");
    assert_eq!(app.post(&path, user, messages(3, 10)).await.0, 200);
    let (status, answer) = app.post(&path, user, messages(2, 10)).await;
    assert_eq!(status, 413, "{answer}");
    assert!(detail(&answer).contains("MAX_THREAD_MESSAGES"), "{answer}");
    let run = json!({"thread_id": thread_id, "input": [{"type": "human", "content": "one more"}, {"type": "human", "content": "and another"}]});
    let (status, answer) = app.post("/runs", user, run).await;
    assert_eq!(status, 413, "{answer}");
    let (status, answer) = app.post(&path, user, messages(1, 6000)).await;
    assert_eq!(status, 413, "{answer}");
    assert!(detail(&answer).contains("MAX_THREAD_BYTES"), "{answer}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    assert_eq!(state["values"].as_array().unwrap().len(), 3, "nothing refused was kept");

    // Files: the assistant's quota of chunks, across uploads.
    let config = Some(json!({"configurable": {"assistant_id": assistant_id}}));
    let two_chunks = "zorblax ".repeat(200);
    let upload = |name: &'static str| {
        let (app, config, text) = (&app, config.clone(), two_chunks.clone());
        async move { crate::retrieval::ingest(app, user, &[(name, "text/plain", text.as_bytes())], config).await }
    };
    assert_eq!(upload("first.txt").await.0, 200);
    let (status, answer) = upload("second.txt").await;
    assert_eq!(status, 413, "{answer}");
    assert!(detail(&answer).contains("MAX_CHUNKS_PER_NAMESPACE"), "{answer}");
    // And the user's bytes, across assistants and threads: the thread's upload would pass them.
    let in_thread = Some(json!({"configurable": {"thread_id": thread_id}}));
    let (status, answer) =
        crate::retrieval::ingest(&app, user, &[("third.txt", "text/plain", two_chunks.as_bytes())], in_thread).await;
    assert_eq!(status, 413, "{answer}");
    assert!(detail(&answer).contains("MAX_STORED_BYTES_PER_USER"), "{answer}");
}

#[tokio::test]
async fn a_silent_connection_is_closed_and_a_slow_stream_is_not() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let vars = [("IDLE_TIMEOUT_SECONDS", "1"), ("OFFLINE_TOKEN_DELAY_MS", "150")];
    let config = test_config(move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, v)| v.to_string()));
    let app = spawn_app_with(config, test_store().await).await;
    let address = app.url("").trim_start_matches("http://").trim_end_matches('/').to_string();

    // Half a request, then silence: the server hangs up after the idle timeout.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection was closed");
    assert!(started.elapsed() >= Duration::from_millis(900), "not before the timeout: {:?}", started.elapsed());

    // A stream longer than the timeout keeps writing, so it is not idle.
    let chatbot = json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "Offline"}});
    let (_, thread_id) = app.thread("patient", chatbot).await;
    let started = Instant::now();
    let events = app
        .stream(
            "patient",
            json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi! my name is bob"}]}),
        )
        .await;
    assert!(started.elapsed() > Duration::from_secs(1), "the stream outlasted the timeout");
    assert_eq!(events.last().unwrap().event, "end", "{events:?}");
}

#[tokio::test]
async fn a_user_has_at_most_the_allowed_streams_open() {
    let vars = [("MAX_STREAMS_PER_USER", "2"), ("OFFLINE_TOKEN_DELAY_MS", "200")];
    let config = test_config(move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, v)| v.to_string()));
    let app = spawn_app_with(config, test_store().await).await;
    let chatbot = json!({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "Offline"}});
    let ask = |thread_id: &str| json!({"thread_id": thread_id, "input": [{"type": "human", "content": "hi! my name is bob"}]});
    let mut open = Vec::new();
    for _ in 0..2 {
        let (_, thread_id) = app.thread("streamer", chatbot.clone()).await;
        open.push(app.open_stream("streamer", &ask(&thread_id)).await);
    }
    let (_, third) = app.thread("streamer", chatbot.clone()).await;
    let (status, answer) = app.post("/runs/stream", "streamer", ask(&third)).await;
    assert_eq!(status, 429, "{answer}");
    assert!(answer["detail"].as_str().unwrap().contains("MAX_STREAMS_PER_USER"), "{answer}");
    // Another user is not held back.
    let (_, theirs) = app.thread("someone-else", chatbot.clone()).await;
    assert_eq!(app.stream("someone-else", ask(&theirs)).await.last().unwrap().event, "end");
    // A client that leaves frees its slot.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = app
            .request(reqwest::Method::POST, "/runs/stream", Some("streamer"))
            .json(&ask(&third))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_file_past_the_reading_deadline_is_abandoned_at_it() {
    // About 4 s of pdf-extract's work on this machine, against a deadline of 1 s.
    let prose: String = (0..40_000).map(|i| format!("Line {i} of a long and honest report about zorblax.\n")).collect();
    let pdf = integration_tests::hostile::prose_pdf(&prose, 4_000_000);
    let vars = [("INGEST_FILE_SECONDS", "1")];
    let config = test_config(move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, v)| v.to_string()));
    let app = spawn_app_with(config, test_store().await).await;
    let assistant_id = app.assistant("hasty", json!({"configurable": {"type": "chat_retrieval"}}), false).await;
    let started = Instant::now();
    let (status, answer) = crate::retrieval::ingest(
        &app,
        "hasty",
        &[("report.pdf", "application/pdf", &pdf)],
        Some(json!({"configurable": {"assistant_id": assistant_id}})),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    let detail = answer["detail"].to_string();
    assert!(detail.contains("report.pdf") && detail.contains("INGEST_FILE_SECONDS"), "{detail}");
    assert!(started.elapsed() < Duration::from_secs(3), "abandoned at the deadline: {:?}", started.elapsed());
}
