// Types of `Florence2Local` (local/js/index.js).
import type { Florence2Result, Region, TaskToken } from "../florence2.js";

export interface LocalProgress {
  phase: "download" | "compile" | "load" | "warmup";
  /** Bytes (download, load) or steps (compile, warmup) done so far. */
  loaded: number;
  /** The total when known, else what has been seen so far. */
  total: number;
}

export interface LocalLoadOptions {
  /** A folder URL: config.json, model.safetensors, tokenizer.json (+ generation_config.json,
   * preprocessor_config.json / processor_config.json when present). */
  modelUrl: string;
  /** "auto" (default): WebGPU when the browser has a hardware adapter, else the CPU (a
   * software adapter such as SwiftShader is ~100x slower than the CPU backend); "webgpu" takes
   * any adapter. */
  backend?: "auto" | "webgpu" | "cpu";
  /** Threads for the CPU backend (default: `navigator.hardwareConcurrency`). More than one
   * needs a cross-origin isolated page (`crossOriginIsolated`: COOP `same-origin` and COEP
   * `require-corp` headers); elsewhere the CPU runs on the worker's one thread. */
  threads?: number;
  onProgress?: (progress: LocalProgress) => void;
  signal?: AbortSignal;
}

export interface LocalInfo {
  backend: "webgpu" | "cpu";
  /** The WebGPU adapter found (vendor, architecture, device, description); on the CPU after
   * "auto" passed a software adapter by, its name and that reason; null when none was asked
   * for or found. */
  adapter: string | null;
  /** The threads the CPU backend runs on (1 on WebGPU, or without cross-origin isolation). */
  threads: number;
  /** Why the CPU backend got fewer threads than asked for (the page is not cross-origin
   * isolated, or the threaded runtime did not start); null otherwise. */
  threadsNote: string | null;
  /** How the weights are held: "f32", or the quantization scheme of a folder written by
   * `florence2 quantize` ("q8", "q4", "mixed"), which stays quantized in memory. */
  dtype: "f32" | "q8" | "q4" | "mixed";
  parameters: number;
  /** The weights' bytes in memory (wasm memory or GPU buffers). */
  weightBytes: number;
  loadMs: number;
  /** The files came from Cache Storage: the server still has the same ones (asked with HEAD
   * requests; offline, the cached set stands) and each matched its stored size and SHA-256. */
  fromCache: boolean;
  /** Why a cached set was not used and the folder was fetched again (`"MODEL_INVALID: …"`: a
   * file missing, cut, or not the one the set's manifest describes); null otherwise. */
  cacheRefused: string | null;
  /** The runtime's wasm memory after the load (it only grows). */
  wasmMemoryBytes: number;
}

export interface LocalRunOptions {
  image: Uint8Array | ArrayBuffer | Blob;
  task: TaskToken | "<REGION_TO_OCR>";
  /** Free text, or four `<loc_…>` tokens for region tasks. */
  text?: string;
  /** Region tasks: pixels of the image (as `regionToLoc` takes them), instead of `text`. */
  region?: Region;
  /** Default: the checkpoint's generation config. */
  beams?: number;
  maxNewTokens?: number;
  /** The end token is held back until this many tokens are new (transformers'
   * `min_new_tokens`; default 0): a benchmark's fixed token count. */
  minNewTokens?: number;
  noRepeatNgramSize?: number;
  signal?: AbortSignal;
  /** Called after every generated token, from the worker, with the answer's text so far
   * (post-processed as `result.text` is; beams: the best hypothesis so far) and how many
   * tokens have been generated. The final result is the same with or without it. */
  onToken?: (token: LocalToken) => void;
}

export interface LocalToken {
  /** The decoded text so far; after the last token, the result's `text`. */
  text: string;
  /** Tokens generated so far. */
  tokens: number;
}

/** Where a run's time went, in ms of the worker's clock. */
export interface LocalTimings {
  /** Decoding the picture and the vision tower; 0 when the picture was reused. */
  visionMs: number;
  /** The prompt and the encoder. */
  encoderMs: number;
  /** The decoding loop divided by the tokens generated. */
  decoderMsPerToken: number;
  /** Tokens generated. */
  tokens: number;
}

export interface LocalRunOutput {
  /** The same result JSON as `Florence2Client.run`, with `source: "local"`. */
  result: Florence2Result;
  overlay: null;
  /** The generated token ids, decoder start token first. */
  generatedIds: number[];
  /** Those ids decoded with special tokens (what the post-processor read). */
  decoded: string;
  /** Whether the picture was the previous run's (the same bytes): its features were reused,
   * with no decoding and no vision pass. */
  imageReused: boolean;
  timings: LocalTimings;
  /** The runtime's wasm memory after this run: its peak so far (wasm memory only grows). */
  wasmMemoryBytes: number;
}

export declare class Florence2Local {
  private constructor();
  static load(options: LocalLoadOptions): Promise<Florence2Local>;
  readonly info: LocalInfo;
  run(options: LocalRunOptions): Promise<LocalRunOutput>;
  dispose(): void;
  static clearCache(modelUrl?: string): Promise<void>;
}
