import { mkdtempSync, readFileSync, rmSync } from "node:fs";
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

interface ValidationReport {
  readonly pluginReports: {
    readonly pluginName: string;
    readonly violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[];
  }[];
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
  const read = (file: string) => JSON.parse(readFileSync(join(outdir, file), "utf8"));
  let report: ValidationReport;
  let templateJson: Record<string, unknown>;
  try {
    report = read("validation-report.json");
    templateJson = read(`${stack.artifactId}.template.json`);
  } finally {
    // The directory also holds the run's staged assets; nothing reads it after this.
    rmSync(outdir, { recursive: true, force: true });
  }
  const violations = report.pluginReports.flatMap((plugin) =>
    plugin.violations.flatMap((v) =>
      v.violatingConstructs.map((c) => ({
        pack: plugin.pluginName,
        rule: v.ruleName,
        path: c.constructPath,
      })),
    ),
  );
  const template = Template.fromJSON(templateJson);
  const synthesized = { stack, template, violations };
  cache.set(key, synthesized);
  return synthesized;
}
