//! Files for RAG bots and the Retrieval tool: `/ingest` as each UI sends it, the parsers on
//! files made here, ownership, bad files, retrieval quality with the offline embedder and an
//! OpenAI-compatible one, and `chat_retrieval` and the Retrieval tool end to end.

use std::io::Write;
use std::sync::Arc;

use integration_tests::hostile;
use integration_tests::mock_provider::{
    openai_embeddings, openai_events, parts, titan_embeddings, MockProvider, RecordedRequest, Reply,
};
use integration_tests::mock_services::ui_tool;
use integration_tests::{spawn_app_with, test_config, test_store, SseEvent, TestApp};
use opengpts::documents::{Library, OfflineEmbedder, UploadedFile};
use opengpts::store::MemoryStore;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// A multipart body as a browser's `FormData` writes it: the files first, then `config`.
/// One file part: its name, content type and bytes.
pub type FilePart<'a> = (&'a str, &'a str, &'a [u8]);

pub fn form(files: &[FilePart], config: Option<Value>) -> (String, Vec<u8>) {
    let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, content_type, bytes) in files {
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    if let Some(config) = config {
        write!(body, "--{boundary}\r\nContent-Disposition: form-data; name=\"config\"\r\n\r\n{config}\r\n").unwrap();
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub async fn ingest(app: &TestApp, user: &str, files: &[(&str, &str, &[u8])], config: Option<Value>) -> (u16, Value) {
    let (content_type, body) = form(files, config);
    let response = app
        .request(Method::POST, "/ingest", Some(user))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("an answer");
    let (status, value) = integration_tests::json_of(response).await;
    (status.as_u16(), value)
}

fn for_assistant(id: &str) -> Option<Value> {
    Some(json!({"configurable": {"assistant_id": id}}))
}

/// A one-page PDF whose page shows `text` in Helvetica, with a correct cross-reference table.
pub fn pdf(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    hostile::pdf_page(hostile::stream_object("", content.as_bytes()), Vec::new(), false)
}

/// A Word document with these paragraphs.
pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let body: String =
        paragraphs.iter().map(|p| format!("<w:p><w:r><w:t xml:space=\"preserve\">{p}</w:t></w:r></w:p>")).collect();
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>"
    );
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    archive.start_file("[Content_Types].xml", options).unwrap();
    archive
        .write_all(
            br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#,
        )
        .unwrap();
    archive.start_file("word/document.xml", options).unwrap();
    archive.write_all(document.as_bytes()).unwrap();
    archive.finish().unwrap().into_inner()
}

const NOTES: &str =
    "OpenGPTs peer test document.\nThe secret code word is PAPAYA-42.\nThe moon base is called Tranquility.";

async fn app() -> TestApp {
    spawn_app_with(test_config(|_| None), test_store().await).await
}

fn rag() -> Value {
    json!({"configurable": {"type": "chat_retrieval", "type==chat_retrieval/llm_type": "Offline", "type==agent/tools": []}})
}

