//! The bots' flows, as OpenGPTs built them: a chatbot answers once, an agent calls tools until
//! it answers in words, a RAG bot searches its files and answers from them. The run's lifecycle
//! around them (lease, heartbeat, finish) is `engine`'s.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use super::answer::AnswerBuilder;
use super::engine::RunEngine;
use super::execution::{EventSink, Guard, Progress};
use super::failure::Failure;
use super::job::RunJob;
use super::Bot;
use crate::documents::TOP_K;
use crate::llm::{answered_conversation, ChatRequest, ChunkStream, LlmError, ResolvedModel, RETRIEVAL_PROMPT};
use crate::model::{Content, Generation, Message, MessageType, Run, ToolStatus};
use crate::tools::AgentConfig;

/// How many times a model is asked before its answer starts, when it is busy or failing.
const MODEL_ATTEMPTS: u32 = 3;
/// The pause before the second attempt (doubled before the next), when the provider names none.
const FIRST_MODEL_RETRY_PAUSE: Duration = Duration::from_millis(500);
/// The longest wait between attempts, whatever the provider's `retry-after` asks.
const MAX_MODEL_RETRY_WAIT: Duration = Duration::from_secs(20);

impl RunEngine {
    /// A chatbot answers once; an agent calls tools until it answers in words. Returns the
    /// tokens used (input, output).
    pub(super) async fn agent_loop(
        &self,
        job: &RunJob,
        resolved: &ResolvedModel,
        agent: Option<&AgentConfig>,
        history: &mut Vec<Message>,
        progress: &mut Progress,
        guard: &mut Guard<'_>,
        sink: &mut EventSink,
    ) -> Result<(u64, u64), Failure> {
        let run = &job.run;
        // A bot without tools still answers a call its model makes (with an error the model
        // reads), so no run ends on a call nobody will answer.
        let tools = match agent {
            Some(agent) if !agent.tools.is_empty() => {
                let namespaces = [run.assistant_id, run.thread_id];
                let bound = self.guarded(guard, sink, self.inner.tools.bind(agent, &namespaces)).await?;
                bound.map_err(|e| Failure::Tools(e.to_string()))?
            }
            _ => self.inner.tools.none(),
        };
        let interrupt = agent.is_some_and(|agent| agent.interrupt_before_action || agent.tool_review);
        let review = agent.is_some_and(|agent| agent.tool_review);
        let bot = Bot::of_configurable(&job.configurable);
        let model_node = bot.model_node();
        let mut usage = (0, 0);
        let mut model_calls = 0;
        for step in 0.. {
            if step == job.recursion_limit {
                return Err(Failure::RecursionLimit(job.recursion_limit));
            }
            if let Some(pending) =
                history.last().filter(|last| last.kind == MessageType::Ai && !last.tool_calls.is_empty())
            {
                // With tool confirmation the run stops before each action; a run that continues
                // the thread is the user's go-ahead for the one it finds.
                if interrupt && !(step == 0 && job.resume) {
                    sink.interrupted(history, review).await;
                    break;
                }
                sink.enter(bot.tools_node(), history).await;
                let results = self.guarded(guard, sink, tools.run(pending)).await?;
                self.keep(run, progress, &results).await?;
                sink.results(history, &results).await;
                sink.node_done(history, &results).await;
                history.extend(results);
                continue;
            }
            // The run's first answer is named after it, as OpenGPTs does; later ones get their own.
            let id = if model_calls == 0 { format!("run-{}", run.run_id) } else { format!("run-{}", Uuid::new_v4()) };
            model_calls += 1;
            let request = ChatRequest {
                model: resolved.model_id.clone(),
                system: resolved.system_message.clone(),
                messages: answered_conversation(history),
                max_output_tokens: self.inner.config.max_output_tokens,
                tools: tools.specs(),
            };
            sink.enter(model_node, history).await;
            let answer = self.model_step(job, resolved, request, history, id, guard, sink).await?;
            add_usage(&mut usage, &answer);
            if answer.tool_calls.is_empty() {
                sink.node_done(history, std::slice::from_ref(&answer)).await;
                progress.answer.push(answer);
                break;
            }
            // Stored before its tools run, so a run stopped among them can be taken up again.
            self.keep(run, progress, std::slice::from_ref(&answer)).await?;
            sink.node_done(history, std::slice::from_ref(&answer)).await;
            history.push(answer);
        }
        sink.closing(history, &progress.answer).await;
        Ok(usage)
    }

