// Florence2Local in real Chromium (playwright-core with Debian's Chromium), exactly as the
// package exports it: model folders served by florence2-proxy --models, the page and the
// package by a small server here (which also trickles one folder slowly, to cancel a download
// midway). Every case of the reference's golden_e2e.json must give transformers' ids and text
// exactly, and the shared post-processor's result of that text, on each backend; a second load
// comes from Cache Storage with no request; broken folders and cancellations give typed codes
// and leave the page working. No expectation is tied to one model's numbers: the goldens are
// read from the folder given. `cargo xtask test` builds everything and sets the variables.
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "../../tools/node/node_modules/playwright-core/index.mjs";
import { need } from "./env.mjs";

const PKG = need("FLORENCE2_PKG"); // pkg/ with index.js and local/
const PROXY = need("FLORENCE2_PROXY_BIN");
const CLI = need("FLORENCE2_CLI"); // the florence2 binary: the shared post-processor
const GOLDEN_DIR = need("FLORENCE2_E2E_MODEL"); // a model folder with golden_e2e.json
const BACKENDS = (process.env.FLORENCE2_LOCAL_BACKENDS ?? "cpu,webgpu").split(",").filter(Boolean);
const ONLY = process.env.FLORENCE2_E2E_ONLY ?? "";
// Quantized folders (`florence2 quantize` of the golden one, each with its own golden_e2e.json
// from transformers on its dequantized twin), as `scheme=DIR,…`; and how many of their golden
// tasks of which schemes run on WebGPU too (default: every case of every scheme, as on the CPU;
// SwiftShader: ~40-60 s to load, ~15 s a case with a decoder step's LayerNorm and attention in
// one launch each; a number N for the first N tasks only, when iterating by hand).
const QUANTIZED = (process.env.FLORENCE2_E2E_QUANTIZED ?? "").split(",").filter(Boolean).map((s) => s.split("="));
const QUANTIZED_WEBGPU_TASKS = process.env.FLORENCE2_QUANTIZED_WEBGPU_TASKS ?? "all";
const QUANTIZED_WEBGPU_SCHEMES = (process.env.FLORENCE2_QUANTIZED_WEBGPU_SCHEMES ?? "q8,q4,mixed").split(",");
const PAGE = fileURLToPath(new URL("./local.html", import.meta.url));

