// Head-to-head in one headless Chromium: florence2-web's Florence2Local (CPU backend) and
// transformers.js (device "wasm") on the same weights, the same picture, the same task and
// the same number of greedy tokens. Run by `cargo xtask bench browser`; by hand:
//   FLORENCE2_PKG=pkg FLORENCE2_PROXY_BIN=… FLORENCE2_BENCH_MODEL=DIR FLORENCE2_BENCH_ONNX=ONNX_DIR \
//   [FLORENCE2_ROUNDS=2] [FLORENCE2_WARM_RUNS=2] [FLORENCE2_MAX_NEW_TOKENS=20] \
//   [FLORENCE2_ROWS=ours-f32,ours-f32-threads,ours-mixed,ours-mixed-threads,tjs-fp32,tjs-mix] \
//   node tests/bench/browser.mjs
// DIR: a Florence-2 folder (transformers layout, with test_image.png), served by our proxy, and
// DIR-mixed beside it (`florence2 quantize --scheme mixed` of it) for the ours-mixed row;
// ONNX_DIR: model/tools/export_onnx.py's export of it, served to transformers.js.
// Every (row, round) gets a fresh browser context (empty caches, its own renderer process);
// rounds alternate the rows' order. Per row: load, first run (vision included), warm runs
// (the same picture again, as different bytes, so that ours recomputes the vision tower as
// transformers.js does), decoder ms/token from when the page sees the tokens arrive, the
// renderer process's peak resident memory (VmHWM: the model, the runtime's heap, wasm memory
// and the page; ours runs in a Web Worker, which lives in the same process), and the bytes the
// page downloaded (code, wasm and weights).
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { readFile, readdir, stat } from "node:fs/promises";
import { basename, dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

const env = (name, fallback) => process.env[name] ?? fallback;
const PKG = env("FLORENCE2_PKG");
const PROXY = env("FLORENCE2_PROXY_BIN");
const MODEL = env("FLORENCE2_BENCH_MODEL");
const ONNX = env("FLORENCE2_BENCH_ONNX");
if (!PKG || !PROXY || !MODEL || !ONNX) {
  console.error("set FLORENCE2_PKG, FLORENCE2_PROXY_BIN, FLORENCE2_BENCH_MODEL and FLORENCE2_BENCH_ONNX");
  process.exit(2);
}
const ROUNDS = Number(env("FLORENCE2_ROUNDS", "2"));
const WARM = Number(env("FLORENCE2_WARM_RUNS", "2"));
const MAX_NEW = Number(env("FLORENCE2_MAX_NEW_TOKENS", "20"));
const TASK = "<CAPTION>";
const NO_REPEAT = 3; // the checkpoint's generation_config value, given to both sides explicitly
// transformers.js' Florence-2 demo: fp16 vision and embeddings, q4 encoder and decoder.
const MIX = { embed_tokens: "fp16", vision_encoder: "fp16", encoder_model: "q4", decoder_model_merged: "q4" };
// Ours on one thread (`threads: 1`) and on every core (the threaded runtime: the page is
// cross-origin isolated); transformers.js with its own default threading on the same page.
const CORES = (await import("node:os")).availableParallelism();
const ROWS = {
  "ours-f32": { side: "ours", folder: basename(MODEL), threads: 1, label: "florence2-web, CPU (wasm SIMD), f32, 1 thread" },
  "ours-f32-threads": { side: "ours", folder: basename(MODEL), threads: CORES, vs: "ours-f32", label: `florence2-web, CPU (wasm SIMD), f32, ${CORES} threads` },
  "ours-mixed": { side: "ours", folder: `${basename(MODEL)}-mixed`, threads: 1, vs: "ours-f32", label: "florence2-web, CPU (wasm SIMD), mixed 8/4-bit, 1 thread" },
  "ours-mixed-threads": { side: "ours", folder: `${basename(MODEL)}-mixed`, threads: CORES, vs: "ours-mixed", label: `florence2-web, CPU (wasm SIMD), mixed 8/4-bit, ${CORES} threads` },
  // WebGPU: whatever adapter Chromium finds (here SwiftShader, the CPU emulating a GPU, on
  // which base-shaped runs take hours: for machines with a GPU).
  "ours-f32-webgpu": { side: "ours", folder: basename(MODEL), backend: "webgpu", vs: "ours-f32", label: "florence2-web, WebGPU, f32" },
  "tjs-fp32-webgpu": { side: "tjs", dtype: "fp32", device: "webgpu", vs: "ours-f32-webgpu", label: "transformers.js, WebGPU, fp32" },
  "tjs-fp32": { side: "tjs", dtype: "fp32", vs: "ours-f32", label: "transformers.js, wasm, fp32" },
  "tjs-mix": { side: "tjs", dtype: MIX, vs: "ours-mixed", label: "transformers.js, wasm, fp16 vision+embed / q4 enc+dec" },
  "tjs-q4": { side: "tjs", dtype: "q4", vs: "ours-mixed", label: "transformers.js, wasm, q4" },
  "tjs-fp16": { side: "tjs", dtype: "fp16", vs: "ours-mixed", label: "transformers.js, wasm, fp16" },
};
const rowNames = env("FLORENCE2_ROWS", "ours-f32,ours-f32-threads,ours-mixed,ours-mixed-threads,tjs-fp32,tjs-mix").split(",");
for (const r of rowNames) if (!ROWS[r]) throw new Error(`unknown row ${r}: ${Object.keys(ROWS)}`);

const HERE = dirname(fileURLToPath(import.meta.url));
const png = await readFile(join(MODEL, "test_image.png"));
// The same picture as different bytes: a tEXt chunk before IEND (decoders skip it).
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (buf) => {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};
const variant = (i) => {
  const body = Buffer.concat([Buffer.from("tEXt"), Buffer.from(`Comment\0copy ${i}`)]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length - 4);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  const iend = png.length - 12;
  return [...Buffer.concat([png.subarray(0, iend), len, body, crc, png.subarray(iend)])];
};

const proxy = spawn(PROXY, ["--listen", "127.0.0.1:0", "--models", dirname(MODEL)], {
  // Without our FLORENCE2_* variables: the proxy reads some of its flags from the environment.
  stdio: ["ignore", "pipe", "inherit"],
  env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FLORENCE2_"))), RUST_LOG: "warn" },
});
const proxyUrl = await new Promise((resolve) => proxy.stdout.on("data", (c) => {
  const m = /listening on (http:\/\/\S+)/.exec(String(c));
  if (m) resolve(m[1]);
}));
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const roots = [
  ["/pkg/", PKG],
  ["/node_modules/", join(HERE, "node_modules")],
  ["/tjs-models/", dirname(ONNX)],
];
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
  let file = path === "/" ? join(HERE, "bench.html") : null;
  for (const [prefix, dir] of roots) if (!file && path.startsWith(prefix) && !path.includes("..")) file = join(dir, path.slice(prefix.length));
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new Error();
    // Cross-origin isolated, as florence2-proxy serves its demo: both sides may use threads.
    res.writeHead(200, {
      "content-type": types[extname(file)] ?? "application/octet-stream", "content-length": s.size,
      "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp",
    });
    createReadStream(file).pipe(res);
  } catch {
    console.error(`  404 ${req.url}`);
    res.writeHead(404).end();
  }
}).listen(0, "127.0.0.1");
await new Promise((r) => server.once("listening", r));
const base = `http://127.0.0.1:${server.address().port}`;

