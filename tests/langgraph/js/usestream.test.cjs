// React's useStream (@langchain/langgraph-sdk/react) against the server in headless Chromium, as
// agent-chat-ui uses it: a message sent, the answer streaming in, the thread found again after a
// reload (from its history), and a second turn on it. The page (usestream-app.jsx, bundled by
// check.sh into USESTREAM_BUNDLE) is served on the server's own origin, as a user's app in front
// of the same host would be, so the opengpts_user_id cookie goes with its requests.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const { chromium } = require("playwright-core");

const BASE = process.env.BASE_URL;

test("useStream streams an answer, finds its thread again after a reload and goes on", async () => {
  const bundle = fs.readFileSync(process.env.USESTREAM_BUNDLE, "utf8");
  const html = `<!doctype html><html><head><meta charset="utf-8"></head><body><div id="root"></div><script>${bundle}</script></body></html>`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const context = await browser.newContext();
    await context.addCookies([{ name: "opengpts_user_id", value: `usestream-${Date.now()}`, url: BASE }]);
    // The page, with or without its ?thread= query.
    await context.route((url) => url.pathname === "/usestream", (route) => route.fulfill({ contentType: "text/html", body: html }));
    const page = await context.newPage();
    const failures = [];
    page.on("pageerror", (error) => failures.push(error.message));
    page.on("response", (response) => { if (response.status() >= 400) failures.push(`${response.url()} ${response.status()}`); });
    const turn = async (message, count) => {
      await page.fill("#draft", message);
      await page.click("#send");
      await page.waitForFunction(
        (count) => document.querySelectorAll("#messages li").length === count
          && document.querySelector("#status").textContent === "idle",
        count,
      );
      return page.$$eval("#messages li", (items) => items.map((item) => [item.dataset.type, item.textContent]));
    };

    await page.goto(`${BASE}/usestream`);
    const first = await turn("hi! my name is bob", 2);
    assert.deepEqual(first, [["human", "hi! my name is bob"], ["ai", "Hello, Bob! How can I assist you today?"]]);
    const seen = await page.evaluate(() => window.aiTexts);
    assert.ok(seen.length >= 3, `the answer streamed in, token by token: ${JSON.stringify(seen)}`);
    assert.match(page.url(), /\?thread=[0-9a-f-]{36}$/);

    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll("#messages li").length === 2);
    const again = await page.$$eval("#messages li", (items) => items.map((item) => item.textContent));
    assert.deepEqual(again, first.map(([, content]) => content), "the thread, read back after a reload");

    const second = await turn("what is my name?", 4);
    assert.equal(second[3][0], "ai");
    assert.match(second[3][1], /Bob/);
    assert.deepEqual(failures, []);
  } finally {
    await browser.close();
  }
});
