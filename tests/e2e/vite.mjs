// The packed npm package in a fresh Vite app, built and run in headless Chromium: the worker and
// the local runtime's wasm must come through the bundler (`new Worker(new URL(…,
// import.meta.url))`) with no configuration, and Florence2Local must answer from the built
// app. The app's dist is served by florence2-proxy (--static) with the model folder (--models).
// `cargo xtask test` sets the variables.
import { execFileSync, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "../../tools/node/node_modules/playwright-core/index.mjs";
import { need } from "./env.mjs";

const PKG = need("FLORENCE2_PKG");
const PROXY = need("FLORENCE2_PROXY_BIN");
const MODEL = need("FLORENCE2_E2E_MODEL");
const VITE = fileURLToPath(new URL("../../tools/node/node_modules/vite/bin/vite.js", import.meta.url));

const work = await mkdtemp(join(tmpdir(), "florence2-vite-"));
try {
  const tarball = execFileSync("npm", ["pack", "--silent", "--pack-destination", work], { cwd: PKG, encoding: "utf8" }).trim().split("\n").pop();
  const app = join(work, "app");
  await mkdir(app);
  await writeFile(join(app, "package.json"), JSON.stringify({ name: "vite-app", private: true, type: "module" }));
  // The tarball has no dependencies: installing it needs no registry.
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--offline", join(work, tarball)], { cwd: app, stdio: "inherit" });
  await writeFile(join(app, "index.html"), '<!doctype html><meta charset="utf-8"><title>vite app</title><script type="module" src="/main.js"></script>');
  await writeFile(
    join(app, "main.js"),
    `import init, { Florence2Local, TASKS } from "florence2-web";
window.check = async (modelUrl, image) => {
  await init();
  const local = await Florence2Local.load({ modelUrl, backend: "cpu" });
  const { result, generatedIds } = await local.run({ image: new Uint8Array(image), task: "<OD>", maxNewTokens: 8, beams: 1 });
  local.dispose();
  return { tasks: TASKS.length, backend: local.info.backend, source: result.source, task: result.task, ids: generatedIds.length,
           threads: local.info.threads, note: local.info.threadsNote, cores: navigator.hardwareConcurrency, isolated: crossOriginIsolated };
};
window.ready = true;
`,
  );
  execFileSync(process.execPath, [VITE, "build", "--logLevel", "warn"], { cwd: app, stdio: "inherit" });
  const assets = await readdir(join(app, "dist", "assets"));
  assert.ok(assets.some((f) => /^florence2_local_bg-.*\.wasm$/.test(f)), `the local runtime's wasm is not in the build: ${assets}`);
  assert.ok(assets.some((f) => /^worker-.*\.js$/.test(f)), `the worker is not in the build: ${assets}`);

  const models = join(work, "models");
  await mkdir(join(models, "tiny"), { recursive: true });
  for (const file of ["config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "processor_config.json"]) {
    await cp(join(MODEL, file), join(models, "tiny", file)).catch((e) => {
      if (e.code !== "ENOENT") throw e;
    });
  }
  const proxy = spawn(PROXY, ["--listen", "127.0.0.1:0", "--static", join(app, "dist"), "--models", models], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const url = await new Promise((resolve, reject) => {
      proxy.once("exit", (code) => reject(new Error(`florence2-proxy exited (${code})`)));
      proxy.stdout.on("data", (chunk) => {
        const match = /listening on (http:\/\/\S+)/.exec(String(chunk));
        if (match) resolve(match[1]);
      });
    });
    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-background-networking", "--no-first-run"] });
    try {
      const page = await browser.newPage();
      const problems = [];
      page.on("pageerror", (e) => problems.push(e.message));
      page.on("console", (m) => m.type() === "error" && !m.text().includes("404") && problems.push(m.text()));
      await page.goto(`${url}/`);
      await page.waitForFunction(() => window.ready === true, null, { timeout: 30000 });
      const image = [...(await readFile(join(MODEL, "test_image.png")))];
      const check = () => page.evaluate(([image]) => window.check("/models/tiny/", image).catch((e) => ({ error: `${e.code}: ${e.message}` })), [image]);
      const out = await check();
      // florence2-proxy serves the app cross-origin isolated, but the bundle has no threaded
      // runtime (bundlers leave it alone): one thread, and the note says why.
      assert.deepEqual(out, { tasks: 14, backend: "cpu", source: "local", task: "<OD>", ids: out.ids, threads: 1, note: out.note, cores: out.cores, isolated: true });
      assert.ok(out.ids >= 2 && out.ids <= 9, JSON.stringify(out));
      assert.match(out.note ?? "", /threaded runtime did not start/, JSON.stringify(out));
      // pkg/README's recipe: the package's local/threads/ beside the bundled worker.
      await cp(join(app, "node_modules/florence2-web/local/threads"), join(app, "dist/assets/threads"), { recursive: true });
      await page.reload();
      await page.waitForFunction(() => window.ready === true, null, { timeout: 30000 });
      const threaded = await check();
      assert.deepEqual(threaded, { ...out, threads: out.cores, note: null });
      assert.deepEqual(problems, []);
      console.log(`npm package in a fresh Vite app: worker and local runtime bundled (${assets.length} assets), Florence2Local answered in Chromium on 1 thread, and on ${threaded.threads} with local/threads/ served beside it`);
    } finally {
      await browser.close();
    }
  } finally {
    proxy.kill();
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
