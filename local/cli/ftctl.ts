import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { APIGatewayClient } from "@aws-sdk/client-api-gateway";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { documentClient } from "../../lambdas/aws/clients.ts";
import { TenantSettingsRepository } from "../../lambdas/aws/tenant-settings-repository.ts";
import { UsagePlanKeys } from "../../lambdas/aws/usage-plan-keys.ts";
import { MAX_MULTIPART_FILE_BYTES } from "../../lambdas/core/files/file-record.ts";
import { describeQuotas, TenantAdmin, UsageError } from "./admin.ts";
import { CHAT_COMMANDS, CHAT_USAGE } from "./chat.ts";
import { DEV_TENANT_FILE, resolveTarget, resolveTenantTarget } from "./config.ts";
import { FILES_COMMANDS, FILES_USAGE } from "./files.ts";
import { JOBS_COMMANDS, JOBS_USAGE, MODELS_COMMANDS, MODELS_USAGE } from "./jobs.ts";
import type { ProgressStream } from "./progress.ts";
import { ApiError, type CommandContext, type CommandSpec, ConnectionError, TenantApi } from "./tenant-api.ts";
import { USAGE_COMMANDS, USAGE_USAGE } from "./usage.ts";
import { WEBHOOKS_COMMANDS, WEBHOOKS_USAGE } from "./webhooks.ts";

const indent = (text: string) => text.replace(/^/gm, "  ");

const USAGE = `ftctl: operate the fine-tuning platform

Tenant commands (the public API, as a tenant app sees it):
${indent(FILES_USAGE)}
${indent(JOBS_USAGE)}
${indent(MODELS_USAGE)}
  ftctl chat <model> "<prompt>" [--system s] [--max-tokens N] [--temperature X]   streamed answer
${indent(USAGE_USAGE)}
${indent(WEBHOOKS_USAGE)}

  --base-url <url>  the API, e.g. https://…/v4 (else FT_BASE_URL, OPENAI_BASE_URL, or the local platform
                    at http://localhost:\${PORT:-8787}/v4)
  --api-key <key>   else FT_API_KEY, OPENAI_API_KEY, or the local dev tenant's (.cache/dev-tenant.json)
  'ftctl <command> --help' shows a command's options.

Admin (needs AWS credentials for the platform's tables, or the local platform):
  ftctl admin tenants create <name>         create a tenant; prints its first API key once
  ftctl admin tenants list                  tenants, their active key counts and quota overrides
  ftctl admin tenants set-quota <tenant id> [--concurrent-jobs N] [--stored-bytes N] [--files N]
                                            override a tenant's quotas (unfinished jobs, bytes in
                                            files, files); the others keep the defaults
                                            (TENANT_MAX_CONCURRENT_JOBS, _STORED_BYTES, _FILES)
  ftctl admin tenants sync-usage-keys       AWS: give each tenant without one its API Gateway usage
                                            plan key (request rate and daily quota); until then
                                            API Gateway refuses its requests with 403
  ftctl admin keys create --tenant <id>     another key for a tenant; printed once
  ftctl admin keys list [--tenant <id>]     keys (id, tenant, created, revoked), never the secret
  ftctl admin keys revoke <key id>          revoke a key (takes effect within the authorizer cache TTL)

Options:
  --stack <name>    read table names from a deployed CloudFormation stack's outputs
  --prefix <p>      table name prefix of the local platform (default ft, or FT_PREFIX)
  --json            machine-readable output
  -h, --help        this text

Without --stack or table variables (API_KEYS_TABLE...), ftctl talks to the local platform
(LocalStack at AWS_ENDPOINT_URL, default http://localhost:4566).`;

/** What the tenant commands use from the process; tests replace parts. */
export interface MainDeps {
  readonly env?: NodeJS.ProcessEnv;
  readonly fetch?: typeof fetch;
  /** stdout without a newline (streamed chat text, the live loss line). */
  readonly write?: (text: string) => void;
  readonly stdoutIsTTY?: boolean;
  /** Where upload progress goes (default stderr). */
  readonly progress?: ProgressStream;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly pollIntervalMs?: number;
  readonly multipartLimitBytes?: number;
  readonly devTenantFile?: string;
  readonly newIdempotencyKey?: () => string;
}

const TENANT_COMMANDS: Record<string, CommandSpec> = {
  ...FILES_COMMANDS,
  ...JOBS_COMMANDS,
  ...MODELS_COMMANDS,
  ...CHAT_COMMANDS,
  ...USAGE_COMMANDS,
  ...WEBHOOKS_COMMANDS,
};

