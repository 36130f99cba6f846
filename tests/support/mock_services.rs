//! A local stand-in for every service the agents' tools call, each answering in the shape its
//! API documentation shows, so the real tool clients are exercised. Search answers quote the
//! query they were given, so a test can tell which arguments reached the service.

use std::time::Duration;

use serde_json::{json, Value};

use crate::mock_provider::{MockProvider, Part, RecordedRequest, Reply};

/// The value of one query-string parameter of a recorded request.
pub fn query_param(request: &RecordedRequest, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(&format!("http://mock{}", request.path_and_query)).ok()?;
    url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

/// How long `/slow/...` waits before answering: longer than the tests' tool timeout.
pub const SLOW: Duration = Duration::from_secs(2);

pub async fn start() -> MockProvider {
    MockProvider::start(answer).await
}

/// The variables that point every tool at the mock (and allow its loopback address).
pub fn tool_vars(mock: &MockProvider) -> Vec<(&'static str, String)> {
    let base = &mock.base_url;
    vec![
        ("WIKIPEDIA_API_URL", format!("{base}/w/api.php")),
        ("DUCKDUCKGO_API_URL", format!("{base}/ddg/")),
        ("TAVILY_API_URL", format!("{base}/tavily")),
        ("TAVILY_API_KEY", "tvly-test".into()),
        ("ARXIV_API_URL", format!("{base}/arxiv/api/query")),
        ("PUBMED_API_URL", format!("{base}/pubmed")),
        ("YDC_API_URL", format!("{base}/you")),
        ("YDC_API_KEY", "ydc-test".into()),
        ("OPENAI_API_KEY", "sk-test".into()),
        ("OPENAI_BASE_URL", format!("{base}/openai/v1")),
        ("CONNERY_RUNNER_API_KEY", "connery-test".into()),
        ("TOOL_URL_ALLOWLIST", "127.0.0.1".into()),
    ]
}

fn answer(request: &RecordedRequest) -> Reply {
    let path = request.path_and_query.split('?').next().unwrap_or_default();
    let param = |name: &str| query_param(request, name).unwrap_or_default();
    match path {
        "/w/api.php" => Reply::json(json!({
            "batchcomplete": true,
            "continue": {"gsroffset": 2, "continue": "gsroffset||"},
            "query": {"pages": [
                {"pageid": 2, "ns": 0, "title": "Moon landing", "index": 2, "extract": "A Moon landing is the arrival of a spacecraft on the Moon."},
                {"pageid": 1, "ns": 0, "title": "Moon", "index": 1, "extract": format!("The Moon is Earth's only natural satellite. (searched: {})", param("gsrsearch"))},
            ]},
        })),
        "/ddg/" => Reply::json(json!({
            "Abstract": "", "AbstractSource": "Wikipedia", "AbstractURL": "https://en.wikipedia.org/wiki/Moon",
            "AbstractText": format!("The Moon orbits the Earth. (searched: {})", param("q")),
            "Answer": "", "Definition": "", "Heading": "Moon", "Type": "A",
            "RelatedTopics": [
                {"FirstURL": "https://duckduckgo.com/Lunar", "Icon": {"URL": ""}, "Result": "<a>Lunar</a>", "Text": "Lunar - relating to the Moon"},
                {"Name": "Science", "Topics": [{"FirstURL": "https://duckduckgo.com/Apollo", "Result": "", "Text": "Apollo 11 - first crewed Moon landing"}]},
            ],
        })),
        "/tavily/search" => Reply::json(json!({
            "query": request.body["query"], "follow_up_questions": null,
            "answer": "The Moon is about 384,400 km from Earth.", "images": [],
            "results": [{"title": "Moon", "url": "https://example.com/moon", "content": "The Moon orbits Earth every 27 days.", "score": 0.98, "raw_content": null}],
            "response_time": 1.2,
        })),
        "/arxiv/api/query" => Reply::text(
            200,
            "application/atom+xml; charset=utf-8",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="html">ArXiv Query: search_query={}</title>
  <entry>
    <id>http://arxiv.org/abs/2001.00001v1</id>
    <updated>2020-01-02T00:00:00Z</updated>
    <published>2020-01-01T10:00:00Z</published>
    <title>Tides of the
      Moon</title>
    <summary>  We study lunar tides &amp; orbits.
    </summary>
    <author><name>Ada Lovelace</name></author>
    <author><name>Alan Turing</name></author>
  </entry>
</feed>"#,
                param("search_query")
            ),
        ),
        "/pubmed/esearch.fcgi" => Reply::json(json!({
            "header": {"type": "esearch", "version": "0.3"},
            "esearchresult": {"count": "1", "retmax": "1", "retstart": "0", "idlist": ["111"], "translationset": [], "querytranslation": param("term")},
        })),
        "/pubmed/efetch.fcgi" => Reply::text(
            200,
            "text/xml; charset=UTF-8",
            r#"<?xml version="1.0" ?>
<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2024//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_240101.dtd">
<PubmedArticleSet><PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">111</PMID><Article PubModel="Print"><Journal><JournalIssue><PubDate><Year>2021</Year></PubDate></JournalIssue></Journal><ArticleTitle>Lunar cycles and sleep.</ArticleTitle><Abstract><AbstractText Label="BACKGROUND">Sleep varies with the moon.</AbstractText><AbstractText Label="RESULTS">Less sleep before a full moon.</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"#,
        ),
        "/you/search" => Reply::json(json!({
            "hits": [{"url": "https://example.com/moon", "title": "Moon", "description": "About the Moon",
                "snippets": ["The Moon is bright tonight.", "It has phases.", "It causes tides.", "A fourth snippet."]}],
            "latency": 0.5,
        })),
        "/openai/v1/images/generations" => Reply::json(json!({
            "created": 1589478378,
            "data": [{"revised_prompt": request.body["prompt"], "url": "https://images.example.com/moon.png"}],
        })),
        "/connery/v1/actions" => Reply::json(json!({"status": "success", "data": [{
            "id": "CAF979E6D2FF4C8B946EEBAFCB3BA475", "key": "sendPlainEmail", "title": "Send email",
            "description": "Send a plain text email.", "type": "create", "pluginId": "connery-io/gmail@main",
            "inputParameters": [
                {"key": "recipient", "title": "Recipient", "description": "Email address", "type": "string", "validation": {"required": true}},
                {"key": "body", "title": "Body", "type": "string", "validation": {"required": false}},
            ],
            "outputParameters": [{"key": "messageId", "title": "Message ID", "type": "string"}],
        }]})),
        "/connery/v1/actions/CAF979E6D2FF4C8B946EEBAFCB3BA475/run" => Reply::json(json!({
            "status": "success", "data": {"output": {"messageId": format!("sent to {}", request.body["input"]["recipient"].as_str().unwrap_or_default())}},
        })),
        "/actions/openapi.json" => Reply::json(json!({
            "openapi": "3.1.0", "info": {"title": "Sema4.ai Action Server", "version": "1"},
            "paths": {"/api/actions/greeter/greet/run": {"post": {
                "summary": "Greet", "description": "Says hello to a person.", "operationId": "greeter_greet",
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/GreetInput"}}}, "required": true},
                "responses": {"200": {"description": "Successful Response", "content": {"application/json": {"schema": {"type": "string"}}}}},
            }}},
            "components": {"schemas": {"GreetInput": {"properties": {"name": {"type": "string", "title": "Name", "description": "Who to greet"}}, "type": "object", "required": ["name"], "title": "GreetInput"}}},
        })),
        "/actions/api/actions/greeter/greet/run" => {
            Reply::json(json!(format!("Hello, {}!", request.body["name"].as_str().unwrap_or("nobody"))))
        }
        _ if path.starts_with("/redirect-to-metadata") => Reply::redirect("http://169.254.169.254/latest/meta-data/"),
        "/big" => Reply::text(200, "application/json", &format!("\"{}\"", "x".repeat(3 << 20))),
        _ if path.starts_with("/slow") => Reply {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            parts: vec![Part::after(SLOW, "{}")],
        },
        _ if path.starts_with("/fail") => Reply::text(500, "text/plain", "upstream exploded"),
        _ => Reply::text(404, "text/plain", "no such mock path"),
    }
}

/// The tool objects the latest UI sends, one per type.
pub fn ui_tool(kind: &str, config: Value) -> Value {
    json!({"id": uuid::Uuid::new_v4().to_string(), "type": kind, "name": kind, "description": "", "config": config})
}