async fn chunks_of(app: &TestApp, user: &str, assistant_id: &str, question: &str) -> Vec<String> {
    let (_, thread) = app.post("/threads", user, json!({"name": "q", "assistant_id": assistant_id})).await;
    let thread_id = thread["thread_id"].as_str().unwrap();
    app.stream(user, json!({"thread_id": thread_id, "input": {"messages": [{"type": "human", "content": question}]}}))
        .await;
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    state["values"][2]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["page_content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_uis_upload_is_read_and_answered_with_chunk_ids() {
    let app = app().await;
    let user = "ingest-user";
    let assistant_id = app.assistant(user, rag(), false).await;
    // The bot form: files, then config naming the assistant (both UIs).
    let html = b"<html><head><style>p{}</style><script>var hidden = 1;</script></head><body><h1>Moon facts</h1><p>The moon base is called Tranquility.</p></body></html>";
    let pdf = pdf("The rover is named Curiosity.");
    let word = docx(&["The probe is named Voyager.", "It left in 1977."]);
    let files: [(&str, &str, &[u8]); 5] = [
        ("notes.txt", "text/plain", NOTES.as_bytes()),
        ("page.html", "text/html", html),
        ("rover.pdf", "application/pdf", &pdf),
        ("probe.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", &word),
        ("readme", "application/octet-stream", b"# Plain words\nwith no extension"),
    ];
    let (status, ids) = ingest(&app, user, &files, for_assistant(&assistant_id)).await;
    assert_eq!(status, 200, "{ids}");
    let lists = ids.as_array().unwrap();
    assert_eq!(lists.len(), 5, "one list of chunk ids per file");
    assert!(lists
        .iter()
        .all(|list| list.as_array().unwrap().len() == 1 && Uuid::parse_str(list[0].as_str().unwrap()).is_ok()));

    for (question, expected) in [
        ("what is the secret code word?", "The secret code word is PAPAYA-42."),
        ("what is the rover named?", "The rover is named Curiosity."),
        ("which probe left in 1977?", "The probe is named Voyager.\nIt left in 1977."),
        ("moon facts base", "Moon facts\nThe moon base is called Tranquility."),
    ] {
        let found = chunks_of(&app, user, &assistant_id, question).await;
        assert!(found[0].contains(expected), "{question}: {found:?}");
    }
    let found = chunks_of(&app, user, &assistant_id, "hidden var").await;
    assert!(found.iter().all(|chunk| !chunk.contains("hidden")), "no script text: {found:?}");

    // The latest chat box: files for the thread alone.
    let (_, thread) = app.post("/threads", user, json!({"name": "t", "assistant_id": assistant_id})).await;
    let thread_id = thread["thread_id"].as_str().unwrap();
    let config = Some(json!({"configurable": {"thread_id": thread_id}}));
    let (status, _) =
        ingest(&app, user, &[("chat.md", "text/markdown", b"The chat password is MANGO-7.")], config).await;
    assert_eq!(status, 200);
    app.stream(
        user,
        json!({"thread_id": thread_id, "input": {"messages": [{"type": "human", "content": "chat password?"}]}}),
    )
    .await;
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    let found = state["values"][2]["content"].to_string();
    assert!(found.contains("MANGO-7"), "thread files are searched with the assistant's: {found}");
}

#[tokio::test]
async fn bad_uploads_get_clear_errors_and_store_nothing() {
    let app = app().await;
    let user = "bad-upload-user";
    let assistant_id = app.assistant(user, rag(), false).await;
    let config = for_assistant(&assistant_id);
    // (files, config, status, what the detail says)
    type Case<'a> = (Vec<(&'a str, &'a str, &'a [u8])>, Option<Value>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("data.json", "application/json", b"{}")],
            config.clone(),
            415,
            "data.json: files of this type (.json) cannot be read",
        ),
        (vec![("empty.txt", "text/plain", b"")], config.clone(), 422, "empty.txt is empty"),
        (
            vec![("broken.pdf", "application/pdf", b"%PDF-1.4 garbage")],
            config.clone(),
            422,
            "broken.pdf could not be read as PDF",
        ),
        (vec![("blank.txt", "text/plain", b" \n ")], config.clone(), 422, "blank.txt holds no text"),
        (vec![("old.doc", "application/msword", b"x")], config.clone(), 415, "save it as .docx"),
        // A good file beside a bad one: neither is stored.
        (
            vec![("good.txt", "text/plain", b"UNIQUEWORD"), ("bad.json", "application/json", b"{}")],
            config.clone(),
            415,
            "bad.json",
        ),
        (vec![], config.clone(), 422, "Field required"),
        (vec![("a.txt", "text/plain", b"x")], None, 422, "Field required"),
        (
            vec![("a.txt", "text/plain", b"x")],
            Some(json!({"configurable": {}})),
            422,
            "Exactly one of assistant_id or thread_id",
        ),
        (vec![("a.txt", "text/plain", b"x")], Some(json!({"no": 1})), 422, "Field required"),
        (
            vec![("a.txt", "text/plain", b"x")],
            Some(json!({"configurable": {"assistant_id": "nope"}})),
            422,
            "valid UUID",
        ),
        (
            vec![("a.txt", "text/plain", b"x")],
            Some(json!({"configurable": {"assistant_id": Uuid::new_v4()}})),
            404,
            "Assistant not found",
        ),
        (
            vec![("a.txt", "text/plain", b"x")],
            Some(json!({"configurable": {"thread_id": Uuid::new_v4()}})),
            404,
            "Thread not found",
        ),
    ];
    for (files, config, status, says) in cases {
        let (got, answer) = ingest(&app, user, &files, config.clone()).await;
        let detail = answer["detail"].to_string();
        assert_eq!(got, status, "{files:?} {config:?}: {answer}");
        assert!(detail.contains(says), "{says:?} not in {detail}");
    }
    assert!(chunks_of(&app, user, &assistant_id, "UNIQUEWORD").await.is_empty(), "nothing was stored");

    let big = vec![b'x'; (4 << 20) + 1];
    let (status, answer) = ingest(&app, user, &[("big.txt", "text/plain", &big)], for_assistant(&assistant_id)).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer["detail"].as_str().unwrap().contains("MAX_INGEST_BYTES"));
    let response = app.request(Method::POST, "/ingest", Some(user)).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), 415, "not multipart");
    let answer: Value = response.json().await.unwrap();
    assert!(answer["detail"].as_str().unwrap().contains("this body is application/json"), "{answer}");
    let broken = app
        .request(Method::POST, "/ingest", Some(user))
        .header("content-type", "multipart/form-data")
        .body("no boundary")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400, "multipart without a boundary");
}

