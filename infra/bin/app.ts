import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks, ServerlessChecks } from "cdk-nag";
import { DEFAULT_PREFIX } from "../resources/definitions.ts";
import { PlatformStack } from "../stacks/platform-stack.ts";

/**
 * The CDK app. Context (cdk.json or `-c key=value`):
 * - `prefix`: prefix of physical names, default `ft`;
 * - `alarmEmail`: an address subscribed to the alarm topic;
 * - `nag`: `false` turns the cdk-nag checks off at synth (the tests always run them).
 *
 * Training (AWS Batch):
 * - `trainerImageUri`: the trainer image in a registry; unset, `cdk deploy` builds `batch-images/trainer`
 *   (Docker needed at deploy only);
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
 *   `fullModelDeployments` (model codes of full-parameter models, one server each), `inferenceImageUri`,
 *   `inferenceInstanceType`;
 * - `chatRateLimitPerMinute`.
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
/** Only the keys whose value is defined (exactOptionalPropertyTypes). */
function defined<T extends Record<string, unknown>>(record: T): Partial<T> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as Partial<T>;
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
    fullModelDeployments: list("fullModelDeployments"),
    imageUri: text("inferenceImageUri"),
    instanceType: text("inferenceInstanceType"),
  }),
  ...defined({ chatRateLimitPerMinute: num("chatRateLimitPerMinute") }),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description: "Self-hosted LLM fine-tuning platform (files, fine-tuning jobs, chat completions)",
});

if (app.node.tryGetContext("nag") !== "false" && app.node.tryGetContext("nag") !== false) {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  Validations.of(app).addPlugins(new ServerlessChecks(app, { verbose: true }));
}