const passed = [];
const failed = [];
async function test(name, body) {
  if (!name.includes(ONLY)) return;
  const started = performance.now();
  try {
    await body();
    passed.push(name);
    console.log(`ok   ${name} (${Math.round(performance.now() - started)} ms)`);
  } catch (error) {
    failed.push(name);
    console.log(`FAIL ${name}\n     ${String(error?.stack ?? error).split("\n").slice(0, 6).join("\n     ")}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Model folders for the proxy: the golden one, copied (the proxy refuses symlinks out of its
// root), and broken variants of it.

const golden = JSON.parse(await readFile(join(GOLDEN_DIR, "golden_e2e.json"), "utf8"));
const models = await mkdtemp(join(tmpdir(), "florence2-local-models-"));
const FILES = ["config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "processor_config.json", "preprocessor_config.json"];
async function copyFolder(name, skip = []) {
  const dir = join(models, name);
  await mkdir(dir, { recursive: true });
  for (const file of FILES.filter((f) => !skip.includes(f))) {
    await cp(join(GOLDEN_DIR, file), join(dir, file)).catch((e) => {
      if (e.code !== "ENOENT") throw e;
    });
  }
  return dir;
}
await copyFolder("good");
// Updated in place by the cache test.
await copyFolder("mutable");
// The backends' golden runs go at once, each in its own page on its own copy of the folder, so
// that neither's cache clearing or filling touches the other's load.
for (const backend of BACKENDS) await copyFolder(`golden-${backend}`);
for (const [scheme, dir] of QUANTIZED) {
  for (const backend of BACKENDS) {
    const to = join(models, `${scheme}-${backend}`);
    await mkdir(to, { recursive: true });
    for (const file of FILES) await cp(join(dir, file), join(to, file)).catch((e) => { if (e.code !== "ENOENT") throw e; });
  }
}
let gridSide, hugeSide;
await copyFolder("no-tokenizer", ["tokenizer.json"]);
const checkpoint = await readFile(join(GOLDEN_DIR, "model.safetensors"));
await writeFile(join(await copyFolder("truncated", ["model.safetensors"]), "model.safetensors"), checkpoint.subarray(0, Math.floor(checkpoint.length / 2)));
{
  // Every tensor's shape stays, the config says the feed-forward layers are twice as wide.
  const dir = await copyFolder("wrong-shapes", ["config.json"]);
  const config = JSON.parse(await readFile(join(GOLDEN_DIR, "config.json"), "utf8"));
  config.text_config.encoder_ffn_dim *= 2;
  await writeFile(join(dir, "config.json"), JSON.stringify(config));
}
{
  // The first floating-point tensor's first value becomes NaN.
  const bytes = Buffer.from(checkpoint);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8"));
  const [, tensor] = Object.entries(header).find(([name, t]) => name !== "__metadata__" && ["F32", "F16", "BF16"].includes(t.dtype));
  const at = 8 + headerLength + tensor.data_offsets[0];
  if (tensor.dtype === "F32") bytes.writeUInt32LE(0x7fc00000, at);
  else bytes.writeUInt16LE(tensor.dtype === "F16" ? 0x7e00 : 0x7fc0, at);
  await writeFile(join(await copyFolder("nan", ["model.safetensors"]), "model.safetensors"), bytes);
}

{
  // Sizes from the folder's own config: its table's rows and its stages' total stride.
  const config = JSON.parse(await readFile(join(GOLDEN_DIR, "config.json"), "utf8"));
  const vision = config.vision_config;
  const stride = vision.patch_stride.reduce((a, b) => a * b, 1);
  const rows = vision.max_position_embeddings ?? 50;
  const processor = (side) => JSON.stringify({ size: { height: side, width: side } });
  const noProcessor = ["processor_config.json", "preprocessor_config.json"];
  // Pictures one grid cell wider than the position table holds: a broken folder.
  gridSide = (rows + 1) * stride;
  await writeFile(join(await copyFolder("grid-too-large", noProcessor), "preprocessor_config.json"), processor(gridSide));
  // A table of 1600 rows and pictures that fill it (51200² at a stride of 32): a valid model
  // whose pixel values alone take 31 GB, more than wasm32 or any GPU buffer holds.
  const bigRows = 1600;
  hugeSide = bigRows * stride;
  const dir = await copyFolder("huge-input", [...noProcessor, "config.json", "model.safetensors"]);
  vision.max_position_embeddings = bigRows;
  await writeFile(join(dir, "config.json"), JSON.stringify(config));
  await writeFile(join(dir, "preprocessor_config.json"), processor(hugeSide));
  await writeFile(join(dir, "model.safetensors"), resized(checkpoint, /image_pos(ition)?_embed\.(row|column)_embeddings\.weight$/, bigRows));
}

/** The checkpoint with the matching tensors' first axis grown to `rows` (rows repeated). */
function resized(bytes, pattern, rows) {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8"));
  const data = bytes.subarray(8 + headerLength);
  const out = {};
  const chunks = [];
  let offset = 0;
  for (const [name, t] of Object.entries(header).sort(([, a], [, b]) => (a.data_offsets?.[0] ?? -1) - (b.data_offsets?.[0] ?? -1))) {
    if (name === "__metadata__") {
      out[name] = t;
      continue;
    }
    let body = data.subarray(t.data_offsets[0], t.data_offsets[1]);
    let shape = t.shape;
    if (pattern.test(name)) {
      const row = body.length / shape[0];
      const grown = Buffer.alloc(row * rows);
      for (let r = 0; r < rows; r++) body.copy(grown, r * row, (r % shape[0]) * row, (r % shape[0] + 1) * row);
      [body, shape] = [grown, [rows, ...shape.slice(1)]];
    }
    out[name] = { ...t, shape, data_offsets: [offset, offset + body.length] };
    chunks.push(body);
    offset += body.length;
  }
  const json = Buffer.from(JSON.stringify(out).padEnd(Math.ceil(JSON.stringify(out).length / 8) * 8, " "));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...chunks]);
}

const proxy = spawn(PROXY, ["--listen", "127.0.0.1:0", "--models", models], { stdio: ["ignore", "pipe", "inherit"] });
const proxyUrl = await new Promise((resolve, reject) => {
  proxy.once("exit", (code) => reject(new Error(`florence2-proxy exited (${code})`)));
  proxy.stdout.on("data", (chunk) => {
    const match = /listening on (http:\/\/\S+)/.exec(String(chunk));
    if (match) resolve(match[1]);
  });
});
const modelUrl = (name) => `${proxyUrl}/models/${name}/`;

// ---------------------------------------------------------------------------------------------
// The page, the package, and a folder whose checkpoint arrives slowly.

const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
  if (path.startsWith("/slow/")) return slow(path.slice("/slow/".length), res);
  const file = path === "/" || path === "/plain/" ? PAGE : path.startsWith("/pkg/") ? join(PKG, path.slice("/pkg/".length)) : null;
  // Cross-origin isolated, as florence2-proxy serves the demo: the CPU backend gets threads. The
  // page at /plain/ is not, and runs on one thread.
  const isolation = path === "/plain/" ? {} : { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
  try {
    if (!file || path.includes("..")) throw new Error("not found");
    const body = await readFile(file);
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", ...isolation }).end(body);
  } catch {
    res.writeHead(404).end("not found");
  }
}).listen(0, "127.0.0.1");
await new Promise((r) => server.once("listening", r));
const pageUrl = `http://127.0.0.1:${server.address().port}/`;

async function slow(name, res) {
  const body = await readFile(join(GOLDEN_DIR, name)).catch(() => null);
  if (!body) return res.writeHead(404).end();
  res.writeHead(200, { "content-length": body.length, "access-control-allow-origin": "*" });
  if (name !== "model.safetensors") return res.end(body);
  for (let at = 0; at < body.length && !res.destroyed; at += 4096) {
    res.write(body.subarray(at, at + 4096));
    await new Promise((r) => setTimeout(r, 50));
  }
  res.end();
}

// ---------------------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--enable-unsafe-webgpu"],
});
const problems = [];
// A panic's message (the runtime's hook logs it before the trap) belongs in the test output.
const echoPanics = (source) => source.on("console", (m) => m.text().includes("panicked") && console.log(`     console: ${m.text()}`));
/** A page of the package, its errors kept in `problems`. */
async function openPage(path = "") {
  const page = await browser.newPage();
  page.on("pageerror", (e) => problems.push(e.message));
  echoPanics(page);
  page.on("worker", echoPanics);
  await page.goto(pageUrl + path);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 30000 });
  return page;
}
const page = await openPage();
const modelRequests = [];
page.on("request", (r) => {
  if (r.url().includes("/models/")) modelRequests.push(`${r.method()} ${r.url()}`);
});

