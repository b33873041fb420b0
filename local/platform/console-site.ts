import { readdirSync, readFileSync, statSync } from "node:fs";
import type { IncomingMessage, RequestListener, Server, ServerResponse } from "node:http";
import { join, relative } from "node:path";
import { PutBucketCorsCommand, type S3Client } from "@aws-sdk/client-s3";
import { bundleConsole, configJson, consoleSourcesMtime } from "../../scripts/build-console.ts";

/**
 * The console (web/console) served by the local platform beside the API, as CloudFront serves it in
 * AWS: GET and HEAD outside `/v4` answer with the built files, `index.html` for `/` and any path
 * that is not a file (a client-side route), and a `config.json` pointing at this same origin. Every
 * other request (all of `/v4`, and other methods anywhere) goes to the gateway unchanged, so its
 * 404 and 405 envelopes stay as they are.
 */
export interface ConsoleSite {
  /** Built files by path (`index.html`, `assets/app-….js`). */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /**
   * Brings `files` up to date before a page is served, when the site is built from the sources: a
   * change under web/console shows at the next reload, without restarting the platform.
   */
  readonly refresh?: () => Promise<void>;
}

/**
 * The site to serve: a folder made by `buildConsole` (`npm run build:console`), or, with `true`, a
 * fresh build of web/console in memory (about a second; never stale).
 */
export async function loadConsoleSite(source: true | string): Promise<ConsoleSite> {
  if (source === true) {
    const files = new Map((await bundleConsole()).files);
    let builtFrom = consoleSourcesMtime();
    let building: Promise<void> | undefined;
    const refresh = async () => {
      const newest = consoleSourcesMtime();
      if (newest <= builtFrom) return;
      building ??= bundleConsole()
        .then((bundle) => {
          // Older assets stay: a page loaded before the rebuild still finds its script.
          for (const [path, contents] of bundle.files) files.set(path, contents);
          builtFrom = newest;
        })
        .finally(() => {
          building = undefined;
        });
      await building;
    };
    return { files, refresh };
  }
  const files = new Map<string, Uint8Array>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(relative(source, path).split("\\").join("/"), readFileSync(path));
    }
  };
  walk(source);
  if (!files.has("index.html"))
    throw new Error(`${source} holds no index.html: build it with npm run build:console`);
  return { files };
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
  map: "application/json; charset=utf-8",
};

/** True for the requests the console answers: GET or HEAD of any path outside the API's `/v4`. */
export function isConsoleRequest(method: string | undefined, pathname: string): boolean {
  if (method !== "GET" && method !== "HEAD") return false;
  return pathname !== "/v4" && !pathname.startsWith("/v4/");
}

/**
 * The file a path names, or undefined: percent-decoded, `/`-separated segments, none empty, `.` or
 * `..` (a traversal attempt names no file, and falls back to index.html like any unknown route).
 */
export function sitePath(pathname: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  if (decoded.includes("\\") || decoded.includes("\0")) return undefined;
  const segments = decoded.split("/").filter((s) => s !== "");
  if (segments.some((s) => s === "." || s === "..")) return undefined;
  return segments.length ? segments.join("/") : "index.html";
}

/** A loopback Host header the browser used (`localhost:8787`, `127.0.0.1:41234`, `[::1]:8787`). */
function requestOrigin(req: IncomingMessage, fallback: string): string {
  const host = req.headers.host ?? "";
  return /^(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/.test(host) ? `http://${host}` : fallback;
}

/**
 * Security headers as the AWS distribution sends them (the CSP lets the page reach only its own
 * origin, plus the object store of presigned uploads, here LocalStack).
 */
function securityHeaders(uploadOrigin: string | undefined): Record<string, string> {
  const connect = ["'self'", ...(uploadOrigin ? [uploadOrigin] : [])].join(" ");
  return {
    "content-security-policy": `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src ${connect}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'`,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
  };
}

/**
 * Puts the console in front of the gateway's own request listener on the same server: console
 * requests are answered here, everything else reaches the gateway exactly as before.
 */
export function serveConsole(
  server: Server,
  site: ConsoleSite,
  options: { readonly apiOrigin: () => string; readonly uploadOrigin?: string },
): void {
  const gateway = server.listeners("request") as RequestListener[];
  server.removeAllListeners("request");
  const headers = securityHeaders(options.uploadOrigin);
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!isConsoleRequest(req.method, url.pathname)) {
      for (const listener of gateway) listener.call(server, req, res);
      return;
    }
    const path = sitePath(url.pathname);
    // Pages (not hashed assets) look at the sources first; a failed rebuild keeps the last build.
    const ready = path?.startsWith("assets/") || !site.refresh ? Promise.resolve() : site.refresh();
    ready.then(
      () => answer(req, res, path),
      () => answer(req, res, path),
    );
  });

  function answer(req: IncomingMessage, res: ServerResponse, path: string | undefined): void {
    let body: Uint8Array | undefined;
    let name = path ?? "";
    if (path === "config.json") {
      const api = `${requestOrigin(req, options.apiOrigin())}/v4`;
      body = new TextEncoder().encode(configJson({ apiBaseUrl: api, chatBaseUrl: api }));
    } else if (path !== undefined) body = site.files.get(path);
    if (!body) {
      // A missing asset is a 404; any other path is a client-side route: the app.
      if (path?.startsWith("assets/") || /\.[a-z0-9]{1,5}$/i.test(path ?? "")) {
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8", ...headers });
        res.end(req.method === "HEAD" ? undefined : "Not found\n");
        return;
      }
      name = "index.html";
      body = site.files.get(name)!;
    }
    const extension = name.slice(name.lastIndexOf(".") + 1);
    res.writeHead(200, {
      "content-type": CONTENT_TYPES[extension] ?? "application/octet-stream",
      "content-length": String(body.length),
      // Hashed names never change content; the page and its configuration are checked every time.
      "cache-control": name.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-cache",
      ...headers,
    });
    res.end(req.method === "HEAD" ? undefined : body);
  }
}

/**
 * The datasets bucket's CORS rule as the CDK app sets it (infra/constructs/storage.ts): a browser may
 * PUT to a presigned upload URL from any origin, the signature being the credential. The console's
 * large uploads go that way, straight from the page to the object store.
 */
export async function allowBrowserUploads(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(
    new PutBucketCorsCommand({
      Bucket: bucket,
      CORSConfiguration: {
        CORSRules: [
          { AllowedMethods: ["PUT"], AllowedOrigins: ["*"], AllowedHeaders: ["*"], MaxAgeSeconds: 3000 },
        ],
      },
    }),
  );
}
