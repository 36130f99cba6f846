//! The search services and DALL·E, each through its documented HTTP API. The function names and
//! descriptions the model sees are OpenGPTs' own, so prompts written for it work the same.

use serde_json::{json, Value};

use super::http::{fetch, fetch_json};
use super::{query, ToolError, ToolKind, Toolbox};
use crate::llm::ToolSpec;

/// What the model is told about a service tool.
pub fn spec(kind: ToolKind) -> ToolSpec {
    let (name, description, argument) = match kind {
        ToolKind::DuckDuckGo => (
            "duckduckgo_search",
            "A wrapper around DuckDuckGo Search. Useful for when you need to answer questions about current events. Input should be a search query.",
            "search query to look up",
        ),
        ToolKind::Tavily => (
            "search_tavily",
            "A search engine optimized for comprehensive, accurate, and trusted results. Useful for when you need to answer questions about current events. Input should be a search query.",
            "search query to look up",
        ),
        ToolKind::TavilyAnswer => (
            "search_tavily_answer",
            "A search engine optimized for comprehensive, accurate, and trusted results. Useful for when you need to answer questions about current events. Input should be a search query. This returns only the answer - not the original source data.",
            "search query to look up",
        ),
        ToolKind::Arxiv => (
            "arxiv",
            "A wrapper around Arxiv.org Useful for when you need to answer questions about Physics, Mathematics, Computer Science, Quantitative Biology, Quantitative Finance, Statistics, Electrical Engineering, and Economics from scientific articles on arxiv.org. Input should be a search query.",
            "search query to look up",
        ),
        ToolKind::YouSearch => ("you_search", "Searches for documents using You.com", "query to look up in retriever"),
        ToolKind::PubMed => ("pub_med_search", "Search for a query on PubMed", "query to look up in retriever"),
        ToolKind::Wikipedia => ("wikipedia", "Search for a query on Wikipedia", "query to look up in retriever"),
        ToolKind::DallE => (
            "Dall-E-Image-Generator",
            "A wrapper around OpenAI DALL-E API. Useful for when you need to generate images from a text description. Input should be an image description.",
            "image description to generate image from",
        ),
        ToolKind::ActionServer
        | ToolKind::Connery
        | ToolKind::Mcp
        | ToolKind::Retrieval
        | ToolKind::SecFilings
        | ToolKind::PressReleases => {
            unreachable!("{kind:?} is not a service tool")
        }
    };
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters: json!({
            "properties": {"query": {"description": argument, "type": "string"}},
            "required": ["query"],
            "type": "object",
        }),
    }
}