/** Runs `body(Florence2Local, ...args)` in `page`; a rejection comes back as { code, message }. */
const inPageOf = (page) => (body, ...args) =>
  page.evaluate(
    async ([source, args]) => {
      const f = new Function(`return (${source})`)();
      try {
        return { value: await f(window.Florence2Local, ...args) };
      } catch (e) {
        return { error: { name: e?.name, code: e?.code, message: String(e?.message ?? e) } };
      }
    },
    [body.toString(), args],
  );
const inPage = inPageOf(page);

const imageBytes = [...(await readFile(join(GOLDEN_DIR, golden.image)))];
const [width, height] = golden.image_size_wh;
const expected = (task, decoded) =>
  JSON.parse(execFileSync(CLI, ["postprocess", "--task", task, "--width", String(width), "--height", String(height), decoded], { encoding: "utf8" }));

const runCases = async (Local, url, backend, image, cases, otherPicture) => {
  await Local.clearCache(url); // a download each time: the cache has its own test
  const phases = new Set();
  const local = await Local.load({ modelUrl: url, backend, onProgress: (p) => phases.add(p.phase) });
  const out = { info: local.info, phases: [...phases], runs: [], cores: navigator.hardwareConcurrency };
  const bytes = new Uint8Array(image);
  for (const c of cases) {
    const started = performance.now();
    const answer = await local.run({ image: bytes, ...c.options });
    out.runs.push({ ...answer, ms: performance.now() - started });
  }
  if (!otherPicture) return (local.dispose(), out);
  // Another picture is not taken for the last one, and the last one is not reused after it.
  const canvas = new OffscreenCanvas(64, 48);
  const g = canvas.getContext("2d");
  g.fillStyle = "#36c";
  g.fillRect(0, 0, 64, 48);
  const other = new Uint8Array(await (await canvas.convertToBlob({ type: "image/png" })).arrayBuffer());
  const first = cases[0].options;
  out.other = await local.run({ image: other, ...first });
  out.again = await local.run({ image: bytes, ...first });
  local.dispose();
  return out;
};

