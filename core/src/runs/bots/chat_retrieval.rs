//! The RAG bot, as OpenGPTs' `chat_retrieval`: it writes a search query, retrieves its files'
//! best chunks, and answers from them alone.

use super::Declaration;

pub(in crate::runs) const DECLARATION: Declaration = Declaration {
    id: "chat_retrieval",
    nodes: &["invoke_retrieval", "retrieve", "response"],
    edges: &[
        ("__start__", "invoke_retrieval"),
        ("invoke_retrieval", "retrieve"),
        ("retrieve", "response"),
        ("response", "__end__"),
    ],
    model_node: "response",
    tools_node: "response",
};

#[cfg(feature = "runs")]
mod flow {
    use futures::StreamExt;
    use serde_json::json;
    use uuid::Uuid;

    use crate::documents::TOP_K;
    use crate::llm::{ChatRequest, LlmError, ResolvedModel, RETRIEVAL_PROMPT};
    use crate::model::{Content, Message, MessageType, ToolStatus};
    use crate::runs::engine::RunEngine;
    use crate::runs::execution::{EventSink, Guard, Progress};
    use crate::runs::failure::Failure;
    use crate::runs::flows::add_usage;
    use crate::runs::job::RunJob;

    impl RunEngine {
        /// A RAG bot's turn, as OpenGPTs' `chat_retrieval` takes it: a search query (the question,
        /// or with a conversation behind it one the model writes), the files' best chunks shown as
        /// a retrieval call and its documents, then an answer from those chunks alone.
        pub(in crate::runs) async fn answer_from_files(
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
                let mut documents_message =
                    Message::tool_result("retrieval", &call_id, String::new(), ToolStatus::Success);
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
                let answer = self
                    .model_step(job, resolved, request, history, format!("run-{}", run.run_id), guard, sink)
                    .await?;
                add_usage(&mut usage, &answer);
                sink.node_done(history, std::slice::from_ref(&answer)).await;
                progress.answer.push(answer);
            }
            sink.closing(history, &progress.answer).await;
            Ok(usage)
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
}