const GROUP_USAGE: Record<string, string> = {
  files: FILES_USAGE,
  jobs: JOBS_USAGE,
  models: MODELS_USAGE,
  chat: CHAT_USAGE,
  usage: USAGE_COMMANDS.usage!.usage,
  webhooks: WEBHOOKS_USAGE,
};

const COMMON_OPTIONS = {
  "base-url": { type: "string" },
  "api-key": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Runs one ftctl command; returns the process exit code. */
export async function main(
  argv: string[],
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
  deps: MainDeps = {},
): Promise<number> {
  const area = firstPositional(argv);
  if (area && area in GROUP_USAGE) return tenantMain(area, argv, out, err, deps);
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    err(`ftctl: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  const print = (human: string, data: unknown) => out(values.json ? JSON.stringify(data, null, 2) : human);
  try {
    const [area, noun, verb, ...rest] = positionals;
    if (area !== "admin") throw new UsageError(`unknown command '${positionals.join(" ")}'`);
    const target = await resolveTarget({
      ...(values.stack ? { stack: values.stack } : {}),
      ...(values.prefix ? { prefix: values.prefix } : {}),
    });
    const admin = new TenantAdmin(
      new ApiKeysRepository(documentClient(), target.tables["api-keys"]),
      undefined,
      new TenantSettingsRepository(documentClient(), target.tables.tenants),
      target.usagePlanId ? new UsagePlanKeys(new APIGatewayClient({}), target.usagePlanId) : undefined,
    );
    const command = [noun, verb].filter(Boolean).join(" ");
    switch (command) {
      case "tenants create": {
        const name = rest.join(" ").trim();
        if (!name) throw new UsageError("usage: ftctl admin tenants create <name>");
        const created = await admin.createTenant(name);
        print(
          `Created tenant ${created.tenantId} (${name}) on ${target.describe}.\nAPI key (shown once, store it now):\n\n  ${created.apiKey}\n`,
          created,
        );
        if (created.usageKeyError) {
          err(
            `ftctl: the tenant has no usage plan key yet (${created.usageKeyError}); run 'ftctl admin tenants sync-usage-keys'.`,
          );
          return 1;
        }
        return 0;
      }
      case "tenants sync-usage-keys": {
        const given = await admin.syncUsageKeys();
        print(
          given.length === 0
            ? "Every tenant has a usage plan key."
            : `Gave ${given.length} tenant(s) a usage plan key: ${given.join(", ")}.`,
          { given },
        );
        return 0;
      }
      case "tenants list": {
        const tenants = await admin.listTenants();
        print(
          tenants
            .map(
              (t) =>
                `${t.tenantId}  ${t.tenantName}  active keys: ${t.activeKeys}  quotas: ${describeQuotas(t.quotas)}`,
            )
            .join("\n") || "no tenants",
          tenants,
        );
        return 0;
      }
      case "tenants set-quota": {
        const tenantId = rest[0];
        if (!tenantId) {
          throw new UsageError(
            "usage: ftctl admin tenants set-quota <tenant id> [--concurrent-jobs N] [--stored-bytes N] [--files N]",
          );
        }
        const quotas = await admin.setQuota(tenantId, {
          concurrentJobs: values["concurrent-jobs"],
          storedBytes: values["stored-bytes"],
          files: values.files,
        });
        print(`Quotas of ${tenantId}: ${describeQuotas(quotas)} (the others: defaults).`, {
          tenantId,
          quotas,
        });
        return 0;
      }
      case "keys create": {
        if (!values.tenant) throw new UsageError("usage: ftctl admin keys create --tenant <tenant id>");
        const created = await admin.createKey(values.tenant);
        print(
          `Created key ${created.keyId} for ${values.tenant}.\nAPI key (shown once):\n\n  ${created.apiKey}\n`,
          created,
        );
        return 0;
      }
      case "keys list": {
        const keys = await admin.listKeys(values.tenant);
        const rows = keys.map(({ keyHash: _hash, ...rest }) => rest);
        print(
          rows
            .map(
              (k) =>
                `${k.keyId}  ${k.tenantId}  ${k.hint}  created ${new Date(k.createdAt * 1000).toISOString()}${k.revokedAt ? `  REVOKED ${new Date(k.revokedAt * 1000).toISOString()}` : ""}`,
            )
            .join("\n") || "no keys",
          rows,
        );
        return 0;
      }
      case "keys revoke": {
        const keyId = rest[0];
        if (!keyId) throw new UsageError("usage: ftctl admin keys revoke <key id>");
        const record = await admin.revokeKey(keyId);
        print(`Revoked ${record.keyId} of ${record.tenantId}.`, {
          keyId: record.keyId,
          revokedAt: record.revokedAt,
        });
        return 0;
      }
      default:
        throw new UsageError(`unknown command 'admin ${command}'`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err(`ftctl: ${error.message}`);
      return 2;
    }
    const name = (error as { name?: string }).name;
    if (name === "ResourceNotFoundException") {
      err(
        "ftctl: the platform's tables were not found. Is the local platform running (npm start), or pass --stack <name>?",
      );
      return 1;
    }
    if ((error as { code?: string }).code === "ECONNREFUSED" || name === "TimeoutError") {
      err("ftctl: cannot reach the platform's endpoint. Start it with 'npm start' or set AWS_ENDPOINT_URL.");
      return 1;
    }
    err(`ftctl: ${(error as Error).message}`);
    return 1;
  }
}

/** The first positional argument, knowing which options take a value. */
function firstPositional(argv: string[]): string | undefined {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    stack: { type: "string" },
    prefix: { type: "string" },
    tenant: { type: "string" },
    ...COMMON_OPTIONS,
  };
  for (const spec of Object.values(TENANT_COMMANDS)) Object.assign(options, spec.options);
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: false, options }).positionals[0];
  } catch {
    return undefined;
  }
}

async function tenantMain(
  area: string,
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void,
  deps: MainDeps,
): Promise<number> {
  const groupUsage = GROUP_USAGE[area]!;
  const loose = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    options: Object.assign({}, COMMON_OPTIONS, ...Object.values(TENANT_COMMANDS).map((c) => c.options)),
  });
  // chat and usage are commands of their own; the other areas take a verb.
  const verb = area in TENANT_COMMANDS ? undefined : loose.positionals[1];
  const spec = TENANT_COMMANDS[verb ? `${area} ${verb}` : area];
  if (!spec) {
    if (!verb && loose.values.help) {
      out(groupUsage);
      return 0;
    }
    err(
      `ftctl: ${verb ? `unknown command '${area} ${verb}'` : `'${area}' needs a command`}\n\n${groupUsage}`,
    );
    return 2;
  }
  let values: Record<string, string | boolean | undefined>;
  let args: string[];
  try {
    const parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...COMMON_OPTIONS, ...spec.options },
    });
    values = parsed.values;
    args = parsed.positionals.slice(verb ? 2 : 1);
  } catch (error) {
    err(`ftctl: ${(error as Error).message}\n\n${spec.usage}`);
    return 2;
  }
  if (values.help) {
    out(spec.usage);
    return 0;
  }
  try {
    const target = resolveTenantTarget(
      { baseUrl: values["base-url"] as string | undefined, apiKey: values["api-key"] as string | undefined },
      deps.env ?? process.env,
      deps.devTenantFile ?? DEV_TENANT_FILE,
    );
    const ctx: CommandContext = {
      api: new TenantApi(target, deps.fetch ?? fetch),
      out,
      err,
      write: deps.write ?? ((text) => void process.stdout.write(text)),
      stdoutIsTTY: deps.stdoutIsTTY ?? Boolean(process.stdout.isTTY),
      progress: deps.progress ?? process.stderr,
      sleep: deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
      pollIntervalMs: deps.pollIntervalMs ?? 2000,
      multipartLimitBytes: deps.multipartLimitBytes ?? MAX_MULTIPART_FILE_BYTES,
      json: Boolean(values.json),
      newIdempotencyKey: deps.newIdempotencyKey ?? randomUUID,
    };
    return await spec.run(ctx, args, values);
  } catch (error) {
    if (error instanceof UsageError) {
      err(`ftctl: ${error.message}`);
      return 2;
    }
    if (error instanceof ApiError) {
      err(`error: ${error.describe()}`);
      if (error.requestId) err(`request id: ${error.requestId}`);
      return 1;
    }
    if (error instanceof ConnectionError) {
      err(`error: ${error.message}`);
      return 1;
    }
    err(`ftctl: ${(error as Error).message}`);
    return 1;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      stack: { type: "string" },
      prefix: { type: "string" },
      tenant: { type: "string" },
      "concurrent-jobs": { type: "string" },
      "stored-bytes": { type: "string" },
      files: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
}
