import {
  BUCKET_ENV,
  type BucketId,
  QUEUE_ENV,
  type QueueId,
  TABLE_ENV,
  type TableId,
} from "../../infra/resources/definitions.ts";
import type { BootstrappedResources } from "../bootstrap.ts";

/** The environment the CDK app gives the functions, for resources the local bootstrap created. */
export function functionEnvironment(resources: BootstrappedResources): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [id, name] of Object.entries(resources.tables)) env[TABLE_ENV[id as TableId]] = name;
  for (const [id, name] of Object.entries(resources.buckets)) env[BUCKET_ENV[id as BucketId]] = name;
  for (const [id, url] of Object.entries(resources.queueUrls)) env[QUEUE_ENV[id as QueueId]] = url;
  return env;
}

/**
 * Powertools settings for the handlers this process runs. Metrics are off
 * (`POWERTOOLS_METRICS_DISABLED`, Powertools' own switch): their EMF lines would only clutter the
 * terminal and the tests' output; set it to `false` to see them. The Tracer needs nothing: it is off
 * wherever `AWS_EXECUTION_ENV` is unset, that is outside Lambda.
 */
export function localObservabilityEnvironment(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string> {
  return { POWERTOOLS_METRICS_DISABLED: env.POWERTOOLS_METRICS_DISABLED ?? "true" };
}
