// A page on useStream from @langchain/react, React's newer hook, which speaks LangGraph's event
// protocol (threads.stream()). It is served from another origin than the API, like agent-chat-ui
// on its own port, and knows nothing but the API's URL (`?api=`): no cookie, key or setting.
// check.sh bundles it with esbuild; usestream-v1.test.cjs drives it in headless Chromium.
import { useState } from "react";
import { createRoot } from "react-dom/client";
import { useStream } from "@langchain/react";

const query = new URLSearchParams(location.search);
// Every text the last AI message had, render by render: the test reads how it streamed in.
window.aiTexts = [];

// A message's text: a string, or (as the hook assembles a streamed message) content blocks.
function text(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.filter((block) => block.type === "text").map((block) => block.text).join("");
  return JSON.stringify(content);
}

function App() {
  const [threadId, setThreadId] = useState(query.get("thread"));
  const [draft, setDraft] = useState("");
  const stream = useStream({
    apiUrl: query.get("api"),
    assistantId: query.get("assistant"),
    threadId,
    onThreadId: (id) => {
      setThreadId(id);
      const next = new URLSearchParams(location.search);
      next.set("thread", id);
      history.replaceState(null, "", `?${next}`);
    },
  });
  const answer = stream.messages.filter((message) => message.type === "ai").at(-1);
  if (answer && window.aiTexts.at(-1) !== text(answer.content)) window.aiTexts.push(text(answer.content));
  const send = (event) => {
    event.preventDefault();
    stream.submit({ messages: [{ type: "human", content: draft }] });
    setDraft("");
  };
  return (
    <main>
      <ol id="messages">
        {stream.messages.map((message, index) => (
          <li key={message.id ?? index} data-type={message.type}>
            <span className="text">{text(message.content)}</span>
            {(message.tool_calls ?? []).map((call) => (
              <span key={call.id} className="call" data-name={call.name}>{JSON.stringify(call.args)}</span>
            ))}
          </li>
        ))}
      </ol>
      {/* The tools' runs, as the tools channel tells them. */}
      <ul id="tool-calls">
        {stream.toolCalls.map((call, index) => (
          <li key={call.id ?? index} data-name={call.name}>{JSON.stringify(call.args ?? call.input)}</li>
        ))}
      </ul>
      {stream.interrupt ? (
        <section id="confirm">
          <p>{text(stream.interrupt.value ?? stream.interrupt.payload)}</p>
          <button id="approve" onClick={() => stream.respond(true)}>Approve</button>
        </section>
      ) : null}
      <p id="status">{stream.isLoading ? "loading" : "idle"}</p>
      {stream.error ? <p id="error">{String(stream.error)}</p> : null}
      <form onSubmit={send}>
        <input id="draft" value={draft} onChange={(event) => setDraft(event.target.value)} />
        <button id="send" type="submit">Send</button>
      </form>
    </main>
  );
}

createRoot(document.getElementById("root")).render(<App />);
