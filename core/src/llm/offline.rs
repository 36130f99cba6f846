//! The offline model: a small deterministic rule-based responder, so the API works with no key
//! and no network. It is a stand-in, not a language model: it recognises introductions
//! ("my name is …"), questions about the user's name (answering in Spanish when asked), greetings
//! and farewells, and otherwise says plainly that it is the offline stand-in. Same input, same
//! answer, streamed token by token with a fixed delay.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::{ChatModel, ChatRequest, Chunk, ChunkStream, LlmError};
use crate::model::{Message, MessageType};

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

    async fn stream(&self, request: ChatRequest) -> Result<ChunkStream, LlmError> {
        let answer = reply(&request.messages);
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
        if continues_word && (current_is_word || only_space || current.is_empty()) {
            current.push(c);
        } else if c.is_whitespace() && (current.is_empty() || only_space) {
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
        assert_eq!(reply(&[intro.clone()]), "Hello, Bob! How can I assist you today?");
        let question = human("whats my name? respond in spanish");
        assert_eq!(reply(&[intro, question]), "Tu nombre es Bob.");
    }

    #[test]
    fn unknown_input_is_answered_honestly() {
        assert!(reply(&[human("explain monads")]).contains("offline stand-in"));
    }
}
