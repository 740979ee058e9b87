// Where ours' time goes in the tab: one first run of the CPU backend (one thread, the
// package's local runtime on the page's own thread so that the page's profiler sees it),
// sampled by Chromium's CPU profiler, printed as the functions with the most self time.
// Not a test and not in CI. From the repository root, after `cargo xtask build`:
//   FLORENCE2_PKG=pkg FLORENCE2_BENCH_MODEL=DIR [FLORENCE2_MAX_NEW_TOKENS=20] [FLORENCE2_TOP=30] \
//   node tests/bench/profile.mjs
// DIR: a model folder with test_image.png (model/tools/make_base_model.py's OUT/native).
import { readFile, stat } from "node:fs/promises";
import { createReadStream } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const env = (name, fallback) => process.env[name] ?? fallback;
const PKG = env("FLORENCE2_PKG");
const MODEL = env("FLORENCE2_BENCH_MODEL");
if (!PKG || !MODEL) {
  console.error("set FLORENCE2_PKG and FLORENCE2_BENCH_MODEL");
  process.exit(2);
}
const MAX_NEW = Number(env("FLORENCE2_MAX_NEW_TOKENS", "20"));
const TOP = Number(env("FLORENCE2_TOP", "30"));

const PAGE = `<!doctype html><meta charset="utf-8"><title>profile</title>
<script type="module">
  import init, { LocalModel } from "/pkg/local/florence2_local.js";
  await init();
  const get = async (name) => {
    const r = await fetch("/model/" + name);
    return r.ok ? new Uint8Array(await r.arrayBuffer()) : undefined;
  };
  const files = { config: await get("config.json"), model: await get("model.safetensors"), tokenizer: await get("tokenizer.json") };
  for (const [key, name] of [["generationConfig", "generation_config.json"], ["processorConfig", "preprocessor_config.json"], ["processorConfig", "processor_config.json"]]) {
    const bytes = await get(name);
    if (bytes && !files[key]) files[key] = bytes;
  }
  window.model = await LocalModel.load(files, "cpu", 0);
  window.go = async (options) => {
    const image = await get("test_image.png");
    const between = () => Promise.resolve(false);
    return JSON.parse(await window.model.run(image, JSON.stringify(options), between, undefined));
  };
  window.ready = true;
</script>`;

const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
  if (path === "/") return res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
  const [prefix, dir] = path.startsWith("/pkg/") ? ["/pkg/", PKG] : path.startsWith("/model/") ? ["/model/", MODEL] : [null, null];
  try {
    if (!prefix || path.includes("..")) throw new Error();
    const file = join(dir, path.slice(prefix.length));
    const s = await stat(file);
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", "content-length": s.size });
    createReadStream(file).pipe(res);
  } catch {
    res.writeHead(404).end();
  }
}).listen(0, "127.0.0.1");
await new Promise((r) => server.once("listening", r));

const browser = await chromium.launch({ executablePath: env("CHROMIUM", "/usr/bin/chromium"), args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  page.on("console", (m) => m.type() === "error" && console.error(`  [page] ${m.text()}`));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 300_000 });
  const options = { task: "<CAPTION>", maxNewTokens: MAX_NEW, minNewTokens: MAX_NEW, beams: 1, noRepeatNgramSize: 3 };
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 500 });
  await cdp.send("Profiler.start");
  const started = Date.now();
  const answer = await page.evaluate((o) => window.go(o), options);
  const ms = Date.now() - started;
  const { profile } = await cdp.send("Profiler.stop");
  const dt = (profile.endTime - profile.startTime) / 1000 / Math.max(1, profile.samples.length);
  const self = new Map();
  for (const node of profile.nodes) {
    const name = readable(node.callFrame.functionName || `(${node.callFrame.url || "anonymous"})`);
    self.set(name, (self.get(name) ?? 0) + node.hitCount * dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`first run ${(ms / 1000).toFixed(1)} s on one thread (timings ${JSON.stringify(answer.timings)}); ${profile.samples.length} samples`);
  console.log("| self ms | % | function |\n|---:|---:|---|");
  for (const [name, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    console.log(`| ${t.toFixed(0)} | ${((100 * t) / total).toFixed(1)} | ${name} |`);
  }
} finally {
  await browser.close();
  server.close();
}

/** A Rust symbol as a path without its hash (`_ZN4gemm4gemm17h…E` or `gemm::gemm::h…` →
 * `gemm::gemm`). */
function readable(name) {
  const m = /^_ZN(.*)E$/.exec(name);
  if (!m) return name.replace(/::h[0-9a-f]{16}$/, "");
  const parts = [];
  for (let rest = m[1]; rest.length;) {
    const len = /^(\d+)/.exec(rest);
    if (!len) break;
    const n = Number(len[1]);
    parts.push(rest.slice(len[1].length, len[1].length + n));
    rest = rest.slice(len[1].length + n);
  }
  return parts.filter((p) => !/^h[0-9a-f]{16}$/.test(p)).join("::").replace(/\$LT\$/g, "<").replace(/\$GT\$/g, ">").replace(/\$u20\$/g, " ").replace(/\$C\$/g, ",").replace(/\.\./g, "::");
}
