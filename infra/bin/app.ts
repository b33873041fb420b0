import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks, ServerlessChecks } from "cdk-nag";
import type { CatalogOverride } from "../../lambdas/core/catalog/base-models.ts";
import { DEFAULT_PREFIX } from "../resources/definitions.ts";
import { PlatformStack } from "../stacks/platform-stack.ts";

/**
 * The CDK app. Context (cdk.json or `-c key=value`):
 * - `prefix`: prefix of physical names, default `ft`;
 * - `alarmEmail`: an address subscribed to the alarm topic;
 * - `nag`: `false` turns the cdk-nag checks off at synth (the tests always run them).
 *
 * Base model catalog (`lambdas/core/catalog`): an override `{"models": {"<name>": patch | null}}`,
 * validated at synth and given to every function that reads the catalog, the trainer's role (weights
 * locations) and the inference servers (family, weights):
 * - `baseModelCatalog`: the override as a JSON object (cdk.json) or its JSON text (`-c`); or
 * - `baseModelCatalogFile`: the path of a JSON file holding it (relative to the working directory).
 *
 * Training (AWS Batch):
 * - `trainerImageUri`: the trainer image in a registry; unset, `cdk deploy` builds
 *   `batch-images/trainer/Dockerfile` from the repository root (Docker needed at deploy only);
 * - `loraInstanceTypes`, `fullInstanceTypes`: EC2 GPU instance types (list or comma-separated);
 * - `loraGpus`, `loraVcpus`, `loraMemoryGiB`, `fullGpus`, `fullVcpus`, `fullMemoryGiB`: what one job asks
 *   for; it must fit on the instance types;
 * - `loraMaxVcpus`, `fullMaxVcpus`: cost ceiling of each compute environment;
 * - `loraSpot` (default true), `fullSpot` (default false): Spot first with On-Demand fallback;
 * - `multiNodeInstanceTypes` (p4d.24xlarge, p4de.24xlarge, p5.48xlarge), `multiNodeMaxNodes` (16): the
 *   On-Demand compute of multi-node (torchrun + FSDP2) jobs, with EFA and a cluster placement group.
 * - `trainingTimeoutHours` (default 24), `trainingVolumeGiB` (default 500), `dispatcherConcurrency` (5).
 *
 * Chat:
 * - `inferenceEndpointUrl`: an external OpenAI-compatible base URL (ending in `/v1`) for every model; or
 * - `inferenceServers`: base model names served privately by vLLM on GPU instances, plus
 *   `inferenceImageUri`, `inferenceInstanceType`. With them, tenants can also deploy full-parameter models
 *   through the API (`POST /v4/models/{code}/deploy`): each gets a server of its own, on the instance type
 *   the serving planner chooses (infra/constructs/deployments.ts);
 * - `chatRateLimitPerMinute` (requests per instance), `chatTokensPerMinute` (tokens per tenant, shared).
 *
 * Tenant quotas (defaults; `ftctl admin tenants set-quota` overrides them per tenant):
 * - `tenantMaxConcurrentJobs` (5), `tenantMaxStoredBytes` (10 GiB), `tenantMaxFiles` (1000).
 *
 * Tenant request limits (API Gateway usage plan, one key per tenant made by `ftctl admin`):
 * - `tenantRequestsPerSecond` (10), `tenantBurst` (20), `tenantRequestsPerDay` (10000).
 */
const app = new App();
const context = (key: string): unknown => app.node.tryGetContext(key);
const prefix = (context("prefix") as string | undefined) ?? DEFAULT_PREFIX;
const alarmEmail = context("alarmEmail") as string | undefined;