    /// A RAG bot's turn, as OpenGPTs' `chat_retrieval` takes it: a search query (the question,
    /// or with a conversation behind it one the model writes), the files' best chunks shown as
    /// a retrieval call and its documents, then an answer from those chunks alone.
    pub(super) async fn answer_from_files(
        &self,
        job: &RunJob,
        resolved: &ResolvedModel,
        history: &mut Vec<Message>,
        progress: &mut Progress,
        guard: &mut Guard<'_>,
        sink: &mut EventSink,
    ) -> Result<(u64, u64), Failure> {
        let run = &job.run;
        // What the model reads: the words said, not the retrieval steps.
        let said = |messages: &[Message]| -> Vec<Message> {
            let spoken =
                |m: &&Message| matches!(m.kind, MessageType::Human | MessageType::Ai) && m.tool_calls.is_empty();
            messages.iter().filter(spoken).cloned().collect()
        };
        let conversation = said(history);
        let question = conversation.iter().rev().find(|m| m.kind == MessageType::Human).map(|m| m.content.text());
        let mut usage = (0, 0);
        if let Some(question) = question {
            sink.enter("invoke_retrieval", history).await;
            let earlier_answers = conversation.iter().any(|m| m.kind == MessageType::Ai);
            let (query, id) = if earlier_answers && resolved.model.writes_search_queries() {
                let request = search_query_request(resolved, &conversation, self.inner.config.max_output_tokens);
                let written =
                    self.guarded(guard, sink, collect_text(resolved, request)).await?.map_err(Failure::Model)?;
                (written, format!("run-{}", Uuid::new_v4()))
            } else {
                (question, Uuid::new_v4().to_string())
            };
            let call_id = Uuid::new_v4().simple().to_string();
            let mut ask = Message::new(MessageType::Ai, "");
            ask.id = Some(id);
            ask.tool_calls =
                vec![json!({"name": "retrieval", "args": {"query": query}, "id": call_id, "type": "tool_call"})];
            self.keep(run, progress, std::slice::from_ref(&ask)).await?;
            sink.progress(history, &ask).await;
            sink.node_done(history, std::slice::from_ref(&ask)).await;
            history.push(ask);
            sink.enter("retrieve", history).await;

            let namespaces = [run.assistant_id, run.thread_id];
            let found = self.guarded(guard, sink, self.inner.library.search(&namespaces, &query, TOP_K)).await?;
            let found = found.map_err(|error| Failure::Tools(error.to_string()))?;
            let documents = found
                .iter()
                .map(|chunk| {
                    json!({"id": null, "metadata": {"source": chunk.source, "namespace": chunk.namespace},
                    "page_content": chunk.text, "type": "Document"})
                })
                .collect();
            let mut documents_message = Message::tool_result("retrieval", &call_id, String::new(), ToolStatus::Success);
            documents_message.content = Content::Parts(documents);
            let results = [documents_message];
            self.keep(run, progress, &results).await?;
            sink.results(history, &results).await;
            sink.node_done(history, &results).await;
            history.extend(results);
            sink.enter("response", history).await;

            let context: Vec<&str> = found.iter().map(|chunk| chunk.text.as_str()).collect();
            let instructions = resolved.system_message.as_deref().unwrap_or(crate::llm::DEFAULT_SYSTEM_MESSAGE);
            let system = format!("{instructions}\n\n{RETRIEVAL_PROMPT}\n\n{}", context.join("\n"));
            let request = ChatRequest {
                model: resolved.model_id.clone(),
                system: Some(system),
                messages: said(history),
                max_output_tokens: self.inner.config.max_output_tokens,
                tools: Vec::new(),
            };
            let answer =
                self.model_step(job, resolved, request, history, format!("run-{}", run.run_id), guard, sink).await?;
            add_usage(&mut usage, &answer);
            sink.node_done(history, std::slice::from_ref(&answer)).await;
            progress.answer.push(answer);
        }
        sink.closing(history, &progress.answer).await;
        Ok(usage)
    }

