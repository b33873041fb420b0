import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import {
  DEFAULT_PREFIX,
  physicalName,
  TABLE_ENV,
  type TableId,
  USAGE_PLAN_ENV,
} from "../../infra/resources/definitions.ts";
import { UsageError } from "./admin.ts";

/** Where the admin commands find the platform's tables. */
export interface AdminTarget {
  readonly describe: string;
  readonly tables: Record<TableId, string>;
  /** The tenants' usage plan (AWS): new tenants get an API Gateway key in it. None locally. */
  readonly usagePlanId?: string;
}

export const LOCAL_ENDPOINT = "http://localhost:4566";

/**
 * Resolution order: table names from the environment (FILES_TABLE, API_KEYS_TABLE...), else the
 * outputs of a deployed stack (`--stack`), else the local platform (LocalStack on localhost:4566 with
 * the default prefix).
 */
export async function resolveTarget(options: { stack?: string; prefix?: string }): Promise<AdminTarget> {
  const prefix = options.prefix ?? process.env.FT_PREFIX ?? DEFAULT_PREFIX;
  const tables = {} as Record<TableId, string>;
  const ids = Object.keys(TABLE_ENV) as TableId[];
  if (options.stack) {
    const cfn = new CloudFormationClient({});
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: options.stack }));
    const outputs = Stacks?.[0]?.Outputs ?? [];
    for (const id of ids) {
      const output = outputs.find((o) => o.Description === TABLE_ENV[id]);
      if (!output?.OutputValue) throw new Error(`stack ${options.stack} has no output for ${TABLE_ENV[id]}`);
      tables[id] = output.OutputValue;
    }
    // A stack from before usage plans has none: its tenants get no key (and need none).
    const usagePlanId = outputs.find((o) => o.Description === USAGE_PLAN_ENV)?.OutputValue;
    return { describe: `stack ${options.stack}`, tables, ...(usagePlanId ? { usagePlanId } : {}) };
  }
  for (const id of ids) tables[id] = process.env[TABLE_ENV[id]] ?? physicalName(prefix, id);
  if (!process.env.AWS_ENDPOINT_URL && !ids.some((id) => process.env[TABLE_ENV[id]])) {
    // No AWS target named at all: the local platform.
    process.env.AWS_ENDPOINT_URL = LOCAL_ENDPOINT;
    process.env.AWS_REGION ??= "us-east-1";
    process.env.AWS_ACCESS_KEY_ID ??= "test";
    process.env.AWS_SECRET_ACCESS_KEY ??= "test";
  }
  const usagePlanId = process.env[USAGE_PLAN_ENV];
  return {
    describe: process.env.AWS_ENDPOINT_URL
      ? `local platform at ${process.env.AWS_ENDPOINT_URL}`
      : "AWS (from environment)",
    tables,
    ...(usagePlanId ? { usagePlanId } : {}),
  };
}

/** Where the tenant commands (files, jobs, models, chat) send their requests, and as whom. */
export interface TenantTarget {
  /** The API's base URL including `/v4`, without a trailing slash. */
  readonly baseUrl: string;
  readonly apiKey: string;
  /** Where the target came from, for messages. */
  readonly describe: string;
}

/** `.cache/dev-tenant.json` of this checkout, written by `npm start`: `{tenantId, apiKey}`. */
export const DEV_TENANT_FILE = join(
  resolve(dirname(fileURLToPath(import.meta.url)), "../.."),
  ".cache/dev-tenant.json",
);

/**
 * Resolution order, separately for the base URL and the key: `--base-url` / `--api-key`, else
 * `FT_BASE_URL` / `FT_API_KEY`, else `OPENAI_BASE_URL` / `OPENAI_API_KEY`, else the local platform
 * (`http://localhost:${PORT:-8787}/v4` and the dev tenant's key from `.cache/dev-tenant.json`). The dev
 * tenant's key is only used with a localhost base URL, so it never leaves the machine.
 */
export function resolveTenantTarget(
  options: { baseUrl?: string | undefined; apiKey?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
  devTenantFile: string = DEV_TENANT_FILE,
): TenantTarget {
  const urlFrom = options.baseUrl
    ? { value: options.baseUrl, source: "--base-url" }
    : env.FT_BASE_URL
      ? { value: env.FT_BASE_URL, source: "FT_BASE_URL" }
      : env.OPENAI_BASE_URL
        ? { value: env.OPENAI_BASE_URL, source: "OPENAI_BASE_URL" }
        : undefined;
  const baseUrl = (urlFrom?.value ?? `http://localhost:${env.PORT || 8787}/v4`).replace(/\/+$/, "");
  let url: URL;
  try {
    url = new URL(baseUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http");
  } catch {
    throw new UsageError(
      `${urlFrom?.source ?? "base URL"} is not an http(s) URL: '${baseUrl}' (e.g. http://localhost:8787/v4)`,
    );
  }
  const keyFrom = options.apiKey
    ? { value: options.apiKey, source: "--api-key" }
    : env.FT_API_KEY
      ? { value: env.FT_API_KEY, source: "FT_API_KEY" }
      : env.OPENAI_API_KEY
        ? { value: env.OPENAI_API_KEY, source: "OPENAI_API_KEY" }
        : undefined;
  if (keyFrom) {
    return { baseUrl, apiKey: keyFrom.value, describe: `${baseUrl} (key from ${keyFrom.source})` };
  }
  const local = ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
  if (!local) {
    throw new UsageError(
      `no API key for ${baseUrl}: pass --api-key <key> or set FT_API_KEY (or OPENAI_API_KEY).`,
    );
  }
  if (!existsSync(devTenantFile)) {
    throw new UsageError(
      `no platform configured: pass --base-url and --api-key, set FT_BASE_URL and FT_API_KEY (or OPENAI_BASE_URL and OPENAI_API_KEY), or start the local platform with 'npm start' (it writes ${devTenantFile}).`,
    );
  }
  let apiKey: unknown;
  try {
    apiKey = (JSON.parse(readFileSync(devTenantFile, "utf8")) as { apiKey?: unknown }).apiKey;
  } catch (error) {
    throw new UsageError(`cannot read ${devTenantFile}: ${(error as Error).message}`);
  }
  if (typeof apiKey !== "string" || !apiKey) {
    throw new UsageError(`${devTenantFile} has no apiKey; restart the local platform with 'npm start'.`);
  }
  return { baseUrl, apiKey, describe: `${baseUrl} (dev tenant of the local platform)` };
}
