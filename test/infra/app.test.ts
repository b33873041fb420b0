import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CONFIG_ENV } from "../../infra/resources/definitions.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the CDK app as `cdk synth` does (CDK_OUTDIR, CDK_CONTEXT_JSON), without cdk-nag or bundling. */
function synthApp(context: Record<string, unknown>) {
  const outdir = mkdtempSync(join(tmpdir(), "ft-app-"));
  dirs.push(outdir);
  const run = spawnSync("npx", ["tsx", "infra/bin/app.ts"], {
    encoding: "utf8",
    env: {
      ...process.env,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({ ...context, nag: false, "aws:cdk:bundling-stacks": [] }),
    },
  });
  const template = () =>
    JSON.parse(readFileSync(join(outdir, "ft-platform.template.json"), "utf8")) as {
      Resources: Record<
        string,
        { Type: string; Properties: { Environment?: { Variables?: Record<string, string> } } }
      >;
    };
  return { status: run.status, stderr: run.stderr, template };
}

const OVERRIDE = { models: { "qwen2.5-7b-instruct": { maxSeqLength: 16_384 } } };

describe("the CDK app's catalog context", () => {
  it("reads the override from baseModelCatalogFile and hands it to the functions", () => {
    const file = join(mkdtempSync(join(tmpdir(), "ft-catalog-")), "catalog.json");
    dirs.push(file.replace(/\/catalog\.json$/, ""));
    writeFileSync(file, JSON.stringify(OVERRIDE));
    const { status, stderr, template } = synthApp({ baseModelCatalogFile: file });
    expect(status, stderr).toBe(0);
    const jobs = Object.entries(template().Resources).find(
      ([id, r]) => id.startsWith("ApiJobsApi") && r.Type === "AWS::Lambda::Function",
    )![1];
    expect(JSON.parse(jobs.Properties.Environment!.Variables![CONFIG_ENV.catalogOverride]!)).toEqual(
      OVERRIDE,
    );
  });

  it("refuses both context keys at once, and an override the catalog rejects", () => {
    const both = synthApp({ baseModelCatalog: OVERRIDE, baseModelCatalogFile: "catalog.json" });
    expect(both.status).not.toBe(0);
    expect(both.stderr).toContain("baseModelCatalog or baseModelCatalogFile, not both");
    const invalid = synthApp({
      baseModelCatalog: JSON.stringify({ models: { "tiny-chat": { family: "x" } } }),
    });
    expect(invalid.status).not.toBe(0);
    expect(invalid.stderr).toMatch(/Invalid base model catalog override at models\.tiny-chat\.family/);
  });
});