pub async fn call(toolbox: &Toolbox, kind: ToolKind, args: &Value) -> Result<String, ToolError> {
    let query = query(args)?;
    let inner = &toolbox.inner;
    let settings = &inner.settings;
    let client = &inner.client;
    let max = settings.max_response_bytes;
    match kind {
        ToolKind::Wikipedia => {
            // One request: the search, and the plain-text introduction of each page found.
            let request = client.get(&settings.wikipedia_url).query(&[
                ("action", "query"),
                ("format", "json"),
                ("formatversion", "2"),
                ("generator", "search"),
                ("gsrsearch", query),
                ("gsrlimit", "3"),
                ("prop", "extracts"),
                ("exintro", "1"),
                ("explaintext", "1"),
            ]);
            let answer = fetch_json("Wikipedia", request, max).await?;
            let mut pages: Vec<&Value> =
                answer.pointer("/query/pages").and_then(Value::as_array).into_iter().flatten().collect();
            pages.sort_by_key(|page| page.get("index").and_then(Value::as_u64).unwrap_or(u64::MAX));
            let found: Vec<String> = pages
                .iter()
                .map(|page| format!("Page: {}\nSummary: {}", text(page, "title"), text(page, "extract")))
                .collect();
            Ok(or_nothing(found, "No good Wikipedia Search Result was found"))
        }
        ToolKind::DuckDuckGo => {
            let request = client.get(&settings.duckduckgo_url).query(&[
                ("q", query),
                ("format", "json"),
                ("no_html", "1"),
                ("skip_disambig", "1"),
            ]);
            let answer = fetch_json("DuckDuckGo", request, max).await?;
            let mut found: Vec<String> = ["Answer", "AbstractText", "Definition"]
                .iter()
                .map(|key| text(&answer, key))
                .filter(|t| !t.is_empty())
                .collect();
            let topics = answer.get("RelatedTopics").and_then(Value::as_array).into_iter().flatten();
            // A topic is a result, or a group of results under `Topics`.
            let results = topics.flat_map(|topic| match topic.get("Topics").and_then(Value::as_array) {
                Some(group) => group.iter().collect::<Vec<_>>(),
                None => vec![topic],
            });
            found.extend(results.map(|result| text(result, "Text")).filter(|t| !t.is_empty()).take(5));
            Ok(or_nothing(found, "No good DuckDuckGo Search Result was found"))
        }
        ToolKind::Tavily | ToolKind::TavilyAnswer => {
            let key = settings
                .tavily_api_key
                .as_ref()
                .ok_or_else(|| ToolError::Failed("TAVILY_API_KEY is not set".into()))?;
            let answer_only = kind == ToolKind::TavilyAnswer;
            let url = format!("{}/search", settings.tavily_url.trim_end_matches('/'));
            let request = client
                .post(url)
                .bearer_auth(key.expose())
                .json(&json!({"query": query, "max_results": 5, "include_answer": answer_only}));
            let answer = fetch_json("Tavily", request, max).await?;
            if answer_only {
                return Ok(or_nothing(
                    vec![text(&answer, "answer")].into_iter().filter(|a| !a.is_empty()).collect(),
                    "Tavily found no answer",
                ));
            }
            let results: Vec<Value> = answer
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|result| json!({"url": result.get("url"), "content": result.get("content")}))
                .collect();
            Ok(Value::Array(results).to_string())
        }
        ToolKind::Arxiv => {
            let search = format!("all:{query}");
            let request = client.get(&settings.arxiv_url).query(&[
                ("search_query", search.as_str()),
                ("start", "0"),
                ("max_results", "3"),
            ]);
            let feed = fetch("arXiv", request, max).await?;
            let found: Vec<String> = xml_records(&feed, "entry", &["published", "title", "name", "summary"])
                .map_err(|reason| ToolError::Failed(format!("arXiv sent a feed that could not be read: {reason}")))?
                .into_iter()
                .map(|entry| {
                    let published = entry.first("published");
                    format!(
                        "Published: {}\nTitle: {}\nAuthors: {}\nSummary: {}",
                        published.get(..10).unwrap_or(&published),
                        entry.first("title"),
                        entry.all("name").join(", "),
                        entry.first("summary")
                    )
                })
                .collect();
            Ok(or_nothing(found, "No good Arxiv Result was found"))
        }
        ToolKind::PubMed => {
            let base = settings.pubmed_url.trim_end_matches('/');
            let search = client.get(format!("{base}/esearch.fcgi")).query(&[
                ("db", "pubmed"),
                ("term", query),
                ("retmode", "json"),
                ("retmax", "3"),
            ]);
            let found = fetch_json("PubMed", search, max).await?;
            let ids: Vec<&str> = found
                .pointer("/esearchresult/idlist")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if ids.is_empty() {
                return Ok("No good PubMed Result was found".into());
            }
            let fetch_articles = client.get(format!("{base}/efetch.fcgi")).query(&[
                ("db", "pubmed"),
                ("id", ids.join(",").as_str()),
                ("retmode", "xml"),
            ]);
            let articles = fetch("PubMed", fetch_articles, max).await?;
            let found: Vec<String> = xml_records(&articles, "PubmedArticle", &["ArticleTitle", "Year", "AbstractText"])
                .map_err(|reason| ToolError::Failed(format!("PubMed sent articles that could not be read: {reason}")))?
                .into_iter()
                .map(|article| {
                    format!(
                        "Title: {}\nPublished: {}\nSummary: {}",
                        article.first("ArticleTitle"),
                        article.first("Year"),
                        article.all("AbstractText").join("\n")
                    )
                })
                .collect();
            Ok(or_nothing(found, "No good PubMed Result was found"))
        }
        ToolKind::YouSearch => {
            let key =
                settings.you_api_key.as_ref().ok_or_else(|| ToolError::Failed("YDC_API_KEY is not set".into()))?;
            let url = format!("{}/search", settings.you_url.trim_end_matches('/'));
            let request =
                client.get(url).header("X-API-Key", key.expose()).query(&[("query", query), ("num_web_results", "3")]);
            let answer = fetch_json("You.com", request, max).await?;
            let found: Vec<String> = answer
                .get("hits")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|hit| hit.get("snippets").and_then(Value::as_array).into_iter().flatten().take(3))
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            Ok(or_nothing(found, "No good You.com Search Result was found"))
        }
        ToolKind::DallE => {
            let key =
                inner.openai_api_key.as_ref().ok_or_else(|| ToolError::Failed("OPENAI_API_KEY is not set".into()))?;
            let url = format!("{}/images/generations", inner.openai_base_url.trim_end_matches('/'));
            let request = client.post(url).bearer_auth(key.expose()).json(&json!({
                "model": "dall-e-3", "prompt": query, "n": 1, "size": "1024x1024", "quality": "hd",
            }));
            let answer = fetch_json("DALL-E", request, max).await?;
            answer
                .pointer("/data/0/url")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ToolError::Failed("DALL-E answered without an image URL".into()))
        }
        ToolKind::ActionServer
        | ToolKind::Connery
        | ToolKind::Mcp
        | ToolKind::Retrieval
        | ToolKind::SecFilings
        | ToolKind::PressReleases => {
            unreachable!("{kind:?} is not a service tool")
        }
    }
}

