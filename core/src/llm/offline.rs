//! The offline model: a small deterministic rule-based responder, so the API works with no key
//! and no network. It is a stand-in, not a language model: it recognises introductions
//! ("my name is …"), questions about the user's name (answering in Spanish when asked), greetings
//! and farewells, and otherwise says plainly that it is the offline stand-in. Same input, same
//! answer, streamed token by token with a fixed delay.
//!
//! As an agent it calls a tool when the user's last message names it: a word of the tool's
//! name of five letters or more other than "search" (`wikipedia`, `duckduckgo`, `arxiv`,
//! `tavily`, `image`), the name's words run together without "search" (`pubmed`), or the whole
//! name (`you_search`). Every tool named is called, in the order of the tools, with the message
//! as its `query`. Once the tools have answered, it reports what each returned.
//!
//! As a RAG bot it answers with the start of the best passage retrieval found in your files (or
//! says nothing matched), and searches with your last message as it is: it cannot rewrite a
//! question from the conversation.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::{ChatModel, ChatRequest, Chunk, ChunkStream, LlmError, ToolSpec};
use crate::model::{Message, MessageType, ToolStatus};

pub struct OfflineModel {
    token_delay: Duration,
}

impl OfflineModel {
    pub fn new(token_delay: Duration) -> Self {
        OfflineModel { token_delay }
    }
}

#[async_trait]
impl ChatModel for OfflineModel {
    fn provider(&self) -> &'static str {
        "offline"
    }

    fn writes_search_queries(&self) -> bool {
        false
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChunkStream, LlmError> {
        let calls = tool_calls(&request.messages, &request.tools);
        if !calls.is_empty() {
            let count = calls.len();
            let chunks = calls.into_iter().map(Ok).chain([Ok(Chunk::Finish { reason: "tool_calls".into() })]);
            tracing::debug!(count, "the offline model calls tools");
            return Ok(futures::stream::iter(chunks.collect::<Vec<_>>()).boxed());
        }
        let answer = tool_report(&request.messages)
            .or_else(|| context_report(request.system.as_deref()))
            .unwrap_or_else(|| reply(&request.messages));
        let mut tokens = tokenize(&answer);
        let cut = tokens.len() > request.max_output_tokens as usize;
        tokens.truncate(request.max_output_tokens as usize);
        let input_tokens = request.messages.iter().map(|m| tokenize(&m.content.text()).len() as u64).sum();
        let output_tokens = tokens.len() as u64;
        let delay = self.token_delay;
        let text = futures::stream::iter(tokens).then(move |token| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(Chunk::Text(token))
        });
        let end = futures::stream::iter([
            Ok(Chunk::Usage { input_tokens, output_tokens }),
            Ok(Chunk::Finish { reason: if cut { "length" } else { "stop" }.into() }),
        ]);
        Ok(text.chain(end).boxed())
    }
}

/// The tool calls the last message asks for, when it is the user's.
fn tool_calls(messages: &[Message], tools: &[ToolSpec]) -> Vec<Chunk> {
    let Some(last) = messages.last().filter(|message| message.kind == MessageType::Human) else {
        return Vec::new();
    };
    let text = last.content.text();
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric() && c != '_' && c != '-').collect();
    tools
        .iter()
        .filter(|tool| triggers(&tool.name).iter().any(|trigger| words.contains(&trigger.as_str())))
        .enumerate()
        .map(|(index, tool)| Chunk::ToolCall {
            index,
            id: Some(format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..24])),
            name: Some(tool.name.clone()),
            arguments: serde_json::json!({"query": text.trim()}).to_string(),
        })
        .collect()
}

/// The words that make the offline model call the tool `name` (see the module's documentation).
fn triggers(name: &str) -> Vec<String> {
    let lower = name.to_lowercase();
    let parts: Vec<&str> = lower.split(['_', '-', ' ']).filter(|part| !part.is_empty() && *part != "search").collect();
    let mut triggers: Vec<String> =
        parts.iter().filter(|part| part.chars().count() >= 5).map(|part| part.to_string()).collect();
    let joined = parts.concat();
    if joined.chars().count() >= 5 {
        triggers.push(joined);
    }
    triggers.push(lower);
    triggers
}

/// After tools have run: what each of the last AI message's tools returned.
fn tool_report(messages: &[Message]) -> Option<String> {
    let results: Vec<&Message> =
        messages.iter().rev().take_while(|message| message.kind == MessageType::Tool).collect();
    if results.is_empty() {
        return None;
    }
    let lines: Vec<String> = results
        .iter()
        .rev()
        .map(|result| {
            let name = result.name.as_deref().unwrap_or("the tool");
            let content: String = result.content.text().chars().take(300).collect();
            match result.status {
                // The content already says what failed.
                Some(ToolStatus::Error) => content,
                _ => format!("{name} returned: {content}"),
            }
        })
        .collect();
    Some(format!("Here is what the tools found. {}", lines.join(" ")))
}

/// A RAG bot's answer: the start of the best passage found in the user's files.
fn context_report(system: Option<&str>) -> Option<String> {
    let (_, context) = system?.split_once(super::RETRIEVAL_PROMPT)?;
    let context = context.trim();
    if context.is_empty() {
        return Some("Nothing in your files matches that.".into());
    }
    let passage: String = context.chars().take(300).collect();
    Some(format!("From your files: {passage}"))
}

