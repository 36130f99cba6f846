// LangGraph's event protocol through the JS client's threads.stream() (@langchain/langgraph-sdk),
// over SSE and over WebSocket, with nothing but the server's URL (a local server lets a caller
// without a cookie in): a chat, a confirmation answered with input.respond, a failed run.
// Run by check.sh with BASE_URL set to a running local server.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { Client } = require("@langchain/langgraph-sdk");

const client = new Client({ apiUrl: `${process.env.BASE_URL}/langgraph` });
const human = (content) => ({ messages: [{ role: "user", content }] });
const types = (messages) => messages.map((message) => message.type ?? message._getType?.());

async function waitFor(condition) {
  for (let tries = 0; tries < 300 && !condition(); tries++) await new Promise((done) => setTimeout(done, 50));
  assert.ok(condition(), "waited 15 s");
}

for (const transport of ["sse", "websocket"]) {
  test(`a chat streams its answer (${transport})`, async () => {
    const thread = client.threads.stream({ assistantId: "chatbot", transport });
    await thread.run.start({ input: human("Hello, my name is Jo") });
    const texts = [];
    for await (const message of thread.messages) texts.push(await message.text);
    assert.deepEqual(texts, ["Hello, Jo! How can I assist you today?"]);
    const state = await client.threads.getState(thread.threadId);
    assert.deepEqual(types(state.values.messages), ["human", "ai"]);
    await thread.close();
  });

  test(`a confirmation is asked and answered with input.respond (${transport})`, async () => {
    const agent = await client.assistants.create({
      graphId: "agent",
      config: {
        configurable: {
          tools: [{ id: "wikipedia", type: "wikipedia", name: "Wikipedia", config: {} }],
          interrupt_before_action: true,
        },
      },
    });
    const thread = client.threads.stream({ assistantId: agent.assistant_id, transport });
    await thread.run.start({ input: human("Look up the moon in wikipedia") });
    await waitFor(() => thread.interrupted);
    assert.equal(thread.interrupts.length, 1);
    const [pending] = thread.interrupts;
    assert.equal(pending.payload.action_requests[0].name, "wikipedia");
    await thread.input.respond({ interrupt_id: pending.interruptId, namespace: pending.namespace, response: true });
    const calls = [];
    for await (const call of thread.toolCalls) calls.push(call);
    assert.ok(calls.length > 0 && calls.every((call) => call.name === "wikipedia"), JSON.stringify(calls));
    await waitFor(() => !thread.interrupted);
    for (let tries = 0; tries < 300; tries++) {
      const state = await client.threads.getState(thread.threadId);
      if (state.values.messages.length === 4) break;
      await new Promise((done) => setTimeout(done, 50));
    }
    const state = await client.threads.getState(thread.threadId);
    assert.deepEqual(types(state.values.messages), ["human", "ai", "tool", "ai"]);
    await thread.close();
  });
}

test("a failed run ends its thread in error", async () => {
  const agent = await client.assistants.create({
    graphId: "agent",
    config: { configurable: { tools: [{ id: "wikipedia", type: "wikipedia", name: "Wikipedia", config: {} }] } },
  });
  const thread = client.threads.stream({ assistantId: agent.assistant_id });
  await thread.run.start({ input: human("Look up the moon in wikipedia"), config: { recursion_limit: 1 } });
  // The JS client settles its output at the run's end, failed or not.
  await thread.output.catch(() => undefined);
  const stored = await client.threads.get(thread.threadId);
  assert.equal(stored.status, "error");
  await thread.close();
});