/// The seed UI saves a new assistant and uploads its files at once: the upload may come first.
#[tokio::test]
async fn an_upload_that_arrives_before_its_assistant_waits_for_it() {
    let app = Arc::new(app().await);
    let user = "racing-user";
    let assistant_id = Uuid::new_v4().to_string();
    let upload = {
        let (app, id) = (app.clone(), assistant_id.clone());
        tokio::spawn(async move {
            ingest(&app, user, &[("notes.txt", "text/plain", NOTES.as_bytes())], for_assistant(&id)).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let body = json!({"name": "Seed Retrieval Bot", "config": rag()["configurable"].clone().as_object().map(|c| json!({"configurable": c})), "public": false});
    let (status, _) = app.put(&format!("/assistants/{assistant_id}"), user, body).await;
    assert_eq!(status, 200);
    let (status, ids) = upload.await.unwrap();
    assert_eq!(status, 200, "{ids}");
    assert!(chunks_of(&app, user, &assistant_id, "secret code word").await[0].contains("PAPAYA-42"));
}

#[tokio::test]
async fn only_the_owner_adds_files_and_no_one_else_finds_them() {
    let app = app().await;
    let (ann, bob) = ("ann-files", "bob-files");
    let private = app.assistant(ann, rag(), false).await;
    let public = app.assistant(ann, rag(), true).await;
    for target in [&private, &public] {
        let (status, _) = ingest(&app, bob, &[("x.txt", "text/plain", b"bob was here")], for_assistant(target)).await;
        assert_eq!(status, 404, "bob cannot add files to ann's assistant");
    }
    let (_, ann_thread) = app.post("/threads", ann, json!({"name": "t", "assistant_id": private})).await;
    let config = Some(json!({"configurable": {"thread_id": ann_thread["thread_id"]}}));
    assert_eq!(ingest(&app, bob, &[("x.txt", "text/plain", b"x")], config).await.0, 404);
    let (status, _) =
        ingest(&app, ann, &[("notes.txt", "text/plain", NOTES.as_bytes())], for_assistant(&private)).await;
    assert_eq!(status, 200);
    // Bob's own bot and his own tools see only his own files.
    let bobs = app.assistant(bob, rag(), false).await;
    assert!(chunks_of(&app, bob, &bobs, "secret code word").await.is_empty());
    let tools = json!({"configurable": {"type": "agent", "type==agent/agent_type": "Offline",
        "type==agent/tools": [ui_tool("retrieval", json!({}))]}});
    let (_, thread_id) = app.thread(bob, tools).await;
    app.stream(bob, json!({"thread_id": thread_id, "input": [{"type": "human", "content": "ask the retriever for the secret code word"}]})).await;
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), bob).await;
    assert_eq!(state["values"][2]["content"], "No uploaded file matches the query.");
    // Deleting the assistant deletes its files: it cannot be uploaded to, or found, again.
    app.delete(&format!("/assistants/{private}"), ann).await;
    assert_eq!(ingest(&app, ann, &[("x.txt", "text/plain", b"x")], for_assistant(&private)).await.0, 404);
}

/// Passages and the questions each answers, with few words in common between them.
const CORPUS: [(&str, &str); 6] = [
    (
        "The rover Curiosity landed in Gale crater on Mars in August 2012 and studies its rocks.",
        "Where did the Curiosity rover land?",
    ),
    ("Sourdough bread rises because wild yeast and lactobacilli ferment the flour.", "Why does sourdough bread rise?"),
    ("The secret code word for the moon base is PAPAYA-42.", "What is the code word of the moon base?"),
    (
        "Photosynthesis turns sunlight, water and carbon dioxide into glucose and oxygen in leaves.",
        "How do leaves make glucose from sunlight?",
    ),
    (
        "The Treaty of Westphalia in 1648 ended the Thirty Years' War in Europe.",
        "Which treaty ended the Thirty Years' War?",
    ),
    (
        "A transistor amplifies or switches electronic signals and is made of semiconductor material.",
        "What is a transistor made of?",
    ),
];

async fn check_quality(library: &Library) {
    let namespace = Uuid::new_v4();
    let files = CORPUS
        .iter()
        .enumerate()
        .map(|(index, (passage, _))| UploadedFile {
            name: format!("{index}.txt"),
            bytes: passage.as_bytes().to_vec().into(),
        })
        .collect();
    library.ingest(namespace, &opengpts::model::UserId::new("quality").unwrap(), files).await.expect("ingested");
    for (passage, question) in CORPUS {
        let found = library.search(&[namespace], question, 3).await.unwrap();
        assert!(found.iter().any(|chunk| chunk.text == passage), "{question} did not find {passage:?} in {found:?}");
        assert_eq!(found[0].text, passage, "{question}: the right passage comes first");
    }
}

#[tokio::test]
async fn the_right_passage_is_found_offline() {
    check_quality(&Library::new(Arc::new(MemoryStore::new()), Arc::new(OfflineEmbedder))).await;
}

#[tokio::test]
async fn the_right_passage_is_found_through_an_openai_compatible_embedder() {
    let embeddings = MockProvider::start(openai_embeddings).await;
    let vars = [
        ("EMBEDDINGS_PROVIDER", "openai".to_string()),
        ("OPENAI_API_KEY", "sk-embed".into()),
        ("OPENAI_BASE_URL", format!("{}/v1", embeddings.base_url)),
    ];
    let config = test_config(|name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.clone()));
    let library = Library::new(Arc::new(MemoryStore::new()), opengpts::documents::embedder_from_config(&config));
    check_quality(&library).await;
    let requests = embeddings.requests();
    assert_eq!(requests[0].path_and_query, "/v1/embeddings");
    assert_eq!(requests[0].headers["authorization"], "Bearer sk-embed");
    assert_eq!(requests[0].body["model"], "text-embedding-3-small");
    assert_eq!(requests[0].body["input"].as_array().unwrap().len(), 1, "one chunk per file");
}