/** A golden file's cases, beam and greedy for each task (the first `tasks` tasks). */
const casesOf = (golden, tasks = Infinity) => {
  const cases = [];
  for (const [task, c] of Object.entries(golden.cases).slice(0, tasks)) {
    const text = c.text_input || undefined;
    cases.push({ task, kind: "beam", golden: c, options: { task, text, maxNewTokens: c.beam3_ids.length - 1 } });
    cases.push({ task, kind: "greedy", golden: c, options: { task, text, maxNewTokens: c.greedy_ids.length - 1, beams: 1, noRepeatNgramSize: 0 } });
  }
  return cases;
};
const goldenCases = casesOf(golden);

/** Every golden case on `backend`, in a page of its own (of a quantized folder: `scheme`). */
async function goldenOn(backend, scheme = null, cases = goldenCases) {
  const all = backend !== "webgpu" && !scheme;
  assert.ok(cases.length > 0);
  const own = await openPage();
  const folder = `${scheme ?? "golden"}-${backend}`;
  const got = await inPageOf(own)(runCases, modelUrl(folder), backend, imageBytes, cases, all).finally(() => own.close());
  assert.ok(got.value, JSON.stringify(got.error));
  const { info, phases, runs, other, again } = got.value;
  assert.equal(info.backend, backend);
  assert.equal(info.dtype, scheme ?? "f32");
  assert.deepEqual(phases, ["compile", "download", "load", "warmup"]);
  assert.equal(info.fromCache, false);
  assert.ok(info.parameters > 0 && info.loadMs > 0);
  if (backend === "webgpu") assert.ok(typeof info.adapter === "string" && info.adapter.length > 0);
  // The CPU on every core of this isolated page (the threaded runtime); WebGPU needs none.
  assert.equal(info.threads, backend === "cpu" ? got.value.cores : 1);
  assert.equal(info.threadsNote, null);
  cases.forEach((c, i) => {
    const run = runs[i];
    const ids = c.kind === "beam" ? c.golden.beam3_ids : c.golden.greedy_ids;
    assert.deepEqual(run.generatedIds, ids, `${c.task} ${c.kind} ids`);
    if (c.kind === "beam") {
      assert.equal(run.decoded, c.golden.decoded, `${c.task} decoded`);
      assert.deepEqual(run.result, expected(c.task, c.golden.decoded), `${c.task} result`);
      assert.equal(run.result.source, "local");
    }
    assert.equal(run.overlay, null);
  });
  // One picture for every case: decoded and seen by the vision tower once.
  assert.deepEqual(runs.map((r) => r.imageReused), runs.map((_, i) => i > 0));
  if (all) {
    assert.equal(other.imageReused, false);
    assert.equal(other.result.image.width, 64);
    assert.equal(again.imageReused, false);
    assert.deepEqual(again.generatedIds, runs[0].generatedIds);
  }
  const times = runs.map((r, i) => `${cases[i].task} ${cases[i].kind} ${Math.round(r.ms)}`);
  console.log(`     ${scheme ?? "f32"} on ${backend} (${info.adapter ?? `wasm, ${info.threads} threads`}): load ${Math.round(info.loadMs)} ms, weights ${(info.weightBytes / 1e6).toFixed(1)} MB; ms per run: ${times.join(", ")}`);
}

