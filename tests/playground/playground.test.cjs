// The playground page (`GET /`) in headless Chromium, as a newcomer uses it: create an assistant
// from the form the config schema draws, send a message, watch the answer stream in, reload,
// and find the chat again. Run by scripts/test.sh with BASE_URL set to a running server.
// CommonJS, so that NODE_PATH finds playwright-core where scripts/test.sh installs it.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { chromium } = require("playwright-core");

const BASE = process.env.BASE_URL;
const SCREENSHOT = process.env.SCREENSHOT;

function launch() {
  assert.ok(BASE, "BASE_URL names the server under test");
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // Without the networking flags Chromium reaches for the network, which is closed here.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// What went wrong on the page: its errors, failed requests and error answers. A reload cancels
// what the page was still fetching (net::ERR_ABORTED): no failure of ours.
function watchFailures(page) {
  const failures = [];
  page.on("pageerror", (error) => failures.push(error.message));
  page.on("requestfailed", (request) => {
    if (request.failure()?.errorText !== "net::ERR_ABORTED") failures.push(`${request.url()} ${request.failure()?.errorText}`);
  });
  page.on("response", (response) => { if (response.status() >= 400) failures.push(`${response.url()} ${response.status()}`); });
  return failures;
}

// The page, watched for failures, with the form set to an agent on the offline model.
async function offlineAgentForm(browser) {
  const page = await browser.newPage();
  const failures = watchFailures(page);
  await page.goto(`${BASE}/`);
  await page.getByLabel("agent", { exact: true }).check();
  await page.getByLabel("Agent Type").selectOption("Offline");
  return { page, failures };
}

test("create an assistant, chat with streaming, reload and see the history", async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const failures = watchFailures(page);
    await page.goto(`${BASE}/`);

    // The form comes from /runs/config_schema: bot types, and the chosen type's model and instructions.
    await page.getByLabel("chatbot").check();
    await page.getByLabel("LLM Type").selectOption("Offline");
    await page.getByLabel("Instructions").fill("You are a patient assistant.");
    await page.locator("#assistant-name").fill("Browser Bot");
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByRole("button", { name: "Browser Bot" }).waitFor();

    // Send, and watch the answer grow in place before it is complete.
    await page.locator("#message").fill("hi! my name is bob");
    const seen = page.evaluate(() => new Promise((resolve) => {
      const texts = new Set();
      const observer = new MutationObserver(() => {
        const answer = document.querySelector(".message.ai .text");
        if (answer) texts.add(answer.textContent);
        if (answer && answer.textContent === "Hello, Bob! How can I assist you today?") {
          observer.disconnect();
          resolve([...texts]);
        }
      });
      observer.observe(document.getElementById("messages"), { childList: true, subtree: true, characterData: true });
    }));
    await page.getByRole("button", { name: "Send" }).click();
    const texts = await seen;
    assert.ok(texts.length >= 3, `the answer streamed in: ${JSON.stringify(texts)}`);
    assert.ok(texts.some((text) => text.length > 0 && text.length < 20), `partial answers were shown: ${JSON.stringify(texts)}`);

    // Reload: the chat is in the list and its messages come back from the thread's state.
    await page.reload();
    await page.locator(".message.ai .text", { hasText: "Hello, Bob!" }).waitFor();
    const shown = await page.locator(".message .text").allTextContents();
    assert.deepEqual(shown, ["hi! my name is bob", "Hello, Bob! How can I assist you today?"]);
    await page.getByRole("button", { name: "hi! my name is bob" }).waitFor();
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT });
    assert.deepEqual(failures, []);
  } finally {
    await browser.close();
  }
});

