import { parseArgs } from "node:util";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { documentClient } from "../../lambdas/aws/clients.ts";
import { TenantAdmin, UsageError } from "./admin.ts";
import { resolveTarget } from "./config.ts";

const USAGE = `ftctl: operate the fine-tuning platform

Admin (needs AWS credentials for the platform's tables, or the local platform):
  ftctl admin tenants create <name>         create a tenant; prints its first API key once
  ftctl admin tenants list                  tenants and their active key counts
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

/** Runs one ftctl command; returns the process exit code. */
export async function main(
  argv: string[],
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
): Promise<number> {
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
    const admin = new TenantAdmin(new ApiKeysRepository(documentClient(), target.tables["api-keys"]));
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
        return 0;
      }
      case "tenants list": {
        const tenants = await admin.listTenants();
        print(
          tenants.map((t) => `${t.tenantId}  ${t.tenantName}  active keys: ${t.activeKeys}`).join("\n") ||
            "no tenants",
          tenants,
        );
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

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      stack: { type: "string" },
      prefix: { type: "string" },
      tenant: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
}