// WebGPU runs on SwiftShader here — the CPU emulating a GPU, so slow (~40 s per vision pass),
// but every golden case runs on it too. Chromium's GPU process works through it one command at
// a time, leaving the other core mostly idle: the CPU backend's cases run beside it, in a page
// of their own (measured on the 2-core CI machine: WebGPU's 14 cases 490 s, the CPU's 52 s
// beside them, all done in 493 s). Two WebGPU pages gain nothing: their commands take turns
// (each page's runs took twice as long, 510 s in all). Reusing a picture's features is the same
// code on both backends: the other picture is checked on the CPU.
// Quantized folders after the f32 ones, the CPU's beside WebGPU's in the same way.
const quantizedOn = async (backend) => {
  for (const [scheme, dir] of QUANTIZED) {
    if (backend === "webgpu" && !QUANTIZED_WEBGPU_SCHEMES.includes(scheme)) continue;
    const own = JSON.parse(await readFile(join(dir, "golden_e2e.json"), "utf8"));
    const tasks = backend === "webgpu" && QUANTIZED_WEBGPU_TASKS !== "all" ? Number(QUANTIZED_WEBGPU_TASKS) : Infinity;
    const which = Number.isFinite(tasks) ? `its first ${tasks} golden task(s)` : "every golden case";
    await test(`${backend}, ${scheme}: transformers' ids on the dequantized twin, ${which}`, () => goldenOn(backend, scheme, casesOf(own, tasks)));
  }
};
await Promise.all(
  BACKENDS.map(async (backend) => {
    await test(`${backend}: every golden case gives transformers' ids and the shared post-processor's result`, () => goldenOn(backend));
    await quantizedOn(backend);
  }),
);

// Chromium's only adapter here is SwiftShader (the CPU emulating a GPU, ~100x slower than the
// CPU backend): "auto" must take the CPU and say what it found.
if (BACKENDS.includes("webgpu")) {
  await test("auto never picks a software adapter: SwiftShader gives the CPU, and info.adapter says why", async () => {
    const load = (Local, url) => Local.load({ modelUrl: url, backend: "auto" }).then((l) => (l.dispose(), l.info));
    const got = await inPage(load, modelUrl("good"));
    assert.ok(got.value, JSON.stringify(got.error));
    assert.equal(got.value.backend, "cpu");
    assert.match(got.value.adapter ?? "", /software adapter/);
  });
}

if (BACKENDS.includes("cpu")) {
  await test("the CPU on one thread where the page is not cross-origin isolated, or when asked: the same ids", async () => {
    const [first] = goldenCases;
    const once = async (Local, url, image, options, threads) => {
      const local = await Local.load({ modelUrl: url, backend: "cpu", threads });
      const answer = await local.run({ image: new Uint8Array(image), ...options });
      local.dispose();
      return { info: local.info, ids: answer.generatedIds };
    };
    const plain = await openPage("plain/");
    const notIsolated = await inPageOf(plain)(once, modelUrl("good"), imageBytes, first.options).finally(() => plain.close());
    assert.ok(notIsolated.value, JSON.stringify(notIsolated.error));
    assert.equal(notIsolated.value.info.threads, 1);
    assert.match(notIsolated.value.info.threadsNote, /not cross-origin isolated/);
    assert.deepEqual(notIsolated.value.ids, first.golden.beam3_ids);
    const asked = await inPage(once, modelUrl("good"), imageBytes, first.options, 1);
    assert.ok(asked.value, JSON.stringify(asked.error));
    assert.equal(asked.value.info.threads, 1);
    assert.equal(asked.value.info.threadsNote, null);
    assert.deepEqual(asked.value.ids, first.golden.beam3_ids);
    for (const threads of [0, 1.5, "2", 1000]) {
      const bad = await inPage((Local, url, threads) => Local.load({ modelUrl: url, threads }), modelUrl("good"), threads);
      assert.equal(bad.error?.code, "BAD_OPTION", `threads ${threads}`);
    }
  });
}

const loadInfo = (Local, url) => Local.load({ modelUrl: url, backend: "cpu" }).then((l) => (l.dispose(), l.info));
const fileOf = (request) => request.split("/").pop();

