import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  isConsoleRequest,
  loadConsoleSite,
  serveConsole,
  sitePath,
} from "../../../local/platform/console-site.ts";
import { createGateway } from "../../../local/platform/gateway.ts";

type Envelope = { error: { code: string } };

/**
 * The local platform's console serving, in front of the real gateway: the console's files for GET
 * outside /v4, the gateway's envelopes for everything else, exactly as before.
 */
describe("the console beside the gateway", () => {
  const encode = (text: string) => new TextEncoder().encode(text);
  const site = {
    files: new Map<string, Uint8Array>([
      ["index.html", encode("<!doctype html><title>console</title>")],
      ["assets/app-ABC.js", encode("console.log(1)")],
      ["assets/app-ABC.css", encode("body{}")],
      ["config.json", encode('{"apiBaseUrl":"/v4","chatBaseUrl":"/v4"}')],
    ]),
  };
  let origin = "";
  const server = createGateway(
    async () => ({
      principalId: "t",
      policyDocument: { Version: "2012-10-17", Statement: [] },
      context: { tenantId: "tn_1" },
    }),
    [
      {
        prefix: "/v4/files",
        handler: async () => ({
          statusCode: 200,
          headers: { "content-type": "application/json" },
          body: '{"object":"list","data":[]}',
        }),
      },
    ],
  );

  beforeAll(async () => {
    serveConsole(server, site, { apiOrigin: () => origin, uploadOrigin: "http://127.0.0.1:4566" });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("serves index.html at / and for client-side routes, with security headers", async () => {
    for (const path of ["/", "/files", "/jobs/ftjob-1"]) {
      const response = await fetch(`${origin}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(response.headers.get("cache-control")).toBe("no-cache");
      expect(response.headers.get("content-security-policy")).toContain(
        "connect-src 'self' http://127.0.0.1:4566",
      );
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(await response.text()).toContain("<title>console</title>");
    }
  });

  it("serves assets with their types and long caching, and 404 for an asset that is not there", async () => {
    const js = await fetch(`${origin}/assets/app-ABC.js`);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toContain("immutable");
    expect(await js.text()).toBe("console.log(1)");
    expect((await fetch(`${origin}/assets/app-ABC.css`)).headers.get("content-type")).toBe(
      "text/css; charset=utf-8",
    );
    expect((await fetch(`${origin}/assets/app-GONE.js`)).status).toBe(404);
    const head = await fetch(`${origin}/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("answers config.json with this origin's /v4 for both the API and chat", async () => {
    expect(await (await fetch(`${origin}/config.json`)).json()).toEqual({
      apiBaseUrl: `${origin}/v4`,
      chatBaseUrl: `${origin}/v4`,
    });
  });

  it("never serves a file outside the site: traversal names no file", async () => {
    expect(sitePath("/../../etc/passwd")).toBeUndefined();
    expect(sitePath("/assets/%2e%2e/%2e%2e/package.json")).toBeUndefined();
    expect(sitePath("/assets/..%5c..%5cpackage.json")).toBeUndefined();
    expect(sitePath("/%E0%A4%A")).toBeUndefined();
    expect(sitePath("/")).toBe("index.html");
    expect(sitePath("//assets//app-ABC.js")).toBe("assets/app-ABC.js");
    const response = await fetch(`${origin}/assets/%2e%2e/%2e%2e/package.json`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain('"name"');
  });

  it("leaves /v4 and other methods to the gateway: its 404 envelope and its routes, unchanged", async () => {
    expect(isConsoleRequest("GET", "/v4/files")).toBe(false);
    expect(isConsoleRequest("GET", "/v4")).toBe(false);
    expect(isConsoleRequest("GET", "/v4x")).toBe(true);
    expect(isConsoleRequest("POST", "/")).toBe(false);

    const unknown = await fetch(`${origin}/v4/nothing`, { headers: { authorization: "Bearer k" } });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as Envelope).error.code).toBe("unknown_url");
    const post = await fetch(`${origin}/`, { method: "POST" });
    expect(post.status).toBe(404);
    expect(((await post.json()) as Envelope).error.code).toBe("unknown_url");
    const files = await fetch(`${origin}/v4/files`, { headers: { authorization: "Bearer k" } });
    expect(await files.json()).toEqual({ object: "list", data: [] });
  });
});

describe("loadConsoleSite", () => {
  it("reads a built folder, nested assets included, and refuses one without index.html", async () => {
    const dir = mkdtempSync(join(tmpdir(), "console-site-"));
    try {
      mkdirSync(join(dir, "assets"));
      writeFileSync(join(dir, "assets", "app-X.js"), "x");
      await expect(loadConsoleSite(dir)).rejects.toThrow(/no index.html/);
      writeFileSync(join(dir, "index.html"), "<!doctype html>");
      const site = await loadConsoleSite(dir);
      expect([...site.files.keys()].sort()).toEqual(["assets/app-X.js", "index.html"]);
      expect(site.refresh).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("builds web/console in memory when asked to, with a refresh for later source changes", async () => {
    const site = await loadConsoleSite(true);
    expect(site.files.has("index.html")).toBe(true);
    expect([...site.files.keys()].some((path) => /^assets\/app-.+\.js$/.test(path))).toBe(true);
    await site.refresh!();
  });
});
