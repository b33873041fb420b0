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
