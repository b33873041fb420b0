import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { Tracer } from "@aws-lambda-powertools/tracer";
import { METRICS_NAMESPACE, type ServiceName } from "../../infra/resources/definitions.ts";
import type { TrainingMethod } from "../core/catalog/base-models.ts";

/**
 * Powertools for every handler: its Logger, the process's Tracer and its Metrics, built once (module
 * scope in a Lambda, where a process serves one function, so one Tracer and one Metrics per process).
 *
 * Outside Lambda (the local platform, tests) nothing here writes anything a developer did not ask for:
 * - the Tracer disables itself when `AWS_EXECUTION_ENV` is unset, and `captureAWSv3Client` then hands
 *   the client back untouched;
 * - metrics are silenced by `POWERTOOLS_METRICS_DISABLED=true` (Powertools' documented switch; read
 *   when a Metrics is built), which the local platform sets for its in-process handlers.
 */
export interface Observability {
  readonly logger: Logger;
  readonly tracer: Tracer;
  readonly metrics: Metrics;
}

let processTracer: Tracer | undefined;
const services = new Map<ServiceName, Observability>();

/**
 * The process's Tracer; its service name comes from `POWERTOOLS_SERVICE_NAME`, which CDK sets to the
 * function's `SERVICES` entry. The SDK clients (clients.ts) are captured with it.
 */
export function tracer(): Tracer {
  processTracer ??= new Tracer();
  return processTracer;
}

/**
 * A handler's Powertools, by its `SERVICES` entry (the same one CDK gives `POWERTOOLS_SERVICE_NAME`).
 * Cached per service: the local platform runs every handler in one process, and each keeps its own
 * `service` in log lines and metric dimensions there too.
 */
export function observability(service: ServiceName): Observability {
  let found = services.get(service);
  if (!found) {
    found = {
      logger: new Logger({ serviceName: service }),
      tracer: tracer(),
      metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName: service }),
    };
    services.set(service, found);
  }
  return found;
}

/** Metric names in `METRICS_NAMESPACE`: dashboards and alarms refer to these. */
export const METRIC = {
  jobsCreated: "JobsCreated",
  jobsFinished: "JobsFinished",
  filesValidated: "FilesValidated",
  validatedLines: "ValidatedLines",
  validatedBytes: "ValidatedBytes",
  chatTimeToFirstToken: "ChatTimeToFirstToken",
  chatPromptTokens: "ChatPromptTokens",
  chatCompletionTokens: "ChatCompletionTokens",
} as const;

export type JobOutcome = "succeeded" | "failed" | "cancelled";

/** A job that reached a terminal status. */
export interface JobOutcomeSample {
  readonly outcome: JobOutcome;
  readonly method: TrainingMethod;
}

/** One validated file. */
export interface ValidationSample {
  readonly outcome: "processed" | "error";
  /** Lines read (absent when the object could not be read). */
  readonly lines?: number;
  readonly bytes?: number;
}

/** One chat request the inference server answered. */
export interface ChatSample {
  /** Request received → first streamed chunk written to the client; streams only. */
  readonly ttftMs?: number;
  readonly promptTokens?: number;
  readonly completionTokens?: number;
  /** The model the client named; metadata only (a tenant's model code is no dimension). */
  readonly model?: string;
}

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

/**
 * Adds the metrics under these dimensions (besides `service`) and flushes them at once. Flushing per
 * call rather than per invocation is deliberate: Powertools' dimensions and metadata apply to a whole
 * flush, so two samples with different dimensions (a job that succeeded, one that failed) must not
 * share one; and the local platform's handlers share one process, where a buffer held across an
 * `await` would mix concurrent requests. Nothing is added or flushed without a value, so Powertools
 * never warns about an empty flush.
 */
function emit(
  metrics: Metrics,
  dimensions: Readonly<Record<string, string>>,
  values: readonly (readonly [name: string, unit: Unit, value: number | undefined])[],
  metadata: Readonly<Record<string, string | undefined>> = {},
): void {
  const present = values.filter(([, , value]) => value !== undefined && Number.isFinite(value));
  if (present.length === 0) return;
  for (const [name, value] of Object.entries(dimensions)) metrics.addDimension(name, value);
  for (const [key, value] of Object.entries(metadata)) if (value) metrics.addMetadata(key, value);
  for (const [name, unit, value] of present) metrics.addMetric(name, unit, value as number);
  metrics.publishStoredMetrics();
}

/**
 * A job was created (the jobs API). Dimension: `method`. The base model goes in the metadata: it is
 * searchable in the log line without making one more metric per catalog entry.
 */
export function recordJobCreated(
  metrics: Metrics,
  job: { readonly method: TrainingMethod; readonly baseModel: string },
): void {
  emit(metrics, { method: job.method }, [[METRIC.jobsCreated, MetricUnit.Count, 1]], {
    baseModel: job.baseModel,
  });
}

/** A job reached a terminal status. Dimensions: `outcome`, `method`. */
export function recordJobOutcome(metrics: Metrics, sample: JobOutcomeSample): void {
  emit(metrics, { outcome: sample.outcome, method: sample.method }, [
    [METRIC.jobsFinished, MetricUnit.Count, 1],
  ]);
}

/** A file was validated. Dimension: `outcome`; its lines and bytes under the same outcome. */
export function recordValidation(metrics: Metrics, sample: ValidationSample): void {
  emit(metrics, { outcome: sample.outcome }, [
    [METRIC.filesValidated, MetricUnit.Count, 1],
    [METRIC.validatedLines, MetricUnit.Count, sample.lines],
    [METRIC.validatedBytes, MetricUnit.Bytes, sample.bytes],
  ]);
}

/** A chat request was answered: time to first token (streams) and token counts. No extra dimension. */
export function recordChat(metrics: Metrics, sample: ChatSample): void {
  emit(
    metrics,
    {},
    [
      [METRIC.chatTimeToFirstToken, MetricUnit.Milliseconds, sample.ttftMs],
      [METRIC.chatPromptTokens, MetricUnit.Count, sample.promptTokens],
      [METRIC.chatCompletionTokens, MetricUnit.Count, sample.completionTokens],
    ],
    { model: sample.model },
  );
}