await test("a second load comes from Cache Storage after HEAD requests only; a folder updated in place is fetched again", async () => {
  const url = modelUrl("mutable");
  await inPage((Local) => Local.clearCache());
  const first = await inPage(loadInfo, url);
  assert.equal(first.value?.fromCache, false, JSON.stringify(first));
  assert.equal(first.value.cacheRefused, null);
  let before = modelRequests.length;
  const second = await inPage(loadInfo, url);
  assert.equal(second.value?.fromCache, true, JSON.stringify(second));
  const asked = modelRequests.slice(before);
  assert.ok(asked.length >= 3 && asked.every((r) => r.startsWith("HEAD ")), asked.join(", "));
  // The checkpoint replaced under the same URL (by a quantized one where there is one, so the
  // load shows which weights it got): fetched again, not the year-old copy.
  const [scheme, dir] = QUANTIZED[0] ?? [null, null];
  if (dir) await cp(join(dir, "model.safetensors"), join(models, "mutable", "model.safetensors"));
  else await writeFile(join(models, "mutable", "config.json"), `${await readFile(join(GOLDEN_DIR, "config.json"), "utf8")}\n`);
  before = modelRequests.length;
  const third = await inPage(loadInfo, url);
  assert.equal(third.value?.fromCache, false, JSON.stringify(third));
  if (scheme) assert.equal(third.value.dtype, scheme);
  const fetched = modelRequests.slice(before).filter((r) => r.startsWith("GET ")).map(fileOf);
  assert.ok(["config.json", "model.safetensors", "tokenizer.json"].every((f) => fetched.includes(f)), fetched.join(", "));
  const fourth = await inPage(loadInfo, url);
  assert.equal(fourth.value?.fromCache, true, JSON.stringify(fourth));
  assert.equal(fourth.value.dtype, third.value.dtype);
  await inPage((Local, url) => Local.clearCache(url), url);
  const fifth = await inPage(loadInfo, url);
  assert.equal(fifth.value?.fromCache, false);
});

await test("a cached set that does not match its manifest is refused (MODEL_INVALID) and fetched again", async () => {
  const url = modelUrl("good");
  await inPage((Local, url) => Local.clearCache(url), url);
  assert.equal((await inPage(loadInfo, url)).value?.fromCache, false);
  // Another file's bytes under a cached name, the same size: only the hash tells.
  const tamper = (Local, url, name, how) =>
    caches.open("florence2-web-models").then(async (cache) => {
      const key = new URL(name, url).href;
      if (how === "delete") return cache.delete(key);
      const bytes = new Uint8Array(await (await cache.match(key)).arrayBuffer());
      bytes[bytes.length - 1] ^= 1;
      return cache.put(key, new Response(bytes));
    });
  for (const [name, how, why] of [["model.safetensors", "flip", /MODEL_INVALID: .*model\.safetensors.*SHA-256/], ["tokenizer.json", "delete", /MODEL_INVALID: tokenizer\.json is missing/]]) {
    await inPage(tamper, url, name, how);
    const refused = await inPage(loadInfo, url);
    assert.equal(refused.value?.fromCache, false, JSON.stringify(refused));
    assert.match(refused.value.cacheRefused ?? "", why);
    const again = await inPage(loadInfo, url);
    assert.equal(again.value?.fromCache, true, JSON.stringify(again));
    assert.equal(again.value.cacheRefused, null);
  }
});

await test("offline, a cached folder still loads; an uncached one is MODEL_FETCH", async () => {
  const offline = (route) => route.abort("internetdisconnected");
  await page.route(`${proxyUrl}/models/**`, offline);
  try {
    const cached = await inPage(loadInfo, modelUrl("good"));
    assert.equal(cached.value?.fromCache, true, JSON.stringify(cached));
    const uncached = await inPage(loadInfo, modelUrl("no-tokenizer"));
    assert.equal(uncached.error?.code, "MODEL_FETCH", JSON.stringify(uncached));
  } finally {
    await page.unroute(`${proxyUrl}/models/**`, offline);
  }
});

const loadError = async (url, backend = "cpu") => {
  const got = await inPage((Local, url, backend) => Local.load({ modelUrl: url, backend }).then((l) => l.info), url, backend);
  assert.ok(got.error, `loaded: ${JSON.stringify(got.value)}`);
  assert.equal(got.error.name, "Florence2Error");
  return got.error;
};

await test("broken folders give typed codes", async () => {
  const cases = [
    [modelUrl("absent"), "MODEL_FETCH"],
    [`http://127.0.0.1:9/models/x/`, "MODEL_FETCH"],
    [modelUrl("no-tokenizer"), "MODEL_INVALID", /tokenizer/],
    [modelUrl("truncated"), "MODEL_INVALID"],
    [modelUrl("wrong-shapes"), "MODEL_INVALID", /shape/],
    [modelUrl("nan"), "MODEL_INVALID", /non-finite/],
    [modelUrl("grid-too-large"), "MODEL_INVALID", /position table/],
  ];
  for (const [url, code, message] of cases) {
    const error = await loadError(url);
    assert.equal(error.code, code, `${url}: ${error.message}`);
    if (message) assert.match(error.message, message);
  }
  const bad = await inPage((Local) => Local.load({ modelUrl: "x", backend: "tpu" }));
  assert.equal(bad.error?.code, "BAD_OPTION");
});

