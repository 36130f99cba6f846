// What the useStream pages' tests share: the page around a bundle, and headless Chromium.
const fs = require("node:fs");
const { chromium } = require("playwright-core");

/// The HTML page that runs the bundle at `path`.
function pageHtml(path) {
  const bundle = fs.readFileSync(path, "utf8");
  return `<!doctype html><html><head><meta charset="utf-8"></head><body><div id="root"></div><script>${bundle}</script></body></html>`;
}

function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

module.exports = { pageHtml, launch };