    /// One model call, streamed to the client as it grows. The caller stores the message.
    #[allow(clippy::too_many_arguments)]
    async fn model_step(
        &self,
        job: &RunJob,
        resolved: &ResolvedModel,
        request: ChatRequest,
        history: &[Message],
        id: String,
        guard: &mut Guard<'_>,
        sink: &mut EventSink,
    ) -> Result<Message, Failure> {
        let mut stream = self.open_stream(resolved, request, guard, sink).await?;
        let mut answer = AnswerBuilder::new(job.generation, id);
        // Latest clients get the empty AI message first; the seed document's client would print
        // it as a blank line, which its documented output does not show.
        if job.generation != Generation::Seed {
            sink.progress(history, answer.message()).await;
        }
        while let Some(chunk) = self.guarded(guard, sink, stream.next()).await? {
            if answer.add(chunk.map_err(Failure::Model)?) {
                sink.progress(history, answer.message()).await;
            }
        }
        let answer = answer.finish(&resolved.model_id);
        sink.finished(history, &answer).await;
        Ok(answer)
    }

    /// Opens the model's stream and reads its first chunk. A provider that fails before that
    /// (busy, unreachable, a 5xx, a stream broken at once) is asked again, after the wait it asks
    /// for or a growing pause; once a chunk has come, a failure ends the run.
    async fn open_stream(
        &self,
        resolved: &ResolvedModel,
        request: ChatRequest,
        guard: &mut Guard<'_>,
        sink: &EventSink,
    ) -> Result<ChunkStream, Failure> {
        let mut pause = FIRST_MODEL_RETRY_PAUSE;
        let mut attempt = 1;
        loop {
            let opened = match self.guarded(guard, sink, resolved.model.stream(request.clone())).await? {
                Ok(mut stream) => match self.guarded(guard, sink, stream.next()).await? {
                    Some(Err(error)) => Err(error),
                    first => Ok(futures::stream::iter(first).chain(stream).boxed()),
                },
                Err(error) => Err(error),
            };
            match opened {
                Err(error) if attempt < MODEL_ATTEMPTS && error.is_transient() => {
                    let wait = error.retry_after().unwrap_or(pause).min(MAX_MODEL_RETRY_WAIT);
                    tracing::warn!(%error, attempt, wait_ms = wait.as_millis() as u64, "the model failed before answering; asking again");
                    self.guarded(guard, sink, tokio::time::sleep(wait)).await?;
                    pause *= 2;
                    attempt += 1;
                }
                other => return other.map_err(Failure::Model),
            }
        }
    }

    /// Stores a step's messages, on condition that no other run has written to the thread.
    async fn keep(&self, run: &Run, progress: &mut Progress, messages: &[Message]) -> Result<(), Failure> {
        let store = &self.inner.store;
        let revision = store.keep_run_step(run, messages, progress.revision).await;
        progress.revision = Some(revision.map_err(Failure::Store)?);
        Ok(())
    }
}

fn add_usage(usage: &mut (u64, u64), answer: &Message) {
    if let Some(tokens) = &answer.usage_metadata {
        usage.0 += tokens["input_tokens"].as_u64().unwrap_or(0);
        usage.1 += tokens["output_tokens"].as_u64().unwrap_or(0);
    }
}

/// Asks the model for a search query that serves the conversation's last message.
fn search_query_request(resolved: &ResolvedModel, conversation: &[Message], max_output_tokens: u32) -> ChatRequest {
    let lines: Vec<String> = conversation
        .iter()
        .map(|m| format!("{}: {}", if m.kind == MessageType::Ai { "Assistant" } else { "User" }, m.content.text()))
        .collect();
    let prompt = format!(
        "Here is a conversation:\n\n{}\n\nWrite the search query that would find what is needed to answer its \
         last message: a few words or a question. Reply with the query alone.",
        lines.join("\n")
    );
    ChatRequest {
        model: resolved.model_id.clone(),
        system: None,
        messages: vec![Message::new(MessageType::Human, prompt)],
        max_output_tokens,
        tools: Vec::new(),
    }
}

/// A model's whole text answer, not streamed to anyone.
async fn collect_text(resolved: &ResolvedModel, request: ChatRequest) -> Result<String, LlmError> {
    let mut stream = resolved.model.stream(request).await?;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        if let crate::llm::Chunk::Text(delta) = chunk? {
            text.push_str(&delta);
        }
    }
    Ok(text.trim().to_string())
}