/// The answer to the conversation so far, decided by its last human message.
pub fn reply(messages: &[Message]) -> String {
    let humans: Vec<String> =
        messages.iter().filter(|m| m.kind == MessageType::Human).map(|m| m.content.text()).collect();
    let Some(last) = humans.last() else {
        return "Hello! How can I assist you today?".into();
    };
    let lower = last.to_lowercase();
    let spanish = lower.contains("spanish") || lower.contains("español");
    let asks_name =
        ["what's my name", "whats my name", "what is my name", "who am i"].iter().any(|q| lower.contains(q));
    if asks_name {
        let known = humans.iter().rev().find_map(|text| introduced_name(text));
        return match (known, spanish) {
            (Some(name), false) => format!("Your name is {name}."),
            (Some(name), true) => format!("Tu nombre es {name}."),
            (None, false) => "I don't know your name yet. Tell me by saying \"my name is ...\".".into(),
            (None, true) => "Todavía no sé tu nombre. Dímelo diciendo \"my name is ...\".".into(),
        };
    }
    if let Some(name) = introduced_name(last) {
        return format!("Hello, {name}! How can I assist you today?");
    }
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let has = |phrase: &str| lower.contains(phrase);
    if has("good day") || has("goodbye") || has("good night") || has("see you") || words.contains(&"bye") {
        return "You too! If you have any other questions, feel free to ask.".into();
    }
    if has("thank") {
        return "You're welcome! If you have any other questions, feel free to ask.".into();
    }
    if words.first().is_some_and(|w| ["hi", "hello", "hey", "hola"].contains(w)) {
        return "Hello! How can I assist you today?".into();
    }
    format!(
        "I am the offline stand-in model, so I cannot really answer that. You said: \"{}\". \
         Configure a model provider to get real answers.",
        last.trim()
    )
}

/// The name after "my name is", capitalised: "hi! my name is bob" → "Bob".
fn introduced_name(text: &str) -> Option<String> {
    // Searched per character, ignoring ASCII case: lower-casing the whole text can change its
    // byte length ("Ⱥ" is 2 bytes, "ⱥ" 3), so an offset found in it may not exist in the text.
    const PHRASE: &str = "my name is ";
    let start = text
        .char_indices()
        .map(|(at, _)| at)
        .find(|&at| text.get(at..at + PHRASE.len()).is_some_and(|part| part.eq_ignore_ascii_case(PHRASE)))?
        + PHRASE.len();
    let name: String = text[start..].chars().take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '\'').collect();
    let mut letters = name.chars();
    let first = letters.next()?;
    Some(first.to_uppercase().chain(letters).collect())
}

/// Splits text the way chat models stream it: words with their leading space, punctuation alone.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        let continues_word = c.is_alphanumeric() || c == '\'';
        let current_is_word = current.chars().last().is_some_and(|last| last.is_alphanumeric() || last == '\'');
        let only_space = !current.is_empty() && current.chars().all(char::is_whitespace);
        // A word goes on, or takes the spaces before it; spaces gather until a word comes.
        let joins_word = continues_word && (current_is_word || only_space || current.is_empty());
        let joins_space = c.is_whitespace() && (current.is_empty() || only_space);
        if joins_word || joins_space {
            current.push(c);
        } else {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            current.push(c);
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn human(text: &str) -> Message {
        Message::new(MessageType::Human, text)
    }

    #[test]
    fn introductions_are_found_whatever_comes_before() {
        // Found by the stream fuzzer: "Ⱥ" lower-cases to a longer character.
        assert_eq!(introduced_name("ȺȺmy name is x"), Some("X".into()));
        assert_eq!(introduced_name("Hi! My Name Is bob."), Some("Bob".into()));
        assert_eq!(introduced_name("no name here"), None);
    }

    #[test]
    fn tokens_concatenate_back_to_the_text() {
        let text = "You too! If you have any other questions, feel free to ask.";
        let tokens = tokenize(text);
        assert_eq!(tokens.concat(), text);
        assert_eq!(&tokens[..4], &["You", " too", "!", " If"]);
        assert_eq!(tokens.len(), 15);
    }

    #[test]
    fn remembers_the_name_and_answers_in_spanish_when_asked() {
        let intro = human("hi! my name is bob");
        assert_eq!(reply(std::slice::from_ref(&intro)), "Hello, Bob! How can I assist you today?");
        let question = human("whats my name? respond in spanish");
        assert_eq!(reply(&[intro, question]), "Tu nombre es Bob.");
    }

    fn tool(name: &str) -> ToolSpec {
        ToolSpec { name: name.into(), description: String::new(), parameters: serde_json::json!({}) }
    }

    #[test]
    fn calls_the_tools_the_user_names() {
        let tools = [tool("wikipedia"), tool("pub_med_search"), tool("you_search"), tool("Dall-E-Image-Generator")];
        let named = |text: &str| -> Vec<String> {
            tool_calls(&[human(text)], &tools)
                .into_iter()
                .filter_map(|chunk| match chunk {
                    Chunk::ToolCall { name, .. } => name,
                    _ => None,
                })
                .collect()
        };
        assert_eq!(named("Search Wikipedia and PubMed for the moon"), ["wikipedia", "pub_med_search"]);
        assert_eq!(named("draw an image of a cat"), ["Dall-E-Image-Generator"]);
        assert!(named("what do you think").is_empty(), "'you' alone is not a tool's name");
        assert_eq!(named("ask you_search"), ["you_search"]);
    }

    #[test]
    fn reports_what_the_tools_returned() {
        let results = [
            human("use wikipedia"),
            Message::tool_result("wikipedia", "c1", "The Moon is a satellite.".into(), ToolStatus::Success),
            Message::tool_result("arxiv", "c2", "timed out".into(), ToolStatus::Error),
        ];
        assert_eq!(
            tool_report(&results).unwrap(),
            "Here is what the tools found. wikipedia returned: The Moon is a satellite. timed out"
        );
        assert_eq!(tool_report(&results[..1]), None);
    }

    #[test]
    fn unknown_input_is_answered_honestly() {
        assert!(reply(&[human("explain monads")]).contains("offline stand-in"));
    }
}
