// The Web Worker of `Florence2Local`: downloads a model folder (with progress, into Cache
// Storage), loads it into the local runtime (florence2-local wasm, fetched only now) and runs
// prompts, so the page's thread never waits on the model. One worker per loaded model.
//
// Messages in:  { id, op: "load", modelUrl, backend, threads } | { id, op: "run", image, options, stream }
//               | { op: "abort", target }
// Messages out: { id, ok: true, value } | { id, ok: false, error: { code, message } }
//               | { id, progress: { phase, loaded, total } }
//               | { id, token: { text, tokens } }  (a run with `stream`: after every token)

import initSingle, * as single from "./florence2_local.js";

const CACHE = "florence2-web-models";
const REQUIRED = { config: "config.json", model: "model.safetensors", tokenizer: "tokenizer.json" };
const OPTIONAL = {
  generationConfig: ["generation_config.json"],
  processorConfig: ["preprocessor_config.json", "processor_config.json"],
};

let model = null;
let memory = null;
/** The runtime this worker loaded: `single` (WebGPU, or the CPU on this thread), or the
 * threaded build (`threads/`: the CPU on a pool of workers sharing its memory). */
let runtime = null;
const aborted = new Set();
const downloads = new Map();

self.onmessage = (event) => {
  const message = event.data;
  if (message.op === "abort") {
    aborted.add(message.target);
    downloads.get(message.target)?.abort();
    return;
  }
  const { id } = message;
  const work = message.op === "load" ? load(id, message) : run(id, message);
  work.then(
    (value) => self.postMessage({ id, ok: true, value }),
    (error) => self.postMessage({ id, ok: false, error: plain(error) }),
  ).finally(() => aborted.delete(id));
};

function fail(code, message) {
  const error = new Error(message);
  error.name = "Florence2Error";
  error.code = code;
  return error;
}

/** Errors cross postMessage as plain objects (structured cloning drops `code`). */
function plain(error) {
  if (error && typeof error.code === "string") return { code: error.code, message: error.message };
  if (error instanceof WebAssembly.RuntimeError || error instanceof RangeError) {
    // A trap inside the runtime (most often an allocation that wasm32 memory cannot hold):
    // this worker's instance is unusable from here on.
    model = null;
    return { code: "OUT_OF_MEMORY", message: `the local runtime stopped: ${error.message}` };
  }
  return { code: "MODEL_INVALID", message: String(error?.message ?? error) };
}

function progress(id, phase, loaded, total) {
  self.postMessage({ id, progress: { phase, loaded, total } });
}

// The smallest module using a SIMD instruction (v128: i32.const 0, i8x16.splat, popcnt).
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

async function load(id, { modelUrl, backend, threads }) {
  const started = performance.now();
  // The runtime is built with wasm SIMD (Chrome 91, Firefox 89, Safari 16.4 and later): where it
  // is missing, say so rather than fail compiling the module.
  if (!WebAssembly.validate(SIMD_PROBE)) {
    throw fail("WASM_SIMD_UNAVAILABLE", "this browser has no WebAssembly SIMD, which the local runtime needs");
  }
  const { chosen, adapter, bufferBytes } = await chooseBackend(backend);
  progress(id, "compile", 0, 1);
  const pool = await startRuntime(chosen, threads);
  progress(id, "compile", 1, 1);
  const controller = new AbortController();
  downloads.set(id, controller);
  let files;
  try {
    files = await download(id, modelUrl, controller.signal);
  } finally {
    downloads.delete(id);
  }
  if (aborted.has(id)) throw fail("ABORTED", "the load was cancelled");
  const bytes = Object.values(files.bytes).reduce((sum, b) => sum + b.byteLength, 0);
  // Stored before the weights are in wasm memory: storing and hashing copy each file for a
  // while, and beside the loaded weights those copies were the load's peak (base in f32:
  // 3.9 GB). The manifest, which makes the files count, waits for a good load.
  const manifest = files.fromCache ? null : await store(modelUrl, files.files).catch(() => null);
  progress(id, "load", 0, bytes);
  model = await runtime.LocalModel.load(files.bytes, chosen, bufferBytes);
  progress(id, "load", bytes, bytes);
  if (manifest) await commit(modelUrl, manifest).catch(() => {});
  if (chosen === "webgpu") {
    // The GPU compiles each kernel on first use: do it now, not in the first prompt.
    progress(id, "warmup", 0, 1);
    await model.warmup();
    if (aborted.has(id)) throw fail("ABORTED", "the load was cancelled");
  }
  progress(id, "warmup", 1, 1);
  const info = JSON.parse(model.info());
  return {
    backend: chosen,
    adapter,
    threads: runtime.threads(),
    threadsNote: pool.note,
    dtype: info.dtype,
    parameters: info.parameters,
    weightBytes: info.weightBytes,
    loadMs: performance.now() - started,
    fromCache: files.fromCache,
    cacheRefused: files.cacheRefused,
    wasmMemoryBytes: memory?.buffer.byteLength ?? 0,
  };
}

