// Benchmark of Florence2Local in headless Chromium (not a test: it prints figures).
//   FLORENCE2_PKG=pkg FLORENCE2_PROXY_BIN=… FLORENCE2_MODELS=DIR FLORENCE2_BENCH_MODEL=name \
//   [FLORENCE2_BACKENDS=cpu,webgpu] [FLORENCE2_TASK="<OD>"] [FLORENCE2_RUNS=3] \
//   [FLORENCE2_MAX_NEW_TOKENS=20] [FLORENCE2_BEAMS=1] node tests/e2e/local_bench.mjs
// DIR/name/ is a model folder with test_image.png; the proxy serves DIR with --models. Prints,
// per backend: load time (download from loopback included), the runs' times (median), and the
// runtime's wasm memory after the runs (its peak: wasm memory only grows).
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "../../tools/node/node_modules/playwright-core/index.mjs";

const env = (name, fallback) => process.env[name] ?? fallback;
const PKG = env("FLORENCE2_PKG");
const MODELS = env("FLORENCE2_MODELS");
const NAME = env("FLORENCE2_BENCH_MODEL");
const PROXY = env("FLORENCE2_PROXY_BIN");
if (!PKG || !MODELS || !NAME || !PROXY) {
  console.error("set FLORENCE2_PKG, FLORENCE2_PROXY_BIN, FLORENCE2_MODELS and FLORENCE2_BENCH_MODEL");
  process.exit(2);
}
const BACKENDS = env("FLORENCE2_BACKENDS", "cpu,webgpu").split(",");
const TASK = env("FLORENCE2_TASK", "<OD>");
const RUNS = Number(env("FLORENCE2_RUNS", "3"));
const MAX_NEW = Number(env("FLORENCE2_MAX_NEW_TOKENS", "20"));
const BEAMS = Number(env("FLORENCE2_BEAMS", "1"));
const PAGE = fileURLToPath(new URL("./local.html", import.meta.url));

// Read before anything is started: a folder without its picture fails here, leaving nothing
// running.
const image = [...(await readFile(join(MODELS, NAME, "test_image.png")))];
const proxy = spawn(PROXY, ["--listen", "127.0.0.1:0", "--models", MODELS], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } });
const proxyUrl = await new Promise((resolve) => proxy.stdout.on("data", (c) => {
  const m = /listening on (http:\/\/\S+)/.exec(String(c));
  if (m) resolve(m[1]);
}));
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
  const file = path === "/" ? PAGE : path.startsWith("/pkg/") && !path.includes("..") ? join(PKG, path.slice(5)) : null;
  try {
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
}).listen(0, "127.0.0.1");
await new Promise((r) => server.once("listening", r));

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--enable-unsafe-webgpu", "--js-flags=--max-old-space-size=8192"] });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  for (const backend of BACKENDS) {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => window.ready === true);
    const out = await page.evaluate(async ([url, backend, image, task, runs, maxNewTokens, beams]) => {
      try {
        await window.Florence2Local.clearCache();
        const local = await window.Florence2Local.load({ modelUrl: url, backend });
        const bytes = new Uint8Array(image);
        const times = [];
        let last;
        for (let i = 0; i < runs; i++) {
          const t = performance.now();
          last = await local.run({ image: bytes, task, maxNewTokens, beams });
          times.push(performance.now() - t);
        }
        local.dispose();
        return { info: local.info, times, tokens: last.generatedIds.length - 1, memory: last.wasmMemoryBytes };
      } catch (e) {
        return { error: `${e.code}: ${e.message}` };
      }
    }, [`${proxyUrl}/models/${NAME}/`, backend, image, TASK, RUNS, MAX_NEW, BEAMS]);
    await page.close();
    if (out.error) {
      console.log(`${backend}: ${out.error}`);
      continue;
    }
    const mb = (b) => (b / 1048576).toFixed(0);
    console.log(
      `${backend}${out.info.adapter ? ` (${out.info.adapter})` : ""}: ${NAME}, ${(out.info.parameters / 1e6).toFixed(1)} M parameters; ` +
        `load ${(out.info.loadMs / 1000).toFixed(2)} s; ${TASK} ${BEAMS} beam(s), ${out.tokens} tokens: median ${(median(out.times) / 1000).toFixed(3)} s ` +
        `of ${out.times.map((t) => (t / 1000).toFixed(3)).join(" / ")}; wasm memory after load ${mb(out.info.wasmMemoryBytes)} MB, after the runs ${mb(out.memory)} MB`,
    );
  }
} finally {
  await browser.close();
  server.close();
  proxy.kill();
}
