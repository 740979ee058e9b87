// `Florence2Local`: Florence-2 in this browser, on WebGPU or the CPU, with no server. The page
// side of the package's Web Worker (./worker.js), which fetches the local runtime's wasm only
// when a model is loaded; the remote-only client never loads any of it.

const CACHE = "florence2-web-models";
const BACKENDS = ["auto", "webgpu", "cpu"];
/** More Web Workers than any machine has cores for is a mistake, not a wish. */
const MAX_THREADS = 256;

function florence2Error(code, message) {
  const error = new Error(message);
  error.name = "Florence2Error";
  error.code = code;
  return error;
}

const aborted = (what) => florence2Error("ABORTED", `the ${what} was cancelled`);

/** A folder URL, absolute, ending in "/". */
function folderUrl(modelUrl) {
  if (typeof modelUrl !== "string" || modelUrl.trim() === "") {
    throw florence2Error("BAD_OPTION", "modelUrl must be the URL of a model folder");
  }
  let url;
  try {
    url = new URL(modelUrl, globalThis.location?.href);
  } catch {
    throw florence2Error("BAD_OPTION", `modelUrl is not a URL: ${modelUrl}`);
  }
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  url.search = "";
  url.hash = "";
  return url.href;
}

async function imageBytes(image) {
  if (image instanceof Uint8Array) return image.slice();
  if (image instanceof ArrayBuffer) return new Uint8Array(image.slice(0));
  if (typeof Blob !== "undefined" && image instanceof Blob) return new Uint8Array(await image.arrayBuffer());
  throw florence2Error("IMAGE_DECODE", "image must be a Uint8Array, an ArrayBuffer or a Blob");
}

/** One worker and the calls in flight on it. */
class Channel {
  constructor(worker) {
    this.worker = worker;
    this.next = 1;
    this.pending = new Map();
    worker.onmessage = ({ data }) => {
      const call = this.pending.get(data.id);
      if (!call) return;
      if (data.progress) {
        call.onProgress?.(data.progress);
        return;
      }
      if (data.token) {
        // A throwing callback is the page's bug; it must not end the run.
        try {
          call.onToken?.(data.token);
        } catch (error) {
          queueMicrotask(() => {
            throw error;
          });
        }
        return;
      }
      this.pending.delete(data.id);
      if (data.ok) call.resolve(data.value);
      else call.reject(florence2Error(data.error.code, data.error.message));
    };
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.failAll(florence2Error("MODEL_INVALID", `the local runtime failed to start: ${event.message ?? "worker error"}`));
    };
  }

  call(message, { signal, onProgress, onToken, what }, transfer = []) {
    if (signal?.aborted) return Promise.reject(aborted(what));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.worker.postMessage({ op: "abort", target: id });
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = (settle) => (value) => {
        signal?.removeEventListener("abort", onAbort);
        settle(value);
      };
      this.pending.set(id, { resolve: done(resolve), reject: done(reject), onProgress, onToken });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  failAll(error) {
    for (const call of this.pending.values()) call.reject(error);
    this.pending.clear();
  }
}

export class Florence2Local {
  #channel;
  #info;

  constructor(channel, info) {
    this.#channel = channel;
    this.#info = Object.freeze(info);
  }

  /**
   * Loads a model folder (config.json, model.safetensors, tokenizer.json, and
   * generation_config.json / preprocessor_config.json when present) into a new worker.
   */
  static async load({ modelUrl, backend = "auto", threads, onProgress, signal } = {}) {
    const url = folderUrl(modelUrl);
    if (!BACKENDS.includes(backend)) {
      throw florence2Error("BAD_OPTION", `backend must be one of ${BACKENDS.join(", ")}, not ${backend}`);
    }
    if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1 && threads <= MAX_THREADS)) {
      throw florence2Error("BAD_OPTION", `threads must be a whole number from 1 to ${MAX_THREADS}, not ${threads}`);
    }
    if (signal?.aborted) throw aborted("load");
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    const channel = new Channel(worker);
    // A load is cancelled at once, wherever it is: the worker (and its memory) just goes.
    const cancel = () => {
      channel.failAll(aborted("load"));
      worker.terminate();
    };
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      const info = await channel.call({ op: "load", modelUrl: url, backend, threads }, { onProgress, what: "load" });
      return new Florence2Local(channel, info);
    } catch (error) {
      worker.terminate();
      throw error;
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
  }

  /** `{ backend, adapter, threads, threadsNote, dtype, parameters, weightBytes, loadMs, fromCache, cacheRefused, wasmMemoryBytes }` */
  get info() {
    return this.#info;
  }

  /**
   * Runs one prompt: `{ result, overlay: null, generatedIds, decoded, imageReused, timings,
   * wasmMemoryBytes }`. `onToken({ text, tokens })`, when given, is called after every generated
   * token with the text so far (beams: the best hypothesis so far).
   */
  async run({ image, task, text, region, beams, maxNewTokens, minNewTokens, noRepeatNgramSize, signal, onToken } = {}) {
    if (!this.#channel) throw florence2Error("BAD_OPTION", "this model was disposed: load it again");
    const bytes = await imageBytes(image);
    const options = { task, text, region, beams, maxNewTokens, minNewTokens, noRepeatNgramSize };
    for (const key of Object.keys(options)) if (options[key] === undefined || options[key] === null) delete options[key];
    if (onToken !== undefined && typeof onToken !== "function") {
      throw florence2Error("BAD_OPTION", "onToken must be a function");
    }
    const answer = await this.#channel.call(
      { op: "run", image: bytes.buffer, options, stream: Boolean(onToken) },
      { signal, onToken, what: "run" },
      [bytes.buffer],
    );
    return {
      result: answer.result,
      overlay: null,
      generatedIds: answer.generatedIds,
      decoded: answer.decoded,
      imageReused: answer.imageReused,
      timings: answer.timings,
      wasmMemoryBytes: answer.wasmMemoryBytes,
    };
  }

  /** Ends the worker and frees the model's memory; runs in flight end with ABORTED. */
  dispose() {
    if (!this.#channel) return;
    this.#channel.failAll(aborted("run"));
    this.#channel.worker.terminate();
    this.#channel = null;
  }

  /** Forgets the cached files of one model folder, or of all of them. */
  static async clearCache(modelUrl) {
    if (!globalThis.caches) return;
    if (modelUrl === undefined || modelUrl === null) {
      await caches.delete(CACHE);
      return;
    }
    const prefix = folderUrl(modelUrl);
    const cache = await caches.open(CACHE);
    for (const request of await cache.keys()) {
      if (request.url.startsWith(prefix)) await cache.delete(request);
    }
  }
}
