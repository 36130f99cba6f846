// The LangGraph API through the JS client (@langchain/langgraph-sdk), as React's useStream drives
// it: a thread, a stream in values and messages-tuple modes, a join from an event id, the history.
// Run by check.sh with BASE_URL set to a running server.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { Client } = require("@langchain/langgraph-sdk");

const client = new Client({
  apiUrl: `${process.env.BASE_URL}/langgraph`,
  defaultHeaders: { Cookie: `opengpts_user_id=js-${Date.now()}` },
});

async function collect(stream) {
  const parts = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

test("a thread streamed, joined from an event id and read back as useStream does", async () => {
  const thread = await client.threads.create({ metadata: { via: "js" } });
  const parts = await collect(
    client.runs.stream(thread.thread_id, "chatbot", {
      input: { messages: [{ type: "human", content: "Hello from JavaScript" }] },
      streamMode: ["values", "messages-tuple"],
      streamResumable: true,
    }),
  );
  assert.equal(parts[0].event, "metadata");
  const events = new Set(parts.map((part) => part.event));
  assert.deepEqual([...events].sort(), ["messages", "metadata", "values"]);
  assert.ok(parts.every((part) => part.id), "a resumable stream's events have ids");
  const last = parts[parts.length - 1];
  assert.equal(last.event, "values");
  assert.deepEqual(
    last.data.messages.map((message) => message.type),
    ["human", "ai"],
  );
  const said = parts
    .filter((part) => part.event === "messages")
    .map((part) => part.data[0].content)
    .join("");
  assert.equal(said, last.data.messages[1].content);

  const runId = parts[0].data.run_id;
  const joined = await collect(client.runs.joinStream(thread.thread_id, runId, { lastEventId: parts[2].id }));
  assert.deepEqual(joined, parts.slice(3));

  const run = await client.runs.get(thread.thread_id, runId);
  assert.equal(run.status, "success");
  const history = await client.threads.getHistory(thread.thread_id, { limit: 10 });
  assert.equal(history.length, 2);
  assert.deepEqual(history[0].values, last.data);
  assert.equal(history[0].parent_checkpoint.checkpoint_id, history[1].checkpoint.checkpoint_id);
  const found = await client.threads.search({ metadata: { graph_id: "chatbot", via: "js" } });
  assert.deepEqual(
    found.map((t) => t.thread_id),
    [thread.thread_id],
  );
});