async function chooseBackend(backend) {
  if (backend === "cpu") return { chosen: "cpu", adapter: null };
  const gpu = self.navigator?.gpu ? await self.navigator.gpu.requestAdapter().catch(() => null) : null;
  if (gpu) {
    const i = gpu.info ?? {};
    const adapter = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(" ") || "WebGPU";
    // A software adapter (SwiftShader, lavapipe, WARP) is the CPU pretending to be a GPU, ~100x
    // slower than the CPU backend: "auto" takes the CPU there; an explicit "webgpu" still gets it.
    if (backend !== "webgpu" && isSoftwareAdapter(gpu, adapter)) {
      return { chosen: "cpu", adapter: `${adapter} (a software adapter: the CPU backend is faster)` };
    }
    // The runtime's device asks for the adapter's limits: a model whose tensors exceed them is
    // refused at load (OUT_OF_MEMORY) rather than failing on the GPU.
    const bufferBytes = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    return { chosen: "webgpu", adapter, bufferBytes };
  }
  if (backend === "webgpu") throw fail("WEBGPU_UNAVAILABLE", "this browser offers no WebGPU adapter");
  return { chosen: "cpu", adapter: null };
}

const POOL_START_MS = 60_000;

// The threaded build's glue, loaded by URL, which bundlers leave as it is: its pool's workers
// import it again by that URL, which a bundled chunk would not answer to (pkg/README.md,
// "Threads", says how a bundled app serves the folder).
const THREADED_RUNTIME = "./threads/florence2_local.js";