// Our browser's processes: the marker flag shows in the browser process's command line; the
// renderers are its descendants.
const marker = `--florence2-bench=${process.pid}`;
async function processes() {
  const out = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
      const ppid = Number(/PPid:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))[1]);
      out.push({ pid: Number(pid), ppid, cmd });
    } catch {}
  }
  return out;
}
async function renderers() {
  const all = await processes();
  const root = all.find((p) => p.cmd.includes(marker) && !p.cmd.some((a) => a.startsWith("--type=")));
  if (!root) return [];
  const mine = new Set([root.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) if (!mine.has(p.pid) && mine.has(p.ppid)) { mine.add(p.pid); grew = true; }
  }
  // Chromium rewrites its children's command lines as one string (setproctitle).
  return all.filter((p) => mine.has(p.pid) && p.cmd.join(" ").includes("--type=renderer")).map((p) => p.pid);
}
const peakMiB = async (pid) => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"))[1]) / 1024;

const browser = await chromium.launch({
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  // WebGPU rows need the flag headless; a GPU machine may need more (CHROMIUM_ARGS, e.g.
  // "--use-angle=vulkan --enable-features=Vulkan").
  args: ["--no-sandbox", "--js-flags=--max-old-space-size=8192", "--enable-unsafe-webgpu", marker,
         ...env("CHROMIUM_ARGS", "").split(" ").filter(Boolean)],
});
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const perToken = (stamps) => (stamps.length > 1 ? (stamps.at(-1) - stamps[0]) / (stamps.length - 1) : NaN);

