//! The agent: its model answers or calls tools, which `action` runs, until it answers in words;
//! with tool confirmation (or a review) it waits before `action` for the user's go-ahead.

use super::Declaration;

/// The node that runs the tools the agent's model called.
pub(in crate::runs) const ACTION: &str = "action";

pub(in crate::runs) const DECLARATION: Declaration = Declaration {
    id: "agent",
    nodes: &["agent", ACTION],
    edges: &[("__start__", "agent"), ("agent", ACTION), (ACTION, "agent"), ("agent", "__end__")],
    model_node: "agent",
    tools_node: ACTION,
};

#[cfg(feature = "runs")]
mod flow {
    use uuid::Uuid;

    use super::Declaration;
    use crate::llm::{answered_conversation, ChatRequest, ResolvedModel};
    use crate::model::{Message, MessageType};
    use crate::runs::engine::RunEngine;
    use crate::runs::execution::{EventSink, Guard, Progress};
    use crate::runs::failure::Failure;
    use crate::runs::flows::add_usage;
    use crate::runs::job::RunJob;
    use crate::tools::AgentConfig;

    impl RunEngine {
        /// A chatbot answers once; an agent calls tools until it answers in words. Returns the
        /// tokens used (input, output).
        #[allow(clippy::too_many_arguments)]
        pub(in crate::runs) async fn agent_loop(
            &self,
            bot: &Declaration,
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
            let model_node = bot.model_node;
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
                    sink.enter(bot.tools_node, history).await;
                    let results = self.guarded(guard, sink, tools.run(pending)).await?;
                    self.keep(run, progress, &results).await?;
                    sink.results(history, &results).await;
                    sink.node_done(history, &results).await;
                    history.extend(results);
                    continue;
                }
                // The run's first answer is named after it, as OpenGPTs does; later ones get their own.
                let id =
                    if model_calls == 0 { format!("run-{}", run.run_id) } else { format!("run-{}", Uuid::new_v4()) };
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
    }
}
