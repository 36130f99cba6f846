// A page that talks to the server as agent-chat-ui does: React's useStream hook from
// @langchain/langgraph-sdk, on /langgraph of the page's own origin. check.sh bundles it with
// esbuild; usestream.test.cjs serves it and drives it in headless Chromium.
import { useState } from "react";
import { createRoot } from "react-dom/client";
import { useStream } from "@langchain/langgraph-sdk/react";

// Every text the last AI message had, render by render: the test reads how it streamed in.
window.aiTexts = [];

function text(content) {
  return typeof content === "string" ? content : JSON.stringify(content);
}

function App() {
  const [threadId, setThreadId] = useState(new URLSearchParams(location.search).get("thread"));
  const [draft, setDraft] = useState("");
  const stream = useStream({
    apiUrl: `${location.origin}/langgraph`,
    assistantId: "chatbot",
    messagesKey: "messages",
    // As agent-chat-ui: the history gives each message its checkpoints and branches.
    fetchStateHistory: true,
    threadId,
    onThreadId: (id) => {
      setThreadId(id);
      history.replaceState(null, "", `?thread=${id}`);
    },
  });
  const answer = stream.messages.filter((message) => message.type === "ai").at(-1);
  if (answer && window.aiTexts.at(-1) !== text(answer.content)) window.aiTexts.push(text(answer.content));
  const send = (event) => {
    event.preventDefault();
    stream.submit({ messages: [{ type: "human", content: draft }] });
    setDraft("");
  };
  // As agent-chat-ui: an answer is regenerated from the state before it first appeared.
  const regenerate = (message) => {
    const parent = stream.getMessagesMetadata(message)?.firstSeenState?.parent_checkpoint;
    stream.submit(undefined, { checkpoint: parent, streamMode: ["values"], streamResumable: true });
  };
  return (
    <main>
      <ol id="messages">
        {stream.messages.map((message) => (
          <li key={message.id} data-type={message.type} data-id={message.id}>
            <span className="text">{text(message.content)}</span>
            <Branches stream={stream} message={message} />
            {message.type === "ai" ? <button className="regenerate" onClick={() => regenerate(message)}>Regenerate</button> : null}
          </li>
        ))}
      </ol>
      <p id="status">{stream.isLoading ? "loading" : "idle"}</p>
      {stream.error ? <p id="error">{String(stream.error)}</p> : null}
      <form onSubmit={send}>
        <input id="draft" value={draft} onChange={(event) => setDraft(event.target.value)} />
        <button id="send" type="submit">Send</button>
      </form>
    </main>
  );
}

// agent-chat-ui's branch switcher: "1 / 2" with the branches the history shows beside a message.
function Branches({ stream, message }) {
  const { branch, branchOptions } = stream.getMessagesMetadata(message) ?? {};
  if (!branchOptions || branchOptions.length < 2) return null;
  const at = branchOptions.indexOf(branch);
  return (
    <span className="branches">
      <button className="previous" disabled={at <= 0} onClick={() => stream.setBranch(branchOptions[at - 1])}>Previous</button>
      <span className="position">{`${at + 1} / ${branchOptions.length}`}</span>
      <button className="next" disabled={at >= branchOptions.length - 1} onClick={() => stream.setBranch(branchOptions[at + 1])}>Next</button>
    </span>
  );
}

createRoot(document.getElementById("root")).render(<App />);
