import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveTenantTarget } from "../../../local/cli/config.ts";
import { main } from "../../../local/cli/ftctl.ts";

const dir = mkdtempSync(join(tmpdir(), "ftctl-config-"));
const devFile = join(dir, "dev-tenant.json");
writeFileSync(devFile, JSON.stringify({ tenantId: "tn_dev", apiKey: "ftk_dev" }));
const missing = join(dir, "none.json");

describe("resolveTenantTarget", () => {
  it("flags, then FT_*, then OPENAI_*, then the local platform's dev tenant", () => {
    const env = {
      FT_BASE_URL: "https://ft.example/v4/",
      FT_API_KEY: "ftk_ft",
      OPENAI_BASE_URL: "https://openai.example/v4",
      OPENAI_API_KEY: "ftk_openai",
    };
    expect(resolveTenantTarget({ baseUrl: "http://h:1/v4", apiKey: "k" }, env, devFile)).toMatchObject({
      baseUrl: "http://h:1/v4",
      apiKey: "k",
    });
    expect(resolveTenantTarget({}, env, devFile)).toMatchObject({
      baseUrl: "https://ft.example/v4",
      apiKey: "ftk_ft",
    });
    expect(
      resolveTenantTarget({}, { OPENAI_BASE_URL: env.OPENAI_BASE_URL, OPENAI_API_KEY: "o" }, devFile),
    ).toMatchObject({ baseUrl: "https://openai.example/v4", apiKey: "o" });
    expect(resolveTenantTarget({}, { PORT: "9999" }, devFile)).toMatchObject({
      baseUrl: "http://localhost:9999/v4",
      apiKey: "ftk_dev",
    });
  });

  it("never sends the dev tenant's key off the machine; clear errors when nothing is configured", () => {
    expect(() => resolveTenantTarget({ baseUrl: "https://remote.example/v4" }, {}, devFile)).toThrow(
      /no API key for https:\/\/remote.example\/v4: pass --api-key/,
    );
    expect(() => resolveTenantTarget({}, {}, missing)).toThrow(
      /no platform configured: pass --base-url and --api-key, set FT_BASE_URL and FT_API_KEY.*npm start/,
    );
    expect(() => resolveTenantTarget({ baseUrl: "localhost:8787" }, {}, devFile)).toThrow(
      /not an http\(s\) URL/,
    );
  });
});

describe("ftctl tenant commands: usage and reachability", () => {
  const collect = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(
      argv,
      (l) => out.push(l),
      (l) => err.push(l),
      { env, devTenantFile: missing },
    );
    return { code, out: out.join("\n"), err: err.join("\n") };
  };

  it("help and usage errors", async () => {
    const help = await collect(["--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toContain("ftctl files upload <path> [--wait]");
    expect(help.out).toContain("ftctl admin tenants create <name>");
    expect((await collect(["jobs", "create", "--help"])).out).toContain("--learning-rate-multiplier");
    expect((await collect(["files", "--help"])).code).toBe(0);
    const noVerb = await collect(["files"]);
    expect(noVerb.code).toBe(2);
    expect(noVerb.err).toContain("'files' needs a command");
    const unknown = await collect(["jobs", "explode"]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("unknown command 'jobs explode'");
  });

  it("nothing configured exits 2 with what to set", async () => {
    const result = await collect(["files", "list"]);
    expect(result.code).toBe(2);
    expect(result.err).toContain("no platform configured");
  });

  it("an unreachable endpoint is one clear line, exit 1", async () => {
    // A port that was free a moment ago: nothing listens on it.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const result = await collect(["models", "list"], {
      FT_BASE_URL: `http://127.0.0.1:${port}/v4`,
      FT_API_KEY: "k",
    });
    expect(result.code).toBe(1);
    expect(result.err).toBe(
      `error: cannot reach http://127.0.0.1:${port}/v4 (ECONNREFUSED). Is the local platform running ('npm start')?`,
    );
  });
});