function within(ms, promise, why) {
  let timer;
  const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(why)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Compiles the runtime for `backend` into `runtime` and `memory`. The CPU runs on `threads`
 * (default: every core) where the page is cross-origin isolated, which shared wasm memory
 * needs: the threaded build, its pool started here. Otherwise, or when that fails, on this
 * thread; `note` says why. */
async function startRuntime(backend, threads) {
  const wanted = threads ?? self.navigator?.hardwareConcurrency ?? 1;
  let note = null;
  if (backend === "cpu" && wanted > 1) {
    if (self.crossOriginIsolated) {
      try {
        const url = new URL(THREADED_RUNTIME, import.meta.url).href;
        const threaded = await import(/* @vite-ignore */ /* webpackIgnore: true */ url);
        ({ memory } = await threaded.default());
        // Each pool worker fetches and instantiates the module itself: seconds, not minutes.
        await within(POOL_START_MS, threaded.startThreads(wanted), "its workers did not start in time");
        runtime = threaded;
        return { note };
      } catch (error) {
        note = `the threaded runtime did not start (${error?.message ?? error}): one thread`;
      }
    } else {
      note = "the page is not cross-origin isolated (COOP/COEP headers), which threads need: one thread";
    }
  }
  ({ memory } = await initSingle());
  runtime = single;
  if (backend === "webgpu" && !single.hasWebgpu()) {
    throw fail("WEBGPU_UNAVAILABLE", "this build of the local runtime has no WebGPU backend");
  }
  return { note };
}

/** WebGPU's own flag (`GPUAdapterInfo.isFallbackAdapter`, earlier on the adapter), or the
 * names the software rasterisers give themselves where a browser does not set it. */
function isSoftwareAdapter(gpu, description) {
  if (gpu.info?.isFallbackAdapter === true || gpu.isFallbackAdapter === true) return true;
  return /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|\bwarp\b/i.test(description);
}

/** The folder's files: from Cache Storage when a previous load stored them all, they still
 * match the server's (asked with HEAD requests: a folder updated in place is fetched again) and
 * their bytes still have the sizes and hashes stored with them; otherwise from the network. */
async function download(id, modelUrl, signal) {
  const cache = self.caches && self.crypto?.subtle ? await self.caches.open(CACHE).catch(() => null) : null;
  let refused = null;
  if (cache) {
    const manifest = await readManifest(cache, modelUrl);
    if (manifest && (await unchanged(manifest, modelUrl, signal))) {
      const cached = await fromCache(cache, modelUrl, manifest);
      if (cached.bytes) {
        const total = Object.values(cached.bytes).reduce((sum, b) => sum + b.byteLength, 0);
        progress(id, "download", total, total);
        return { bytes: cached.bytes, fromCache: true, cacheRefused: null };
      }
      // A set that does not belong together (a file lost, cut or replaced under the manifest):
      // never loaded; fetched again below, and the page is told why.
      refused = cached.refused;
    }
    await forget(cache, modelUrl);
  }
  const sizes = new Map();
  const received = new Map();
  const report = () => {
    const sum = (m) => [...m.values()].reduce((a, b) => a + b, 0);
    progress(id, "download", sum(received), Math.max(sum(sizes), sum(received)));
  };
  const fetchFile = async (key, name, required) => {
    const url = new URL(name, modelUrl).href;
    let response;
    try {
      // Cache Storage is the cache: the HTTP cache would hold a second copy that clearCache()
      // cannot reach. Without Cache Storage, the HTTP cache revalidates (the proxy's ETag).
      response = await fetch(url, { signal, credentials: "omit", cache: cache ? "no-store" : "no-cache" });
    } catch (error) {
      if (signal.aborted) throw fail("ABORTED", "the download was cancelled");
      throw fail("MODEL_FETCH", `${url}: ${error.message} (network failure, or the server does not allow this page: CORS)`);
    }
    if (!response.ok) {
      if (response.status === 404 && !required) return null;
      const code = response.status === 404 && key !== "config" ? "MODEL_INVALID" : "MODEL_FETCH";
      throw fail(code, `${url}: HTTP ${response.status}${code === "MODEL_INVALID" ? ` (the folder has no ${name})` : ""}`);
    }
    const length = Number(response.headers.get("content-length")) || 0;
    sizes.set(key, length);
    const chunks = [];
    let got = 0;
    try {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        got += value.byteLength;
        received.set(key, got);
        report();
      }
    } catch (error) {
      if (signal.aborted) throw fail("ABORTED", "the download was cancelled");
      throw fail("MODEL_FETCH", `${url}: the download broke off after ${got} bytes (${error.message})`);
    }
    if (length && got !== length) {
      throw fail("MODEL_INVALID", `${url}: ${got} of ${length} bytes arrived (truncated)`);
    }
    const bytes = new Uint8Array(got);
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.byteLength;
    }
    return { bytes, name, ...validators(response) };
  };
  // config.json first: a folder that is not there is one clear MODEL_FETCH, not five.
  const config = await fetchFile("config", REQUIRED.config, true);
  const rest = await Promise.all([
    ...Object.entries(REQUIRED)
      .filter(([key]) => key !== "config")
      .map(async ([key, name]) => [key, await fetchFile(key, name, true)]),
    ...Object.entries(OPTIONAL).map(async ([key, names]) => {
      for (const name of names) {
        const file = await fetchFile(`${key}:${name}`, name, false);
        if (file) return [key, file];
      }
      return [key, null];
    }),
  ]);
  const files = { config };
  for (const [key, file] of rest) if (file) files[key] = file;
  const bytes = Object.fromEntries(Object.entries(files).map(([key, file]) => [key, file.bytes]));
  return { bytes, fromCache: false, cacheRefused: refused, files };
}

/** What tells one version of a file from the next: the server's validators, if it sends any
 * (cross-origin, an ETag only where the server exposes it). */
const validators = (response) => ({
  etag: response.headers.get("etag"),
  lastModified: response.headers.get("last-modified"),
});

const manifestUrl = (modelUrl) => new URL("florence2-web-manifest.json", modelUrl).href;

/** The manifest a complete load stored: each file's name, size, SHA-256 and validators. */
async function readManifest(cache, modelUrl) {
  const stored = await cache.match(manifestUrl(modelUrl));
  const manifest = stored ? await stored.json().catch(() => null) : null;
  const ok = manifest?.version === MANIFEST_VERSION && manifest.files && REQUIRED_KEYS.every((key) => manifest.files[key]);
  return ok ? manifest : null;
}

