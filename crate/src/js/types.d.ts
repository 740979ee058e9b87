/** Stable error codes of `Florence2Error.code`. */
export type ErrorCode =
  | "UNKNOWN_TASK" | "TEXT_REQUIRED" | "TEXT_NOT_ALLOWED" | "TEXT_INVALID" | "BAD_REGION"
  | "IMAGE_DECODE" | "IMAGE_TOO_LARGE" | "IMAGE_BUDGET"
  | "ZIP_INVALID" | "ZIP_TOO_LARGE" | "RESPONSE_INVALID" | "POST_PROCESS" | "BAD_OPTION"
  | "UPSTREAM" | "UNAUTHORIZED" | "RATE_LIMITED" | "NETWORK" | "TIMEOUT" | "ABORTED"
  | "MODEL_FETCH" | "MODEL_INVALID" | "WEBGPU_UNAVAILABLE" | "WASM_SIMD_UNAVAILABLE" | "OUT_OF_MEMORY";

/** Every error thrown or rejected by this package. */
export interface Florence2Error extends Error {
  name: "Florence2Error";
  code: ErrorCode;
  /** HTTP status of an upstream answer, when there was one. */
  status?: number;
  /** Seconds to wait before trying again (rate limits). */
  retryAfterSecs?: number;
}

export type TaskToken =
  | "<CAPTION>" | "<DETAILED_CAPTION>" | "<MORE_DETAILED_CAPTION>" | "<OD>" | "<DENSE_REGION_CAPTION>"
  | "<REGION_PROPOSAL>" | "<CAPTION_TO_PHRASE_GROUNDING>" | "<REFERRING_EXPRESSION_SEGMENTATION>"
  | "<REGION_TO_SEGMENTATION>" | "<OPEN_VOCABULARY_DETECTION>" | "<REGION_TO_CATEGORY>"
  | "<REGION_TO_DESCRIPTION>" | "<OCR>" | "<OCR_WITH_REGION>";

export interface TaskInfo {
  token: TaskToken | "<REGION_TO_OCR>";
  /** What follows the token: nothing, free text, or a region (`<loc_…>` ×4). */
  text: "none" | "required" | "region";
  label: string;
  group: "captions" | "detection" | "grounding" | "segmentation" | "regions" | "ocr";
  description: string;
}

export interface Region { x1: number; y1: number; x2: number; y2: number; }
export interface ImageSize { width: number; height: number; }

export interface PrepareImageOptions {
  /** Budget for the base64 string (default 180000). */
  maxBase64Chars?: number;
  /** Largest image accepted, in pixels (default 50 000 000). */
  maxPixels?: number;
}

export interface PreparedImage {
  /** `data:image/jpeg;base64,…`, within the budget. */
  dataUrl: string;
  /** The original image after EXIF orientation: the frame of the result's coordinates. */
  width: number;
  height: number;
  /** The image that is sent. */
  sentWidth: number;
  sentHeight: number;
  mime: string;
  bytes: Uint8Array;
  /** JPEG quality used, or null when the original file is sent unchanged. */
  quality: number | null;
  encodes: number;
}

export interface Entities {
  bboxes: [number, number, number, number][] | null;
  labels: string[] | null;
  quad_boxes: [number, number, number, number, number, number, number, number][] | null;
  /** Per instance, per ring: [x, y, x, y, …]. */
  polygons: number[][][] | null;
  bboxes_labels: string[] | null;
  polygons_labels: string[] | null;
}

/** The result of one run; the same JSON whether the endpoint or the local model answered. */
export interface Florence2Result {
  task: TaskToken | "<REGION_TO_OCR>";
  text: string;
  entities: Entities;
  image: ImageSize;
  source: "endpoint" | "local";
  usage: Record<string, unknown> | null;
}

export interface Overlay { name: string; mime: string; bytes: Uint8Array; }

export interface ParsedResponse { result: Florence2Result; overlay: Overlay | null; }

export interface ResponseImage extends ImageSize {
  /** Size of the copy that was sent, when smaller than the original. */
  sentWidth?: number;
  sentHeight?: number;
  /** The task asked; the answer must be for it. */
  task?: TaskToken;
}

export interface ClientOptions {
  /** The proxy, e.g. "http://127.0.0.1:8080"; default: this page's origin. */
  baseUrl?: string;
  /** Your own NVIDIA key, sent as X-Api-Key (for a proxy without one). */
  apiKey?: string;
  /** Per request (default 120000). */
  timeoutMs?: number;
  /** Retries of 429 answers (default 3). */
  maxRetries?: number;
  /** Longest Retry-After honoured (default 60000). */
  maxRetryWaitMs?: number;
  /** Larger images are uploaded as assets (default 180000). */
  maxBase64Chars?: number;
}

export type RunStage = "preparing" | "uploading" | "waiting" | "done";

export interface RunRequest {
  image: Uint8Array | ArrayBuffer | Blob;
  task: TaskToken | "<REGION_TO_OCR>";
  text?: string;
  signal?: AbortSignal;
  onProgress?: (event: { stage: RunStage }) => void;
  /** The body's `max_tokens`: the most new tokens the model may generate. */
  maxTokens?: number;
}

/** The proxy's `GET /healthz`. */
export interface ProxyHealth {
  ok: boolean;
  version: string;
  /** `local`: the proxy runs the model itself (no key; `<REGION_TO_OCR>` too). */
  backend: "nvidia" | "local";
  keyConfigured: boolean;
  requestKeysAccepted: boolean;
  upstream: { url: string; reachable: boolean; detail: string | null; checkedSecsAgo: number } | null;
  /** The local model: name, folder, parameters, layout, sizes, generation settings. */
  model?: Record<string, unknown>;
  /** The local model's queue: capacity, threads, waiting, running, served, times. */
  queue?: Record<string, unknown>;
}

export interface RunResult extends ParsedResponse {
  sent: { width: number; height: number; bytes: number; inline: boolean; quality: number | null };
  timings: { prepareMs: number; uploadMs: number; waitMs: number; parseMs: number };
}
