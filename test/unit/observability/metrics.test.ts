import { Metrics } from "@aws-lambda-powertools/metrics";
import { afterEach, describe, expect, it, vi } from "vitest";
import { METRICS_NAMESPACE } from "../../../infra/resources/definitions.ts";
import {
  METRIC,
  recordChat,
  recordJobCreated,
  recordJobOutcome,
  recordValidation,
} from "../../../lambdas/aws/observability.ts";

interface Emf {
  readonly _aws: {
    readonly CloudWatchMetrics: readonly {
      readonly Namespace: string;
      readonly Dimensions: readonly (readonly string[])[];
      readonly Metrics: readonly { readonly Name: string; readonly Unit: string }[];
    }[];
  };
  readonly [key: string]: unknown;
}

/**
 * A Metrics that writes its EMF lines to a spied `console.log` (POWERTOOLS_DEV, Powertools' documented
 * way to test), enabled explicitly: POWERTOOLS_DEV alone would disable it.
 */
function capturedMetrics(service = "job-status") {
  vi.stubEnv("POWERTOOLS_DEV", "true");
  vi.stubEnv("POWERTOOLS_METRICS_DISABLED", "false");
  const log = vi.spyOn(console, "log").mockImplementation(() => {});
  const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: service });
  return {
    metrics,
    warnings: () => warn.mock.calls,
    lines: (): Emf[] => log.mock.calls.map(([line]) => JSON.parse(String(line)) as Emf),
  };
}

/** Dimension names, metric name → unit, and the line's values, of one EMF line. */
function describeLine(line: Emf) {
  const [directive] = line._aws.CloudWatchMetrics;
  return {
    namespace: directive?.Namespace,
    dimensions: directive?.Dimensions,
    units: Object.fromEntries(directive?.Metrics.map((m) => [m.Name, m.Unit]) ?? []),
  };
}

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe("metrics of the platform (EMF)", () => {
  it("counts a created job by method, with the base model as metadata rather than a dimension", () => {
    const { metrics, lines } = capturedMetrics("jobs-api");
    recordJobCreated(metrics, { method: "lora", baseModel: "chatglm3-6b" });

    const [line] = lines();
    expect(lines()).toHaveLength(1);
    expect(describeLine(line!)).toEqual({
      namespace: "FineTuningPlatform",
      dimensions: [["service", "method"]],
      units: { [METRIC.jobsCreated]: "Count" },
    });
    expect(line).toMatchObject({
      service: "jobs-api",
      method: "lora",
      JobsCreated: 1,
      baseModel: "chatglm3-6b",
    });
  });

  it("counts each finished job under its own outcome and method, one flush per job", () => {
    const { metrics, lines } = capturedMetrics();
    recordJobOutcome(metrics, { outcome: "succeeded", method: "lora" });
    recordJobOutcome(metrics, { outcome: "failed", method: "full" });

    expect(lines().map(describeLine)).toEqual([
      {
        namespace: "FineTuningPlatform",
        dimensions: [["service", "outcome", "method"]],
        units: { JobsFinished: "Count" },
      },
      {
        namespace: "FineTuningPlatform",
        dimensions: [["service", "outcome", "method"]],
        units: { JobsFinished: "Count" },
      },
    ]);
    expect(lines()).toMatchObject([
      { service: "job-status", outcome: "succeeded", method: "lora", JobsFinished: 1 },
      { service: "job-status", outcome: "failed", method: "full", JobsFinished: 1 },
    ]);
  });

  it("counts a validated file by outcome, with its lines and bytes", () => {
    const { metrics, lines } = capturedMetrics("validator");
    recordValidation(metrics, { outcome: "processed", lines: 120, bytes: 48_000 });
    recordValidation(metrics, { outcome: "error", bytes: undefined });

    const [processed, error] = lines();
    expect(describeLine(processed!)).toMatchObject({
      dimensions: [["service", "outcome"]],
      units: { FilesValidated: "Count", ValidatedLines: "Count", ValidatedBytes: "Bytes" },
    });
    expect(processed).toMatchObject({
      outcome: "processed",
      FilesValidated: 1,
      ValidatedLines: 120,
      ValidatedBytes: 48_000,
    });
    // An object that could not be read has no lines or bytes to report.
    expect(describeLine(error!).units).toEqual({ FilesValidated: "Count" });
    expect(error).toMatchObject({ outcome: "error", FilesValidated: 1 });
  });

  it("records a chat's time to first token and tokens, the model as metadata only", () => {
    const { metrics, lines } = capturedMetrics("chat");
    recordChat(metrics, { ttftMs: 180, promptTokens: 12, completionTokens: 40, model: "acme-support-v1" });

    const [line] = lines();
    expect(describeLine(line!)).toEqual({
      namespace: "FineTuningPlatform",
      dimensions: [["service"]],
      units: {
        ChatTimeToFirstToken: "Milliseconds",
        ChatPromptTokens: "Count",
        ChatCompletionTokens: "Count",
      },
    });
    expect(line).toMatchObject({
      ChatTimeToFirstToken: 180,
      ChatPromptTokens: 12,
      ChatCompletionTokens: 40,
      model: "acme-support-v1",
    });
  });

  it("writes nothing, and no Powertools warning, for a chat that measured nothing", () => {
    const { metrics, lines, warnings } = capturedMetrics("chat");
    recordChat(metrics, { model: "tiny-chat" });
    expect(lines()).toEqual([]);
    expect(warnings()).toEqual([]);
  });

  it("writes nothing with POWERTOOLS_METRICS_DISABLED, as the local platform sets it", () => {
    vi.stubEnv("POWERTOOLS_METRICS_DISABLED", "true");
    const write = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: "job-status" });

    recordJobOutcome(metrics, { outcome: "succeeded", method: "lora" });
    recordChat(metrics, { ttftMs: 5 });

    expect(write).not.toHaveBeenCalled();
    expect(log).not.toHaveBeenCalled();
  });
});