const MANIFEST_VERSION = 2;
const REQUIRED_KEYS = Object.keys(REQUIRED);

/** Whether the server still has the files the manifest describes: a HEAD request each (no
 * body, no CORS preflight). Offline (the request fails), the cached set stands. */
async function unchanged(manifest, modelUrl, signal) {
  const same = await Promise.all(
    Object.values(manifest.files).map(async (file) => {
      let response;
      try {
        response = await fetch(new URL(file.name, modelUrl).href, { method: "HEAD", signal, credentials: "omit", cache: "no-store" });
      } catch {
        if (signal.aborted) throw fail("ABORTED", "the download was cancelled");
        return true;
      }
      if (!response.ok) return false;
      const now = validators(response);
      const length = Number(response.headers.get("content-length"));
      if (now.etag && file.etag) return now.etag === file.etag;
      if (now.lastModified && file.lastModified && now.lastModified !== file.lastModified) return false;
      return !length || length === file.size;
    }),
  );
  return same.every(Boolean);
}

/** The manifest's files out of Cache Storage, each checked against its size and hash: either
 * every one of them, or why the set was refused (nothing partial is ever used). */
async function fromCache(cache, modelUrl, manifest) {
  const bytes = {};
  for (const [key, file] of Object.entries(manifest.files)) {
    const hit = await cache.match(new URL(file.name, modelUrl).href);
    if (!hit) return { refused: `MODEL_INVALID: ${file.name} is missing from the cache` };
    const body = new Uint8Array(await hit.arrayBuffer());
    if (body.byteLength !== file.size) {
      return { refused: `MODEL_INVALID: the cached ${file.name} has ${body.byteLength} bytes, its manifest ${file.size}` };
    }
    if ((await sha256(body)) !== file.sha256) {
      return { refused: `MODEL_INVALID: the cached ${file.name} is not the file its manifest describes (SHA-256 differs)` };
    }
    bytes[key] = body;
  }
  return { bytes };
}

async function sha256(bytes) {
  const digest = new Uint8Array(await self.crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Drops a folder's manifest (first: without it nothing else counts) and its files. */
async function forget(cache, modelUrl) {
  await cache.delete(manifestUrl(modelUrl));
  for (const request of await cache.keys()) {
    if (request.url.startsWith(modelUrl)) await cache.delete(request);
  }
}

/** Stores a download's files, one at a time; returns the manifest that would make them count
 * (null without Cache Storage). Files without a manifest are never used, and go at the next
 * load of their folder. */
async function store(modelUrl, files) {
  const cache = self.caches && self.crypto?.subtle ? await self.caches.open(CACHE) : null;
  if (!cache) return null;
  const manifest = { version: MANIFEST_VERSION, files: {} };
  for (const [key, file] of Object.entries(files)) {
    const { bytes, name, etag, lastModified } = file;
    manifest.files[key] = { name, size: bytes.byteLength, sha256: await sha256(bytes), etag, lastModified };
    await cache.put(new URL(name, modelUrl).href, new Response(bytes, { headers: { "content-length": String(bytes.byteLength) } }));
  }
  return manifest;
}

/** Writes the manifest of stored files (after a good load only). */
async function commit(modelUrl, manifest) {
  const cache = await self.caches.open(CACHE);
  await cache.put(manifestUrl(modelUrl), new Response(JSON.stringify(manifest), { headers: { "content-type": "application/json" } }));
}

async function run(id, { image, options, stream }) {
  if (!model) throw fail("MODEL_INVALID", "no model is loaded in this worker");
  // A macrotask between steps lets an abort message in; true stops the run.
  const between = () => new Promise((resolve) => setTimeout(() => resolve(aborted.has(id)), 0));
  // The text so far, after every token, only when the page asked for it (no decoding otherwise).
  const onToken = stream ? (text, tokens) => self.postMessage({ id, token: { text, tokens } }) : undefined;
  const answer = JSON.parse(await model.run(new Uint8Array(image), JSON.stringify(options), between, onToken));
  // wasm memory only grows: after a run, this is the runtime's peak so far.
  answer.wasmMemoryBytes = memory?.buffer.byteLength ?? 0;
  return answer;
}