/// Titan through the real AWS SDK client (signed requests, its endpoint override), against a
/// local server speaking Bedrock's `InvokeModel`.
#[tokio::test]
async fn the_right_passage_is_found_through_titan_embeddings_on_bedrock() {
    assert!(
        std::env::var("AWS_ACCESS_KEY_ID").is_ok() && std::env::var("AWS_REGION").is_ok(),
        "AWS_ACCESS_KEY_ID and AWS_REGION are not set: run `make test`, which gives the AWS SDK test credentials"
    );
    let bedrock = MockProvider::start(titan_embeddings).await;
    let vars = [
        ("EMBEDDINGS_PROVIDER", "bedrock".to_string()),
        ("EMBEDDINGS_DIMENSIONS", "512".into()),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock.base_url.clone()),
    ];
    let config = test_config(|name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.clone()));
    let library = Library::new(Arc::new(MemoryStore::new()), opengpts::documents::embedder_from_config(&config));
    check_quality(&library).await;
    let request = &bedrock.requests()[0];
    assert_eq!(request.path_and_query, "/model/amazon.titan-embed-text-v2%3A0/invoke");
    assert!(request.headers["authorization"].to_str().unwrap().starts_with("AWS4-HMAC-SHA256 "), "signed with SigV4");
    assert_eq!(request.body["dimensions"], 512);
    assert_eq!(request.body["normalize"], true);
    assert!(request.body["inputText"].is_string());
}