/** A string context value, or undefined when unset or empty. */
function text(key: string): string | undefined {
  const value = context(key);
  return typeof value === "string" && value !== "" ? value : undefined;
}
/** A list from JSON (cdk.json) or a comma-separated string (`-c key=a,b`). */
function list(key: string): string[] | undefined {
  const value = context(key);
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== "string" || value === "") return undefined;
  return value.startsWith("[")
    ? (JSON.parse(value) as string[])
    : value
        .split(",")
        .map((v) => v.trim())
        .filter(Boolean);
}
function num(key: string): number | undefined {
  const value = context(key);
  if (value === undefined || value === "") return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new Error(`context ${key} must be a number, got ${String(value)}`);
  return parsed;
}
function bool(key: string): boolean | undefined {
  const value = context(key);
  if (value === undefined || value === "") return undefined;
  return value === true || value === "true";
}
/**
 * Only the keys whose value is defined: the constructs spread these props over their defaults
 * (`{ ...DEFAULT_CAPACITY.lora, ...capacity }`), where a key holding `undefined` would erase a default.
 */
function defined<T extends Record<string, unknown>>(record: T): Partial<T> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function parseJson(json: string, what: string): unknown {
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new Error(`${what} is not valid JSON`, { cause: error });
  }
}
/** The catalog override from `baseModelCatalog` or `baseModelCatalogFile`; validated by the stack. */
function catalogOverride(): CatalogOverride | undefined {
  const inline = context("baseModelCatalog");
  const file = text("baseModelCatalogFile");
  if (inline !== undefined && inline !== "" && file) {
    throw new Error("Set the context baseModelCatalog or baseModelCatalogFile, not both");
  }
  let override = inline;
  if (file) override = parseJson(readFileSync(resolve(file), "utf8"), `baseModelCatalogFile ${file}`);
  else if (inline === "") override = undefined;
  // `-c baseModelCatalog='{…}'` arrives as text, a cdk.json value as the object itself.
  else if (typeof inline === "string") override = parseJson(inline, "context baseModelCatalog");
  return override as CatalogOverride | undefined;
}

const capacity = (method: "lora" | "full") =>
  defined({
    instanceTypes: list(`${method}InstanceTypes`),
    gpus: num(`${method}Gpus`),
    vcpus: num(`${method}Vcpus`),
    memoryGiB: num(`${method}MemoryGiB`),
    maxvCpus: num(`${method}MaxVcpus`),
    spot: bool(`${method}Spot`),
  });

new PlatformStack(app, `${prefix}-platform`, {
  prefix,
  ...(alarmEmail ? { alarmEmail } : {}),
  catalogOverride: catalogOverride(),
  training: defined({
    trainerImageUri: text("trainerImageUri"),
    capacity: { lora: capacity("lora"), full: capacity("full") },
    multiNode: defined({ instanceTypes: list("multiNodeInstanceTypes"), maxNodes: num("multiNodeMaxNodes") }),
    timeoutHours: num("trainingTimeoutHours"),
    volumeGiB: num("trainingVolumeGiB"),
    dispatcherConcurrency: num("dispatcherConcurrency"),
  }),
  inference: defined({
    endpointUrl: text("inferenceEndpointUrl"),
    servers: list("inferenceServers"),
    imageUri: text("inferenceImageUri"),
    instanceType: text("inferenceInstanceType"),
  }),
  ...defined({ chatRateLimitPerMinute: num("chatRateLimitPerMinute") }),
  ...defined({ chatTokensPerMinute: num("chatTokensPerMinute") }),
  deployments: defined({
    perTenant: num("deploymentsPerTenant"),
    timeoutMinutes: num("deploymentTimeoutMinutes"),
  }),
  quotas: defined({
    concurrentJobs: num("tenantMaxConcurrentJobs"),
    storedBytes: num("tenantMaxStoredBytes"),
    files: num("tenantMaxFiles"),
  }),
  tenantLimits: defined({
    requestsPerSecond: num("tenantRequestsPerSecond"),
    burst: num("tenantBurst"),
    requestsPerDay: num("tenantRequestsPerDay"),
  }),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description: "Self-hosted LLM fine-tuning platform (files, fine-tuning jobs, chat completions)",
});

if (app.node.tryGetContext("nag") !== "false" && app.node.tryGetContext("nag") !== false) {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  Validations.of(app).addPlugins(new ServerlessChecks(app, { verbose: true }));
}
