// The playground page (`GET /`) in headless Chromium, as a newcomer uses it: create an assistant
// from the form the config schema draws, send a message, watch the answer stream in, reload,
// and find the chat again. Run by scripts/test.sh with BASE_URL set to a running server.
// CommonJS, so that NODE_PATH finds playwright-core where scripts/test.sh installs it.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { chromium } = require("playwright-core");

const BASE = process.env.BASE_URL;
const SCREENSHOT = process.env.SCREENSHOT;

test("create an assistant, chat with streaming, reload and see the history", async () => {
  assert.ok(BASE, "BASE_URL names the server under test");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // Without the networking flags Chromium reaches for the network, which is closed here.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage();
    const failures = [];
    page.on("pageerror", (error) => failures.push(error.message));
    page.on("requestfailed", (request) => failures.push(`${request.url()} ${request.failure()?.errorText}`));
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
