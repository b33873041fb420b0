import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, RemovalPolicy, Validations } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks, ServerlessChecks } from "cdk-nag";
import { PlatformStack, type PlatformStackProps } from "../../infra/stacks/platform-stack.ts";

export interface Violation {
  readonly pack: string;
  readonly rule: string;
  readonly path: string;
}

export interface Synthesized {
  readonly stack: PlatformStack;
  readonly template: Template;
  /** Unacknowledged cdk-nag findings (both packs). */
  readonly violations: readonly Violation[];
}

const cache = new Map<string, Synthesized>();

/**
 * Synthesizes the platform stack once per test file, with both cdk-nag packs as validation plugins.
 * Bundling is skipped (`aws:cdk:bundling-stacks`) so tests need neither esbuild runs nor Docker.
 */
export function synthPlatform(overrides: Partial<Omit<PlatformStackProps, "prefix">> = {}): Synthesized {
  const key = JSON.stringify(overrides);
  const cached = cache.get(key);
  if (cached) return cached;
  const outdir = mkdtempSync(join(tmpdir(), "ft-synth-"));
  const app = new App({ outdir, context: { "aws:cdk:bundling-stacks": [] } });
  const stack = new PlatformStack(app, "Test", {
    prefix: "ft",
    removalPolicy: RemovalPolicy.RETAIN,
    ...overrides,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  try {
    app.synth();
  } catch {
    // A failed validation still writes its report; the violations below say what failed.
  }
  const report = JSON.parse(readFileSync(join(outdir, "validation-report.json"), "utf8")) as {
    pluginReports: {
      pluginName: string;
      violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[];
    }[];
  };
  const violations = report.pluginReports.flatMap((plugin) =>
    plugin.violations.flatMap((v) =>
      v.violatingConstructs.map((c) => ({
        pack: plugin.pluginName,
        rule: v.ruleName,
        path: c.constructPath,
      })),
    ),
  );
  const template = Template.fromJSON(
    JSON.parse(readFileSync(join(outdir, `${stack.artifactId}.template.json`), "utf8")),
  );
  const synthesized = { stack, template, violations };
  cache.set(key, synthesized);
  return synthesized;
}