async function one(name) {
  const row = ROWS[name];
  const context = await browser.newContext();
  const page = await context.newPage();
  let bytes = 0;
  const pending = [];
  page.on("requestfinished", (req) => pending.push(req.sizes().then((s) => (bytes += s.responseBodySize + s.responseHeadersSize), () => {})));
  page.on("console", (m) => m.type() === "error" && console.error(`  [${name}] ${m.text()}`));
  await page.goto(`${base}/?side=${row.side}`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 120_000 });
  // The renderers' peak, polled while the row runs: read once at the end, it sometimes came
  // from a spare renderer rather than the page's (1.2 GB where the page's had reached 3.9).
  let peak = 0;
  const poll = setInterval(async () => {
    for (const pid of await renderers()) peak = Math.max(peak, await peakMiB(pid).catch(() => 0));
  }, 250);
  const call = (fn, arg) => page.evaluate(([fn, arg]) => window.bench[fn](arg), [fn, arg]);
  const load = row.side === "ours"
    ? await call("load", { modelUrl: `${proxyUrl}/models/${row.folder}/`, threads: row.threads, backend: row.backend })
    : await call("load", { modelId: basename(ONNX), dtype: row.dtype, device: row.device });
  const runs = [];
  for (let i = 0; i <= WARM; i++) {
    runs.push(await call("run", { image: variant(i), task: TASK, maxNewTokens: MAX_NEW, minNewTokens: MAX_NEW, noRepeatNgramSize: NO_REPEAT }));
  }
  await Promise.all(pending);
  // The page's renderer: Chromium may hand a new context a spare renderer started earlier,
  // so it is found by size: the previous (row, round)'s renderer exited with its context,
  // and what else lives (spare, UI) is small.
  clearInterval(poll);
  for (const pid of await renderers()) peak = Math.max(peak, await peakMiB(pid).catch(() => 0));
  await context.close();
  const warm = runs.length > 1 ? runs.slice(1) : runs; // --warm-runs 0: the first run stands in
  return {
    name, load: load.loadMs, info: load.info, first: runs[0].ms, warm: median(warm.map((r) => r.ms)),
    token: median(warm.map((r) => perToken(r.stamps))), tokens: runs[0].ids.length, ids: runs[0].ids,
    text: runs[0].text, peak, bytes, timings: warm.at(-1).timings, wasm: runs.at(-1).wasmMemoryBytes,
  };
}

const results = Object.fromEntries(rowNames.map((n) => [n, []]));
try {
  const version = browser.version();
  console.log(`Chromium ${version}; ${ROUNDS} round(s), ${WARM} warm run(s) each; ${TASK}, ${MAX_NEW} greedy tokens, no_repeat_ngram_size ${NO_REPEAT}`);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...rowNames].reverse() : rowNames;
    for (const name of order) {
      const r = await one(name);
      results[name].push(r);
      console.log(
        `round ${round + 1} ${name}: load ${(r.load / 1000).toFixed(1)} s, first ${(r.first / 1000).toFixed(1)} s, ` +
          `warm ${(r.warm / 1000).toFixed(1)} s, ${r.token.toFixed(0)} ms/token, ${r.tokens} tokens, peak ${r.peak.toFixed(0)} MiB, ` +
          `${(r.bytes / 1e6).toFixed(0)} MB${r.wasm ? `, wasm memory ${(r.wasm / 2 ** 20).toFixed(0)} MiB` : ""}${r.timings ? `; timings ${JSON.stringify(r.timings)}` : ""}${r.info ? `; ${JSON.stringify(r.info).slice(0, 160)}` : ""}`,
      );
    }
  }
} finally {
  await browser.close();
  server.close();
  proxy.kill();
}

// The table: medians over rounds, and each row's times against ours (same run).
const med = (name, key) => median(results[name].map((r) => r[key]));
const ref = rowNames.find((n) => ROWS[n].side === "ours");
// Each row against its counterpart (f32 against f32, small variants against ours-mixed), or
// the first of ours when that row was not run.
const versus = (name) => (rowNames.includes(ROWS[name].vs) ? ROWS[name].vs : ref);
const cell = (name, key, digits = 1, scale = 1000) => {
  const v = med(name, key) / scale;
  const against = versus(name);
  const ratio = against && name !== against && key !== "peak" && key !== "bytes" ? ` (${(med(against, key) / med(name, key)).toFixed(2)}× ${against})` : "";
  return `${v.toFixed(digits)}${ratio}`;
};
console.log("\n| row | download MB | load s | first run s | warm run s | decoder ms/token | peak renderer MiB | tokens |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const name of rowNames) {
  console.log(
    `| ${ROWS[name].label} | ${(med(name, "bytes") / 1e6).toFixed(0)} | ${cell(name, "load")} | ${cell(name, "first")} | ${cell(name, "warm")} | ` +
      `${cell(name, "token", 0, 1)} | ${med(name, "peak").toFixed(0)} | ${results[name][0].tokens} |`,
  );
}
if (ref) console.log(`(×: the named row's time / this row's time, medians of the same run; below 1 = the named row faster)`);
const same = rowNames.filter((n) => ROWS[n].dtype === "fp32" && rowNames.includes(ROWS[n].vs));
for (const n of same) {
  const ours = ROWS[n].vs;
  const a = results[ours][0].ids.join(" "), b = results[n][0].ids.join(" ");
  console.log(`tokens, ${ours} vs ${n}: ${a === b ? "identical" : `differ\n  ${ours}: ${a}\n  ${n}: ${b}`}`);
}
for (const n of rowNames) console.log(`${n}: ${results[n][0].text.slice(0, 120)}`);