/// The embedder fails on the second file: the first, already embedded, is not stored either.
#[tokio::test]
async fn an_embedder_failing_part_way_stores_nothing() {
    let embeddings = MockProvider::start(|request: &RecordedRequest| {
        if request.body["input"].to_string().contains("FAILS") {
            Reply::json_error(500, json!({"error": {"message": "The server had an error", "type": "server_error"}}))
        } else {
            openai_embeddings(request)
        }
    })
    .await;
    let base = format!("{}/v1", embeddings.base_url);
    let app = spawn_app_with(
        test_config(move |name| match name {
            "EMBEDDINGS_PROVIDER" => Some("openai".into()),
            "OPENAI_API_KEY" => Some("sk".into()),
            "OPENAI_BASE_URL" => Some(base.clone()),
            _ => None,
        }),
        test_store().await,
    )
    .await;
    let user = "half-user";
    let assistant_id = app.assistant(user, rag(), false).await;
    let files: [(&str, &str, &[u8]); 2] =
        [("first.txt", "text/plain", b"The first file says KIWI."), ("second.txt", "text/plain", b"This one FAILS.")];
    let (status, answer) = ingest(&app, user, &files, for_assistant(&assistant_id)).await;
    assert_eq!(status, 502, "{answer}");
    assert!(answer["detail"].as_str().unwrap().contains("The server had an error"), "{answer}");
    assert_eq!(embeddings.requests().len(), 2, "both files were sent to be embedded");
    let (status, _) = ingest(&app, user, &[("third.txt", "text/plain", b"LIME")], for_assistant(&assistant_id)).await;
    assert_eq!(status, 200);
    let found = chunks_of(&app, user, &assistant_id, "KIWI first").await;
    assert_eq!(found, ["LIME"], "only the later file was stored");
}

#[tokio::test]
async fn a_change_of_embedder_is_a_clear_error() {
    let embeddings = MockProvider::start(openai_embeddings).await;
    let store = test_store().await;
    let offline = spawn_app_with(test_config(|_| None), store.clone()).await;
    let base = format!("{}/v1", embeddings.base_url);
    let vars = move |name: &str| match name {
        "EMBEDDINGS_PROVIDER" => Some("openai".to_string()),
        "OPENAI_API_KEY" => Some("sk".into()),
        "OPENAI_BASE_URL" => Some(base.clone()),
        _ => None,
    };
    let openai = spawn_app_with(test_config(vars), store).await;
    let user = "switching-user";
    let assistant_id = offline.assistant(user, rag(), false).await;
    assert_eq!(ingest(&offline, user, &[("a.txt", "text/plain", b"alpha")], for_assistant(&assistant_id)).await.0, 200);
    let (status, answer) =
        ingest(&openai, user, &[("b.txt", "text/plain", b"beta")], for_assistant(&assistant_id)).await;
    assert_eq!(status, 409, "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("offline-hashed-words-v1") && detail.contains("openai-compatible:text-embedding-3-small"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_rag_bot_answers_from_the_files_as_opengpts_streams_it() {
    let app = app().await;
    let user = "rag-user";
    let assistant_id = app.assistant(user, rag(), false).await;
    ingest(&app, user, &[("notes.txt", "text/plain", NOTES.as_bytes())], for_assistant(&assistant_id)).await;
    let (_, thread) = app.post("/threads", user, json!({"name": "t", "assistant_id": assistant_id})).await;
    let thread_id = thread["thread_id"].as_str().unwrap();
    let question = "what is the secret code word?";
    let events = app
        .stream(user, json!({"thread_id": thread_id, "input": {"messages": [{"type": "human", "content": question}]}}))
        .await;
    let data: Vec<Value> = events.iter().filter(|e| e.event == "data").map(SseEvent::json).collect();
    // As transcript 35: the input, the retrieval call, its documents, then the answer.
    assert_eq!(data[0][0]["type"], "human");
    let call = &data[1][0];
    assert_eq!(call["type"], "ai");
    assert!(Uuid::parse_str(call["id"].as_str().unwrap()).is_ok(), "a plain UUID on the first turn");
    let tool_call = &call["tool_calls"][0];
    assert_eq!((tool_call["name"].as_str(), &tool_call["args"]), (Some("retrieval"), &json!({"query": question})));
    assert_eq!(tool_call["id"].as_str().unwrap().len(), 32);
    let documents = &data[2][0];
    assert_eq!((documents["type"].as_str(), documents["name"].as_str()), (Some("tool"), Some("retrieval")));
    assert_eq!(documents["tool_call_id"], tool_call["id"]);
    let document = &documents["content"][0];
    assert_eq!(document["metadata"], json!({"source": "notes.txt", "namespace": assistant_id}));
    assert_eq!((document["type"].as_str(), document["id"].is_null()), (Some("Document"), true));
    assert!(document["page_content"].as_str().unwrap().contains("PAPAYA-42"));
    assert_eq!(data[3][0]["content"], "", "the answer starts empty");
    let answer = data.last().unwrap()[0]["content"].as_str().unwrap();
    assert!(
        answer.starts_with("From your files: OpenGPTs peer test document.\nThe secret code word is PAPAYA-42."),
        "{answer}"
    );
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    let kinds: Vec<&str> = state["values"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["human", "ai", "tool", "ai"]);
}

#[tokio::test]
async fn a_later_turn_searches_with_the_query_the_model_writes() {
    let llm = MockProvider::start(|request: &RecordedRequest| {
        let asks_for_query =
            request.body["messages"][0]["content"].as_str().is_some_and(|c| c.starts_with("Here is a conversation"));
        let words: &[&str] = if asks_for_query { &["moon", " base", " name"] } else { &["It", " is", " Tranquility."] };
        Reply::event_stream(parts(openai_events(words)))
    })
    .await;
    let base = format!("{}/v1", llm.base_url);
    let app = spawn_app_with(
        test_config(move |name| match name {
            "OPENAI_API_KEY" => Some("sk".into()),
            "OPENAI_BASE_URL" => Some(base.clone()),
            _ => None,
        }),
        test_store().await,
    )
    .await;
    let user = "rag-gpt-user";
    let config = json!({"configurable": {"type": "chat_retrieval", "type==chat_retrieval/llm_type": "GPT 4o",
        "type==chat_retrieval/system_message": "Be brief."}});
    let assistant_id = app.assistant(user, config, false).await;
    ingest(&app, user, &[("notes.txt", "text/plain", NOTES.as_bytes())], for_assistant(&assistant_id)).await;
    let (_, thread) = app.post("/threads", user, json!({"name": "t", "assistant_id": assistant_id})).await;
    let thread_id = thread["thread_id"].as_str().unwrap();
    let turn =
        |text: &str| json!({"thread_id": thread_id, "input": {"messages": [{"type": "human", "content": text}]}});
    app.stream(user, turn("hello")).await;
    let events = app.stream(user, turn("and what is it called?")).await;
    let data: Vec<Value> = events.iter().filter(|e| e.event == "data").map(SseEvent::json).collect();
    // The first event holds the thread so far; then the call with the written query.
    assert_eq!(data[0].as_array().unwrap().len(), 5);
    let call = &data[1][0];
    assert!(call["id"].as_str().unwrap().starts_with("run-"));
    assert_eq!(call["tool_calls"][0]["args"], json!({"query": "moon base name"}));
    assert!(
        events.iter().all(|e| !e.data.as_deref().unwrap_or("").contains("\"moon base\"")),
        "the query is not streamed"
    );
    let requests = llm.requests();
    let answer_request = &requests.last().unwrap().body;
    let system = answer_request["messages"][0]["content"].as_str().unwrap();
    assert!(system.starts_with("Be brief.\n\nRespond to the user using ONLY the context provided below."), "{system}");
    assert!(system.contains("The moon base is called Tranquility."));
    let roles: Vec<&str> =
        answer_request["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"], "no retrieval steps reach the model");
}

