// The npm package in real Chromium, used exactly as DESIGN.md writes it (import map to pkg/).
// Needs FLORENCE2_TEST_SERVER (the proxy double, which also serves the fixtures).
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "../../tools/node/node_modules/playwright-core/index.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const upstream = process.env.FLORENCE2_TEST_SERVER;
if (!upstream) { console.error("FLORENCE2_TEST_SERVER is not set (run `cargo xtask test`)"); process.exit(2); }

const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
  const file = path === "/" ? "tests/e2e/package.html" : path.startsWith("/pkg/") ? path.slice(1) : null;
  try {
    if (!file || file.includes("..")) throw new Error("not found");
    const body = await readFile(join(root, file));
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(body);
  } catch { res.writeHead(404).end("not found"); }
}).listen(0, "127.0.0.1");
await new Promise((r) => server.once("listening", r));
const page_url = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(page_url);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 30000 });
  const out = await page.evaluate(([base, image]) => window.designSnippet(base, image), [upstream, `${upstream}/fixtures/photo-640.jpg`]);
  assert.deepEqual(problems, []);
  assert.equal(out.tasks, 14);
  assert.deepEqual(Object.keys(out.firstTask).sort(), ["description", "group", "label", "text", "token"]);
  assert.equal(out.firstTask.token, "<CAPTION>");
  assert.ok(out.sent[2] <= 180000 + "data:image/jpeg;base64,".length);
  assert.equal(out.content, "<OD><img src=\"data:image/jpeg;");
  assert.equal(out.loc, "<loc_15><loc_41><loc_156><loc_416>");
  for (const r of [out.run, out.parsed]) {
    assert.equal(r.task, "<OD>");
    assert.equal(r.source, "endpoint");
    assert.deepEqual(r.image, { width: 640, height: 480 });
    assert.deepEqual(Object.keys(r.entities), ["bboxes", "labels", "quad_boxes", "polygons", "bboxes_labels", "polygons_labels"]);
    assert.deepEqual(r.entities.bboxes, [[64, 96, 320, 288]]);
  }
  assert.deepEqual(out.overlay, ["image/png", out.overlay[1]]);
  assert.deepEqual(out.errors, { textNotAllowed: [true, "TEXT_NOT_ALLOWED"], zip: [true, "ZIP_INVALID"] });
  console.log("package API in Chromium: the DESIGN.md snippet works as written");
} finally {
  await browser.close();
  server.close();
}