test("an agent with a tool and confirmation: upload, edit the call, continue, read the passage, feedback, edit", async () => {
  const browser = await launch();
  try {
    const { page, failures } = await offlineAgentForm(browser);

    // Every tool of the schema is offered; those whose key this server lacks say which variable.
    const tavily = page.getByLabel("Search (Tavily)", { exact: false }).first();
    assert.equal(await tavily.isDisabled(), true, "Tavily needs a key this server lacks");
    await page.locator(".tool-choice.unavailable", { hasText: "TAVILY_API_KEY" }).first().waitFor();
    await page.getByLabel("Retrieval", { exact: true }).check();
    await page.getByLabel("Tool Confirmation").check();
    await page.locator("#assistant-name").fill("Zorblax Bot");
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByRole("button", { name: "Zorblax Bot" }).waitFor();

    // A file for the assistant, through the picker.
    await page.locator("#assistant-files").setInputFiles({
      name: "zorblax.txt", mimeType: "text/plain",
      buffer: Buffer.from("A zorblax is a small purple creature that hums at dawn."),
    });
    await page.locator("#upload-status", { hasText: "zorblax.txt is ready to be searched" }).waitFor();

    // The agent stops before its tool: the call is shown, its arguments editable.
    await page.locator("#message").fill("Ask the retriever about something");
    await page.getByRole("button", { name: "Send" }).click();
    const args = page.getByLabel("Arguments of Retriever");
    await args.waitFor();
    assert.deepEqual(JSON.parse(await args.inputValue()), { query: "Ask the retriever about something" });
    await args.fill(JSON.stringify({ query: "zorblax" }));
    await page.getByRole("button", { name: "Continue" }).click();

    // The tool's result as a readable passage, and the answer built on it.
    const result = page.locator(".message.tool details.result", { hasText: "small purple creature" });
    await result.waitFor();
    await page.locator(".message.ai .text", { hasText: "Retriever returned: A zorblax" }).waitFor();
    await result.locator("summary").click();
    await result.locator(".whole").waitFor();
    assert.equal(await page.locator("#pending").isVisible(), false);

    // Feedback on the answer, kept by the server.
    const answer = page.locator(".message.ai", { hasText: "Retriever returned" });
    await answer.getByRole("button", { name: "Good answer" }).click();
    await answer.locator("button.chosen", { hasText: "Good" }).waitFor();

    // Reload: the call with its edited arguments, the passage, the answer and the feedback.
    await page.reload();
    await page.locator(".tool-call", { hasText: '"query":"zorblax"' }).waitFor();
    await page.locator(".message.tool details.result", { hasText: "small purple creature" }).waitFor();
    const reloaded = page.locator(".message.ai", { hasText: "Retriever returned" });
    await reloaded.locator("button.chosen", { hasText: "Good" }).waitFor();

    // Edit the answer; the thread keeps the edit.
    await reloaded.getByRole("button", { name: "Edit" }).click();
    await page.getByLabel("Edit message").fill("A zorblax hums at dawn.");
    await page.getByRole("button", { name: "Save" }).click();
    await page.reload();
    await page.locator(".message.ai .text", { hasText: "A zorblax hums at dawn." }).waitFor();
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, "-agent.png") });
    assert.deepEqual(failures, []);
  } finally {
    await browser.close();
  }
});

test("a file too large for a request, on a server without an upload bucket, is refused clearly", async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(`${BASE}/`);
    await page.getByLabel("chatbot").check();
    await page.locator("#assistant-name").fill("Big File Bot");
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByRole("button", { name: "Big File Bot" }).waitFor();
    // check.sh serves MAX_INGEST_BYTES=65536: the page then asks for a presigned upload.
    await page.locator("#assistant-files").setInputFiles({
      name: "big.txt", mimeType: "text/plain", buffer: Buffer.from("zorblax ".repeat(20000)),
    });
    await page.locator("#status", { hasText: "UPLOAD_BUCKET" }).waitFor();
    assert.equal(await page.locator("#upload-progress").isHidden(), true);
  } finally {
    await browser.close();
  }
});

test("an agent with an MCP server's tools: add the server by its URL, and its tool answers in the run", async () => {
  assert.ok(process.env.MCP_URL, "MCP_URL names the test's MCP server");
  const browser = await launch();
  try {
    const { page, failures } = await offlineAgentForm(browser);
    await page.getByLabel("MCP Server", { exact: true }).check();
    await page.getByLabel("MCP Server url").fill(process.env.MCP_URL);
    await page.getByLabel("MCP Server tools").fill("lookup");
    await page.locator("#assistant-name").fill("Dictionary Bot");
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByRole("button", { name: "Dictionary Bot" }).waitFor();

    await page.locator("#message").fill("please lookup serendipity");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator(".message.tool", { hasText: "found in the dictionary: please lookup serendipity" }).waitFor();
    await page.locator(".message.ai .text", { hasText: "lookup returned: found in the dictionary" }).waitFor();
    await page.locator(".tool-call", { hasText: "lookup" }).waitFor();
    assert.deepEqual(failures, []);
  } finally {
    await browser.close();
  }
});