#[tokio::test]
async fn an_agent_searches_its_assistants_and_threads_files() {
    let app = app().await;
    let user = "agent-files-user";
    let config = json!({"configurable": {"type": "agent", "type==agent/agent_type": "Offline",
        "type==agent/tools": [ui_tool("retrieval", json!({}))]}});
    let (assistant_id, thread_id) = app.thread(user, config).await;
    ingest(&app, user, &[("notes.txt", "text/plain", NOTES.as_bytes())], for_assistant(&assistant_id)).await;
    let thread_config = Some(json!({"configurable": {"thread_id": thread_id}}));
    ingest(&app, user, &[("chat.txt", "text/plain", b"The secret chat word is MANGO-7.")], thread_config).await;
    let events = app.stream(user, json!({"thread_id": thread_id, "input": [{"type": "human", "content": "ask the retriever: what is the secret word?"}]})).await;
    assert!(events.iter().all(|e| e.event != "error"), "{events:?}");
    let (_, state) = app.get(&format!("/threads/{thread_id}/state"), user).await;
    let values = state["values"].as_array().unwrap();
    assert_eq!(values[1]["tool_calls"][0]["name"], "Retriever");
    let found = values[2]["content"].as_str().unwrap();
    assert!(found.contains("PAPAYA-42") && found.contains("MANGO-7"), "{found}");
    assert!(values[3]["content"].as_str().unwrap().contains("Retriever returned:"));
}