fn text(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().trim().to_string()
}

fn or_nothing(found: Vec<String>, nothing: &str) -> String {
    if found.is_empty() {
        nothing.to_string()
    } else {
        found.join("\n\n")
    }
}

/// The text of chosen elements inside each `record` element of an XML document.
struct Record(Vec<(String, String)>);

impl Record {
    fn all(&self, field: &str) -> Vec<String> {
        self.0.iter().filter(|(name, _)| name == field).map(|(_, text)| text.clone()).collect()
    }

    fn first(&self, field: &str) -> String {
        self.all(field).into_iter().next().unwrap_or_default()
    }
}

fn xml_records(xml: &str, record: &str, fields: &[&str]) -> Result<Vec<Record>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut records = Vec::new();
    let mut current: Option<Record> = None;
    let mut field: Option<(String, String)> = None;
    loop {
        match reader.read_event().map_err(|error| error.to_string())? {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if name == record {
                    current = Some(Record(Vec::new()));
                } else if current.is_some() && fields.contains(&name.as_str()) {
                    field = Some((name, String::new()));
                }
            }
            Event::Text(text) => {
                if let Some((_, content)) = field.as_mut() {
                    content.push_str(&text.unescape().map_err(|error| error.to_string())?);
                }
            }
            Event::CData(data) => {
                if let Some((_, content)) = field.as_mut() {
                    content.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::End(end) => {
                let name = String::from_utf8_lossy(end.local_name().as_ref()).into_owned();
                if field.as_ref().is_some_and(|(open, _)| *open == name) {
                    let (name, content) = field.take().expect("an open field");
                    let content = content.split_whitespace().collect::<Vec<_>>().join(" ");
                    current.as_mut().expect("fields are read inside records").0.push((name, content));
                } else if name == record {
                    records.extend(current.take());
                }
            }
            Event::Eof => return Ok(records),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_of_each_record() {
        let feed = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>query</title>
            <entry><title>A &amp; B</title><author><name>Ada</name></author><author><name>Bo</name></author></entry>
            <entry><title><![CDATA[C]]></title></entry></feed>"#;
        let records = xml_records(feed, "entry", &["title", "name"]).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].first("title"), "A & B");
        assert_eq!(records[0].all("name"), ["Ada", "Bo"]);
        assert_eq!(records[1].first("title"), "C");
        assert!(xml_records("<a><b></a>", "a", &["b"]).is_err());
    }
}
