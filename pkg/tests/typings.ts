// Type-checked (tsc --noEmit) by `cargo xtask test`: every export, used as DESIGN.md shows.
import init, {
  buildContent, regionToLoc, prepareImage, parseResponse, Florence2Client, TASKS, tasks,
  type ErrorCode, type Florence2Error, type Florence2Result, type PreparedImage, type ParsedResponse,
  type RunResult, type TaskInfo, type Entities, type ProxyHealth,
} from "florence2-web";

export async function example(bytes: Uint8Array, zipBytes: Uint8Array, signal: AbortSignal): Promise<void> {
  await init();
  const first: TaskInfo = TASKS[0];
  const kind: "none" | "required" | "region" = first.text;
  const all: TaskInfo[] = tasks();
  const loc: string = regionToLoc({ x1: 1, y1: 2, x2: 3, y2: 4 }, { width: 10, height: 10 });
  const img: PreparedImage = await prepareImage(bytes, { maxBase64Chars: 180000 });
  const dims: number = img.width + img.height + img.sentWidth + img.sentHeight;
  const content: string = buildContent("<OD>", undefined, img.dataUrl);
  const parsed: ParsedResponse = parseResponse(zipBytes, { width: img.width, height: img.height });
  const result: Florence2Result = parsed.result;
  const entities: Entities = result.entities;
  const boxes: [number, number, number, number][] | null = entities.bboxes;
  const overlayMime: string | undefined = parsed.overlay?.mime;
  const client = new Florence2Client({ baseUrl: "http://127.0.0.1:8080" });
  const run: RunResult = await client.run({ image: bytes, task: "<OD>", text: undefined, signal });
  const inline: boolean = run.sent.inline;
  const assetId: string = await client.uploadAsset(bytes, "image/jpeg");
  const health: ProxyHealth = await client.health(signal);
  const offered: TaskInfo[] = await client.tasks();
  const local: boolean = health.backend === "local" && offered.some((t) => t.token === "<REGION_TO_OCR>");
  try {
    buildContent("<OD>", "not allowed", img.dataUrl);
  } catch (e) {
    const code: ErrorCode = (e as Florence2Error).code;
    console.log(code);
  }
  console.log(kind, all.length, loc, dims, content, boxes, overlayMime, inline, assetId, local);
}