await test("a model that cannot fit is refused with OUT_OF_MEMORY before its weights load, and the page still works", async () => {
  for (const backend of BACKENDS) {
    const error = await loadError(modelUrl("huge-input"), backend);
    assert.equal(error.code, "OUT_OF_MEMORY", `${backend}: ${error.message}`);
    assert.ok(error.message.includes(`${hugeSide}x${hugeSide}`), `${backend}: ${error.message}`);
  }
  const after = await inPage(
    async (Local, url, image) => {
      const local = await Local.load({ modelUrl: url, backend: "cpu" });
      const answer = await local.run({ image: new Uint8Array(image), task: "<CAPTION>", maxNewTokens: 3, beams: 1 });
      local.dispose();
      return answer.result.source;
    },
    modelUrl("good"),
    imageBytes,
  );
  assert.equal(after.value, "local", JSON.stringify(after.error));
});

await test("cancelling a download and a run gives ABORTED, and the page still works", async () => {
  const download = await inPage(
    (Local, url) => {
      const controller = new AbortController();
      let seen = 0;
      return Local.load({
        modelUrl: url,
        backend: "cpu",
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === "download" && p.loaded > 0 && ++seen === 3) controller.abort();
        },
      });
    },
    `${pageUrl}slow/`,
  );
  assert.equal(download.error?.code, "ABORTED", JSON.stringify(download));
  const run = await inPage(
    async (Local, url, image) => {
      const local = await Local.load({ modelUrl: url, backend: "cpu" });
      const controller = new AbortController();
      const bytes = new Uint8Array(image);
      const pending = local.run({ image: bytes, task: "<CAPTION>", maxNewTokens: 40, beams: 1, signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      const cancelled = await pending.then(() => "finished", (e) => e.code);
      const after = await local.run({ image: bytes, task: "<CAPTION>", maxNewTokens: 3, beams: 1 });
      local.dispose();
      const disposed = await local.run({ image: bytes, task: "<CAPTION>" }).then(() => "ran", (e) => e.code);
      return { cancelled, after: after.generatedIds.length, disposed };
    },
    modelUrl("good"),
    imageBytes,
  );
  assert.ok(run.value, JSON.stringify(run.error));
  assert.equal(run.value.cancelled, "ABORTED");
  assert.ok(run.value.after >= 2);
  assert.equal(run.value.disposed, "BAD_OPTION");
});

await test("bad run options and images give typed codes", async () => {
  const got = await inPage(
    async (Local, url, image) => {
      const local = await Local.load({ modelUrl: url, backend: "cpu" });
      const code = (options) => local.run(options).then(() => "ran", (e) => e.code);
      const bytes = new Uint8Array(image);
      const out = {
        noText: await code({ image: bytes, task: "<CAPTION_TO_PHRASE_GROUNDING>" }),
        unknown: await code({ image: bytes, task: "<NOPE>" }),
        beams: await code({ image: bytes, task: "<OD>", beams: 0 }),
        notImage: await code({ image: new Uint8Array([1, 2, 3]), task: "<OD>" }),
        region: await code({ image: bytes, task: "<OD>", region: { x1: 0, y1: 0, x2: 9, y2: 9 } }),
      };
      local.dispose();
      return out;
    },
    modelUrl("good"),
    imageBytes,
  );
  assert.deepEqual(got.value, { noText: "TEXT_REQUIRED", unknown: "UNKNOWN_TASK", beams: "BAD_OPTION", notImage: "IMAGE_DECODE", region: "TEXT_NOT_ALLOWED" });
});

await test("no uncaught errors in the page", async () => {
  assert.deepEqual(problems, []);
});

await browser.close();
server.close();
proxy.kill();
await rm(models, { recursive: true, force: true });
console.log(`\nFlorence2Local e2e: ${passed.length} passed, ${failed.length} failed${failed.length ? `: ${failed.join("; ")}` : ""}`);
process.exit(failed.length ? 1 : 0);
