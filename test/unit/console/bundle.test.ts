import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { buildConsole } from "../../../scripts/build-console.ts";

/** The budget: all of the console's JavaScript, gzipped. */
const JS_BUDGET_GZIP_BYTES = 250 * 1024;

describe("the console build", () => {
  const outDir = mkdtempSync(join(tmpdir(), "console-build-"));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it("writes index.html, config.json and hashed assets, and keeps all JavaScript within 250 KB gzipped", async () => {
    const bundle = await buildConsole(outDir);
    const assets = readdirSync(join(outDir, "assets"));
    const js = assets.filter((name) => name.endsWith(".js"));
    const css = assets.filter((name) => name.endsWith(".css"));
    expect(js).toHaveLength(1);
    expect(css).toHaveLength(1);
    expect(js[0]).toMatch(/^app-[A-Z0-9]{8}\.js$/);

    const html = readFileSync(join(outDir, "index.html"), "utf8");
    expect(html).toContain(`src="/assets/${js[0]}"`);
    expect(html).toContain(`href="/assets/${css[0]}"`);
    expect(JSON.parse(readFileSync(join(outDir, "config.json"), "utf8"))).toEqual({
      apiBaseUrl: "/v4",
      chatBaseUrl: "/v4",
    });

    // Measured from the files on disk, not only the build's own count.
    const gzipped = js.reduce(
      (sum, name) => sum + gzipSync(readFileSync(join(outDir, "assets", name)), { level: 9 }).length,
      0,
    );
    console.log(
      `[console] JS ${(bundle.jsBytes / 1024).toFixed(1)} KB, ${(gzipped / 1024).toFixed(1)} KB gzipped (budget 250 KB); CSS ${(bundle.cssBytes / 1024).toFixed(1)} KB`,
    );
    expect(gzipped).toBe(bundle.jsGzipBytes);
    expect(gzipped).toBeLessThanOrEqual(JS_BUDGET_GZIP_BYTES);
  });

  it("loads nothing from another origin: no absolute URL in the page, the script or the styles", async () => {
    const bundle = await buildConsole(outDir);
    const html = readFileSync(join(outDir, "index.html"), "utf8");
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    for (const [path, contents] of bundle.files) {
      if (!/\.(css|html)$/.test(path)) continue;
      expect(Buffer.from(contents).toString("utf8"), path).not.toMatch(/url\(\s*["']?(https?:)?\/\//);
      expect(Buffer.from(contents).toString("utf8"), path).not.toMatch(/@import/);
    }
    const script = Buffer.from([...bundle.files].find(([path]) => path.endsWith(".js"))![1]).toString("utf8");
    expect(script).not.toMatch(/import\s*\(?\s*["']https?:/);
  });
});
