import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_PREFIX } from "../infra/resources/definitions.ts";
import { ApiKeysRepository } from "../lambdas/aws/api-keys-repository.ts";
import { documentClient } from "../lambdas/aws/clients.ts";
import { hashApiKey } from "../lambdas/core/tenants/api-keys.ts";
import { TenantAdmin } from "./cli/admin.ts";
import { ensureLocalStack } from "./localstack/harness.ts";
import { ensureTinyModel, startInferenceServer, TRAINER_PYTHON } from "./platform/inference-server.ts";
import { localStateDirs, resetLocalState } from "./platform/local-state.ts";
import { startPlatform } from "./platform/platform.ts";

/**
 * `npm start`: the whole platform on this machine. Starts (or reuses) LocalStack, creates the resources,
 * seeds a dev tenant, serves the API on PORT (8787) until Ctrl-C, then stops everything it started.
 * Its data (tables, S3 objects) is kept in `.cache/local-state/{prefix}/` and found again at the next
 * start; `npm start -- --reset` starts empty, `-- --ephemeral` keeps nothing.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const say = (line: string) => console.log(`[ft] ${line}`);

const flags = process.argv.slice(2);
const unknown = flags.filter((flag) => flag !== "--reset" && flag !== "--ephemeral");
if (unknown.length) {
  console.error(
    `[ft] unknown option ${unknown.join(" ")}; options: --reset (start empty), --ephemeral (keep nothing)`,
  );
  process.exit(2);
}
const persistent = !flags.includes("--ephemeral");
const prefix = process.env.FT_PREFIX ?? DEFAULT_PREFIX;
const state = localStateDirs(join(root, ".cache"), prefix);
if (flags.includes("--reset")) {
  try {
    resetLocalState(state);
  } catch (error) {
    console.error(`[ft] --reset: ${(error as Error).message}`);
    process.exit(1);
  }
  say(`--reset: deleted ${relative(root, state.root)} and ${relative(root, state.batch)}`);
}

// Datasets, weights and tables in clear: readable by this user only.
if (persistent) mkdirSync(state.root, { recursive: true, mode: 0o700 });
const localstack = await ensureLocalStack({
  log: (line) => say(`localstack: ${line}`),
  // shutdown() below stops it, last: the platform's final copy of S3 objects to disk needs it.
  handleSignals: false,
  ...(persistent ? { stateDir: state.localstack } : {}),
});
if (persistent && localstack.mode === "external") {
  say(
    `LocalStack at ${localstack.endpoint} was not started by this run: tables live wherever it keeps them ` +
      `(S3 objects are still kept in ${relative(root, state.objects)})`,
  );
}
process.env.AWS_ENDPOINT_URL = localstack.endpoint;
process.env.AWS_REGION ??= "us-east-1";
process.env.AWS_ACCESS_KEY_ID ??= "test";
process.env.AWS_SECRET_ACCESS_KEY ??= "test";

// The trainer's venv (torch, transformers, PEFT) runs both local training and the inference server.
// The script is idempotent (a stamp of the lock files): after the first run it returns at once.
if (!existsSync(TRAINER_PYTHON))
  say("first run: installing the trainer's Python environment (a few minutes)");
execFileSync("bash", [join(root, "batch-images/trainer/scripts/setup-venv.sh")], { stdio: "inherit" });
const baseModelsDir = join(root, ".cache/base-models");
ensureTinyModel(baseModelsDir, say);
const inference = await startInferenceServer({
  baseModelsDir,
  cacheDir: join(root, ".cache/inference"),
  logFile: join(root, ".cache/inference/server.log"),
});
say(`inference server at ${inference.url} (log .cache/inference/server.log)`);

const platform = await startPlatform({
  prefix,
  port: Number(process.env.PORT ?? 8787),
  log: say,
  baseModelsDir,
  inferenceUrl: inference.url,
  workDir: state.batch,
  ...(persistent ? { stateDir: state.objects } : {}),
  // The console (web/console), built in memory from its sources at every start.
  console: true,
});
const devKey = await seedDevTenant(platform.resources.tables["api-keys"]);

console.log(`
Fine-tuning platform running locally.

  Console:   ${platform.consoleUrl}   (the experience center 体验中心: sign in with the API key below)
  Base URL:  ${platform.baseUrl}
  API key:   ${devKey}   (dev tenant; also in .cache/dev-tenant.json)

  export OPENAI_BASE_URL=${platform.baseUrl} OPENAI_API_KEY=${devKey}
  curl -s $OPENAI_BASE_URL/models -H "Authorization: Bearer $OPENAI_API_KEY"
  npx ftctl files upload samples/messages.jsonl --wait

Training runs on this machine's CPU (one job at a time); chat is served by the local inference server.

LocalStack: ${localstack.endpoint} (${localstack.mode}). ${
  persistent
    ? `Data is kept in ${relative(root, state.root)}/ (npm start -- --reset starts empty).`
    : "Nothing is kept (--ephemeral)."
} Press Ctrl-C to stop.
`);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  say(`${signal}: stopping`);
  try {
    await platform.stop();
    await inference.stop();
  } catch (error) {
    say(`while stopping: ${(error as Error).message}`);
  } finally {
    await localstack.stop();
  }
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

/**
 * The dev tenant's key is kept in .cache/dev-tenant.json (keys are stored hashed, so it cannot be read
 * back). A key the tables no longer know (after --reset, with --ephemeral) is created again.
 */
async function seedDevTenant(apiKeysTable: string): Promise<string> {
  const file = join(root, ".cache/dev-tenant.json");
  const keys = new ApiKeysRepository(documentClient(), apiKeysTable);
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, "utf8")) as { apiKey: string };
    if (await keys.findByHash(hashApiKey(saved.apiKey))) return saved.apiKey;
  }
  const created = await new TenantAdmin(keys).createTenant("dev");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify({ tenantId: created.tenantId, apiKey: created.apiKey }, null, 2)}\n`,
    { mode: 0o600 },
  );
  say(`seeded dev tenant ${created.tenantId}`);
  return created.apiKey;
}
