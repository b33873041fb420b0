import {
  BUCKET_ENV,
  type BucketId,
  CONFIG_ENV,
  QUEUE_ENV,
  type QueueId,
  TABLE_ENV,
  type TableId,
} from "../../infra/resources/definitions.ts";

/**
 * Reads a required configuration variable (a resource name set by CDK or the local platform). Called
 * at module scope by handlers, so a missing one fails the cold start loudly rather than a request.
 */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Environment variable ${name} is not set`);
  return value;
}

/** A table's physical name, from the variable `definitions.ts` names for it (set by `bind` in CDK). */
export const tableName = (id: TableId): string => requiredEnv(TABLE_ENV[id]);
/** A bucket's name, likewise. */
export const bucketName = (id: BucketId): string => requiredEnv(BUCKET_ENV[id]);
/** A queue's URL, likewise. */
export const queueUrl = (id: QueueId): string => requiredEnv(QUEUE_ENV[id]);

/** An optional configuration variable (see `CONFIG_ENV`), undefined when unset. */
export const configEnv = (key: keyof typeof CONFIG_ENV): string | undefined =>
  process.env[CONFIG_ENV[key]] || undefined;

/** A required configuration variable parsed as JSON. */
export function requiredJsonEnv(key: keyof typeof CONFIG_ENV): unknown {
  const name = CONFIG_ENV[key];
  const value = requiredEnv(name);
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new Error(`Environment variable ${name} is not valid JSON`, { cause: error });
  }
}
