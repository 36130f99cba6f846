// React's useStream (@langchain/langgraph-sdk/react) against the server in headless Chromium, as
// agent-chat-ui uses it: a message sent, the answer streaming in, the thread found again after a
// reload (from its history), a second turn on it, and an answer regenerated with the branch
// switcher going between the two answers. The page (usestream-app.jsx, bundled by
// check.sh into USESTREAM_BUNDLE) is served on the server's own origin, as a user's app in front
// of the same host would be, so the opengpts_user_id cookie goes with its requests.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { pageHtml, launch } = require("./chromium.cjs");

const BASE = process.env.BASE_URL;

test("useStream streams an answer, finds its thread again after a reload, goes on, regenerates and switches branches", async () => {
  const html = pageHtml(process.env.USESTREAM_BUNDLE);
  const browser = await launch();
  try {
    const context = await browser.newContext();
    await context.addCookies([{ name: "opengpts_user_id", value: `usestream-${Date.now()}`, url: BASE }]);
    // The page, with or without its ?thread= query.
    await context.route((url) => url.pathname === "/usestream", (route) => route.fulfill({ contentType: "text/html", body: html }));
    const page = await context.newPage();
    const failures = [];
    page.on("pageerror", (error) => failures.push(error.message));
    page.on("response", (response) => { if (response.status() >= 400) failures.push(`${response.url()} ${response.status()}`); });
    const shown = () => page.$$eval("#messages li", (items) =>
      items.map((item) => [item.dataset.type, item.querySelector(".text").textContent]));
    const idle = (count) => page.waitForFunction(
      (count) => document.querySelectorAll("#messages li").length === count
        && document.querySelector("#status").textContent === "idle",
      count,
    );
    const turn = async (message, count) => {
      await page.fill("#draft", message);
      await page.click("#send");
      await idle(count);
      return shown();
    };

    await page.goto(`${BASE}/usestream`);
    const first = await turn("hi! my name is bob", 2);
    assert.deepEqual(first, [["human", "hi! my name is bob"], ["ai", "Hello, Bob! How can I assist you today?"]]);
    const seen = await page.evaluate(() => window.aiTexts);
    assert.ok(seen.length >= 3, `the answer streamed in, token by token: ${JSON.stringify(seen)}`);
    assert.match(page.url(), /\?thread=[0-9a-f-]{36}$/);

    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll("#messages li").length === 2);
    assert.deepEqual(await shown(), first, "the thread, read back after a reload");

    const second = await turn("what is my name?", 4);
    assert.equal(second[3][0], "ai");
    assert.match(second[3][1], /Bob/);

    // Regenerate, as agent-chat-ui does it: the new answer shows, with "2 / 2" beside it, and the
    // switcher goes back to the first answer, kept in the thread's history.
    const answerId = () => page.$eval("#messages li:last-child", (item) => item.dataset.id);
    const oldAnswer = await answerId();
    await page.click("#messages li:last-child .regenerate");
    await page.waitForFunction(
      (old) => document.querySelector("#messages li:last-child")?.dataset.id !== old
        && document.querySelector("#messages li:last-child .position")?.textContent === "2 / 2"
        && document.querySelector("#status").textContent === "idle",
      oldAnswer,
    );
    await idle(4);
    const newAnswer = await answerId();
    assert.equal((await shown())[3][0], "ai");
    await page.click("#messages li:last-child .previous");
    await page.waitForFunction(
      (old) => document.querySelector("#messages li:last-child")?.dataset.id === old
        && document.querySelector("#messages li:last-child .position")?.textContent === "1 / 2",
      oldAnswer,
    );
    await page.click("#messages li:last-child .next");
    await page.waitForFunction((id) => document.querySelector("#messages li:last-child")?.dataset.id === id, newAnswer);
    // After a reload the history still holds both.
    await page.reload();
    await page.waitForFunction(
      (id) => document.querySelector("#messages li:last-child")?.dataset.id === id
        && document.querySelector("#messages li:last-child .position")?.textContent === "2 / 2",
      newAnswer,
    );
    assert.deepEqual(failures, []);
  } finally {
    await browser.close();
  }
});
