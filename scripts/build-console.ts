import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

/**
 * Builds the console (web/console, the 体验中心): one esbuild bundle of the Preact app with uPlot,
 * minified, with content-hashed names under `assets/`, the CSS beside it, `index.html` and a
 * `config.json` placeholder (the platform, or the CDK deployment, writes the real one). Nothing is
 * fetched at run time: everything the page loads is in this folder.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const CONSOLE_SOURCE_DIR = join(ROOT, "web/console");
export const DEFAULT_CONSOLE_OUT_DIR = join(ROOT, ".cache/console");

/** The console's `config.json`: where the REST API and chat answer, each ending in `/v4`. */
export interface ConsoleRuntimeConfig {
  readonly apiBaseUrl: string;
  readonly chatBaseUrl: string;
}

/** A built console, in memory: path (relative, `/`-separated) → bytes. */
export interface ConsoleBundle {
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Total bytes of the JavaScript files, and gzipped (level 9, as a CDN would serve them). */
  readonly jsBytes: number;
  readonly jsGzipBytes: number;
  readonly cssBytes: number;
}

/** Same-origin defaults: right wherever the API is served beside the console (the local platform). */
export const PLACEHOLDER_CONFIG: ConsoleRuntimeConfig = { apiBaseUrl: "/v4", chatBaseUrl: "/v4" };

export function configJson(config: ConsoleRuntimeConfig): string {
  return `${JSON.stringify({ apiBaseUrl: config.apiBaseUrl, chatBaseUrl: config.chatBaseUrl }, null, 2)}\n`;
}

/** Bundles the console without writing anything. */
export async function bundleConsole(): Promise<ConsoleBundle> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { app: join(CONSOLE_SOURCE_DIR, "src/main.tsx") },
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2022", "chrome111", "firefox111", "safari16.4"],
    platform: "browser",
    jsx: "automatic",
    jsxImportSource: "preact",
    tsconfig: join(CONSOLE_SOURCE_DIR, "tsconfig.json"),
    outdir: join(ROOT, ".cache/console-build"),
    entryNames: "assets/[name]-[hash]",
    assetNames: "assets/[name]-[hash]",
    write: false,
    metafile: false,
    legalComments: "eof",
    logLevel: "silent",
  });
  const files = new Map<string, Uint8Array>();
  let js = "";
  let css = "";
  let jsBytes = 0;
  let jsGzipBytes = 0;
  let cssBytes = 0;
  for (const output of result.outputFiles) {
    const path = relative(join(ROOT, ".cache/console-build"), output.path).split("\\").join("/");
    files.set(path, output.contents);
    if (path.endsWith(".js")) {
      js = path;
      jsBytes += output.contents.length;
      jsGzipBytes += gzipSync(output.contents, { level: 9 }).length;
    } else if (path.endsWith(".css")) {
      css = path;
      cssBytes += output.contents.length;
    }
  }
  if (!js || !css) throw new Error("the console build made no JavaScript or no CSS");
  files.set("index.html", new TextEncoder().encode(indexHtml(js, css)));
  files.set("config.json", new TextEncoder().encode(configJson(PLACEHOLDER_CONFIG)));
  return { files, jsBytes, jsGzipBytes, cssBytes };
}

function indexHtml(js: string, css: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>体验中心 · Experience center</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/${css}">
<script type="module" src="/${js}"></script>
</head>
<body>
<div id="app"><p class="boot">Loading… 加载中…</p></div>
<noscript>The console needs JavaScript. 控制台需要启用 JavaScript。</noscript>
</body>
</html>
`;
}

/**
 * Builds the console into `outDir` (emptied first): `index.html`, `config.json` and `assets/`. The
 * bundle, for its sizes.
 */
export async function buildConsole(outDir: string = DEFAULT_CONSOLE_OUT_DIR): Promise<ConsoleBundle> {
  const bundle = await bundleConsole();
  rmSync(outDir, { recursive: true, force: true });
  for (const [path, contents] of bundle.files) {
    const target = join(outDir, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, contents);
  }
  return bundle;
}

/** The newest modification time (ms) of the console's sources: a build older than it is stale. */
export function consoleSourcesMtime(): number {
  const walk = (dir: string): number =>
    readdirSync(dir).reduce((newest, entry) => {
      const path = join(dir, entry);
      const stat = statSync(path);
      return Math.max(newest, stat.isDirectory() ? walk(path) : stat.mtimeMs);
    }, 0);
  return Math.max(walk(CONSOLE_SOURCE_DIR), statSync(join(ROOT, "contract/catalog.json")).mtimeMs);
}

// `npm run build:console [-- outDir]`
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = resolve(process.argv[2] ?? DEFAULT_CONSOLE_OUT_DIR);
  const started = performance.now();
  const bundle = await buildConsole(outDir);
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  console.log(
    `console built in ${((performance.now() - started) / 1000).toFixed(1)} s: ${relative(process.cwd(), outDir) || "."}/ ` +
      `(JS ${kb(bundle.jsBytes)}, ${kb(bundle.jsGzipBytes)} gzipped; CSS ${kb(bundle.cssBytes)})`,
  );
}
