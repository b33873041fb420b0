import {
  BUCKET_ENV,
  type BucketId,
  CONFIG_ENV,
  QUEUE_ENV,
  type QueueId,
  TABLE_ENV,
  type TableId,
} from "../../infra/resources/definitions.ts";
import { defaultQuotas, type TenantQuotas } from "../core/tenants/quotas.ts";
import type { JobTables } from "./jobs-repository.ts";

/**
 * An environment to read from: `process.env` in a handler, a plain map in a test. Every helper takes
 * one (defaulting to `process.env`) so that code building dependencies "from the environment" can be
 * tested without touching the process's own.
 */
export type Env = Readonly<Record<string, string | undefined>>;

/** A key of `CONFIG_ENV`: configuration that is not a resource name. */
export type ConfigKey = keyof typeof CONFIG_ENV;

/**
 * Reads a required configuration variable (a resource name set by CDK or the local platform). Called
 * at module scope by handlers, so a missing one fails the cold start loudly rather than a request.
 */
export function requiredEnv(name: string, env: Env = process.env): string {
  const value = env[name];
  if (!value) throw new Error(`Environment variable ${name} is not set`);
  return value;
}

/** A table's physical name, from the variable `definitions.ts` names for it (set by `bind` in CDK). */
export const tableName = (id: TableId, env: Env = process.env): string => requiredEnv(TABLE_ENV[id], env);
/** A bucket's name, likewise. */
export const bucketName = (id: BucketId, env: Env = process.env): string => requiredEnv(BUCKET_ENV[id], env);
/** A queue's URL, likewise. */
export const queueUrl = (id: QueueId, env: Env = process.env): string => requiredEnv(QUEUE_ENV[id], env);

/** The tables the jobs repository reads and writes outside job creation (dispatcher, status handler). */
export const jobTables = (env: Env = process.env): JobTables => ({
  jobs: tableName("jobs", env),
  events: tableName("job-events", env),
  models: tableName("models", env),
});

/** An optional configuration variable (see `CONFIG_ENV`), undefined when unset. */
export const configEnv = (key: ConfigKey, env: Env = process.env): string | undefined =>
  env[CONFIG_ENV[key]] || undefined;

/** A required configuration variable (see `CONFIG_ENV`). */
export const requiredConfigEnv = (key: ConfigKey, env: Env = process.env): string =>
  requiredEnv(CONFIG_ENV[key], env);

/** A required configuration variable parsed as JSON. */
export function requiredJsonEnv(key: ConfigKey, env: Env = process.env): unknown {
  const value = requiredConfigEnv(key, env);
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new Error(`Environment variable ${CONFIG_ENV[key]} is not valid JSON`, { cause: error });
  }
}

/** The operator's default tenant quotas (CONFIG_ENV `tenantMax…`), parsed at cold start. */
export const quotaDefaults = (env: Env = process.env): TenantQuotas =>
  defaultQuotas({
    concurrentJobs: configEnv("tenantMaxConcurrentJobs", env),
    storedBytes: configEnv("tenantMaxStoredBytes", env),
    files: configEnv("tenantMaxFiles", env),
  });
