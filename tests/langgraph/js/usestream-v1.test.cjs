// useStream from @langchain/react (the event protocol) in headless Chromium against the local
// server, with nothing but its URL: the page is served from another origin (a port of this
// machine the server knows nothing of) and sends no cookie. An answer streams in, an agent's tool
// call shows, its confirmation is approved, and after a reload the thread is back.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const { pageHtml, launch } = require("./chromium.cjs");

const BASE = process.env.BASE_URL;

/// Serves the page on a port of its own, as a UI's dev server would.
async function servePage(html) {
  const server = http.createServer((request, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end(html);
  });
  await new Promise((listening) => server.listen(0, "127.0.0.1", listening));
  return server;
}

test("useStream v1 streams an answer, shows a tool call, gets it approved, and finds its thread again", async () => {
  // The agent, made as any caller without an identity: the local user.
  const made = await fetch(`${BASE}/langgraph/assistants`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      graph_id: "agent",
      config: { configurable: { tools: [{ id: "wikipedia", type: "wikipedia", name: "Wikipedia", config: {} }], interrupt_before_action: true } },
    }),
  });
  assert.equal(made.status, 200);
  const agent = await made.json();
  const html = pageHtml(process.env.USESTREAM_V1_BUNDLE);
  const browser = await launch();
  const pageServer = await servePage(html);
  const pageOrigin = `http://localhost:${pageServer.address().port}`;
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const failures = [];
    page.on("pageerror", (error) => failures.push(error.message));
    page.on("response", (response) => { if (response.status() >= 400) failures.push(`${response.url()} ${response.status()}`); });
    const shown = () => page.$$eval("#messages li", (items) =>
      items.map((item) => [item.dataset.type, item.querySelector(".text").textContent]));
    const until = (condition, arg) => page.waitForFunction(condition, arg, { timeout: 20_000 });
    const idleWith = (count) => until(
      (count) => document.querySelectorAll("#messages li").length === count
        && document.querySelector("#status").textContent === "idle",
      count,
    );
    const send = async (message) => {
      await page.fill("#draft", message);
      await page.click("#send");
    };

    const api = encodeURIComponent(`${BASE}/langgraph`);
    await page.goto(`${pageOrigin}/chat?api=${api}&assistant=${agent.assistant_id}`);
    await send("Hello, my name is Bob");
    await idleWith(2);
    assert.deepEqual(await shown(), [["human", "Hello, my name is Bob"], ["ai", "Hello, Bob! How can I assist you today?"]]);
    const seen = await page.evaluate(() => window.aiTexts);
    assert.ok(seen.length >= 3, `the answer streamed in, token by token: ${JSON.stringify(seen)}`);
    assert.match(page.url(), /thread=[0-9a-f-]{36}/);

    await send("Look up the moon in wikipedia");
    await until(() => document.querySelector("#approve") !== null);
    // The call the agent waits to make shows in its message, and is what the user is asked about.
    const call = await page.textContent('#messages li:last-child .call[data-name="wikipedia"]');
    assert.deepEqual(JSON.parse(call), { query: "Look up the moon in wikipedia" });
    assert.match(await page.textContent("#confirm"), /wikipedia/);
    await page.click("#approve");
    await until(() => document.querySelector("#confirm") === null && document.querySelector("#status").textContent === "idle"
      && document.querySelectorAll('#messages li[data-type="ai"]').length === 3);
    await until(() => document.querySelector('#tool-calls li[data-name="wikipedia"]') !== null);
    const after = await shown();
    assert.deepEqual(after.map(([type]) => type), ["human", "ai", "human", "ai", "tool", "ai"]);

    await page.reload();
    await until((count) => document.querySelectorAll("#messages li").length === count, after.length);
    assert.deepEqual(await shown(), after, "the thread, read back after a reload");
    assert.deepEqual(failures, []);
  } finally {
    await browser.close();
    pageServer.close();
  }
});
