import { readdirSync, readFileSync, statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import type { Context, S3EventRecord, SQSEvent } from "aws-lambda";
import { BUCKETS, type BucketId, CONFIG_ENV, physicalName } from "../../infra/resources/definitions.ts";
import { tokenRateFromEnv } from "../../lambdas/aws/chat-rate-repository.ts";
import { documentClient, dynamoClient, s3Client, sqsClient } from "../../lambdas/aws/clients.ts";
import { configEnv } from "../../lambdas/aws/env.ts";
import { getModelRecord } from "../../lambdas/aws/model-lookup.ts";
import { UsageRepository } from "../../lambdas/aws/usage-repository.ts";
import { createChatService } from "../../lambdas/chat/local.ts";
import { chatDependenciesFromEnv } from "../../lambdas/chat/service.ts";
import { catalogFromEnv } from "../../lambdas/core/catalog/base-models.ts";
import { checkCatalogAgainstCodes } from "../../lambdas/core/catalog/code-conflicts.ts";
import { jobArtifactKeys, resultsFileObjectKey } from "../../lambdas/core/contract.ts";
import type { DeploymentRuntime } from "../../lambdas/core/deployments/deployment.ts";
import { resultsFileId } from "../../lambdas/core/files/file-record.ts";
import { deployerDependencies } from "../../lambdas/deployer/dependencies.ts";
import { type BootstrappedResources, bootstrapResources } from "../bootstrap.ts";
import { allowBrowserUploads, loadConsoleSite, serveConsole } from "./console-site.ts";
import { functionEnvironment, localObservabilityEnvironment } from "./environment.ts";
import { createGateway } from "./gateway.ts";
import { LocalBatch } from "./local-batch.ts";
import { LocalDeploymentRuntime } from "./local-deployments.ts";
import { startLocalWebhooks, webhookEnvironment } from "./local-webhooks.ts";
import { ObjectMirror } from "./object-mirror.ts";
import { resumeUnfinishedWork } from "./resume.ts";
import { type SqsHandler, SqsPoller } from "./sqs-poller.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/**
 * The trainer image's command (its launcher), run from the venv `batch-images/trainer/scripts/setup-venv.sh`
 * makes. `FT_LOCAL_NPROC` (default 1) in the platform's environment reaches it: with 2 or more, every job
 * trains under torchrun with that many CPU processes (gloo), the distributed path of a GPU cluster.
 */
export const DEFAULT_TRAINER_COMMAND: readonly string[] = [
  join(REPO_ROOT, "batch-images/trainer/.venv/bin/python"),
  "-m",
  "ft_trainer.launch",
];

export interface LocalPlatform {
  /** e.g. http://localhost:8787/v4 */
  readonly baseUrl: string;
  /** The console's address (`http://localhost:{port}/`) when {@link PlatformOptions.console} is set. */
  readonly consoleUrl?: string;
  readonly resources: BootstrappedResources;
  readonly batch: LocalBatch;
  stop(): Promise<void>;
}

export interface PlatformOptions {
  /** Prefix of the local resources; `ft` for `npm start`, a fresh one per test file. */
  readonly prefix: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly log?: (line: string) => void;
  /** The trainer command the local Batch runner starts per job; the trainer's entrypoint in its venv by default. */
  readonly trainerCommand?: readonly string[];
  /** Where runs keep their scratch space and logs; `.cache/local-batch/{prefix}` by default. */
  readonly workDir?: string;
  /** Directories `{name}/` of base model weights, uploaded to `s3://{artifacts}/base-models/{name}/`. */
  readonly baseModelsDir?: string;
  /** Training runs at once (default 1). */
  readonly trainingConcurrency?: number;
  /** The OpenAI-compatible inference server chat relays to (`…/v1`); without one, chat answers 503. */
  readonly inferenceUrl?: string;
  /**
   * Keep the platform's S3 objects in this directory and pick up unfinished work at start (files to
   * validate, jobs to run or resume, deployments to load again): `npm start` passes
   * `.cache/local-state/{prefix}/s3`. DynamoDB survives through LocalStack's own persistence (the
   * harness's `stateDir`). Unset (tests): nothing is kept, nothing is resumed.
   */
  readonly stateDir?: string;
  /** Seconds between two copies of new S3 objects to `stateDir` (default 3). */
  readonly stateSyncSeconds?: number;
  /**
   * Serve the console (web/console, the 体验中心) at `/` on the API's port: `true` builds it in memory
   * at start (about a second, never stale), a path serves a folder `npm run build:console` made. GET
   * and HEAD outside `/v4` only; the API's answers do not change. Unset: the API alone.
   */
  readonly console?: true | string;
}

/**
 * The whole platform in this process, against the LocalStack at AWS_ENDPOINT_URL: the same resources
 * as the CDK app, the gateway in front of the same handlers, and pollers feeding the SQS consumers.
 * Handlers read their configuration at import, so one platform runs per process.
 */
export async function startPlatform(options: PlatformOptions): Promise<LocalPlatform> {
  const log = options.log ?? (() => {});
  if (!process.env.AWS_ENDPOINT_URL) throw new Error("startPlatform needs AWS_ENDPOINT_URL (a LocalStack)");
  // First: Powertools reads it when a handler builds its Metrics.
  Object.assign(process.env, localObservabilityEnvironment());
  // The kept objects go back first, before the buckets notify anyone (bootstrap adds the notifications).
  const mirror = options.stateDir
    ? new ObjectMirror({
        s3: s3Client(),
        dir: options.stateDir,
        buckets: Object.fromEntries(BUCKETS.map((b) => [b.id, physicalName(options.prefix, b.id)])) as Record<
          BucketId,
          string
        >,
        log: (line) => log(`state: ${line}`),
      })
    : undefined;
  await mirror?.restore();
  const resources = await bootstrapResources(
    { s3: s3Client(), sqs: sqsClient(), dynamo: dynamoClient() },
    options.prefix,
  );
  // The catalog override, when set, is the process's own: the validator, the jobs API and chat read it.
  Object.assign(process.env, functionEnvironment(resources), {
    ...(options.inferenceUrl
      ? { [CONFIG_ENV.inferenceEndpoints]: JSON.stringify({ "*": options.inferenceUrl }) }
      : {}),
    // A local model loads in seconds: the deployer looks every second, not every 30.
    [CONFIG_ENV.deploymentCheckSeconds]: process.env[CONFIG_ENV.deploymentCheckSeconds] ?? "1",
    // The deployer drives the local inference server (or fails deployments when there is none).
    [CONFIG_ENV.deploymentsEnabled]: "true",
    // Webhooks to http://localhost are allowed here (not in AWS); the DLQ of spent deliveries.
    ...webhookEnvironment(resources),
  });

  // A catalog naming a model a tenant already holds as a code is refused here, before anything serves.
  const findModel = (code: string) => getModelRecord(documentClient(), resources.tables.models, code);
  await checkCatalogAgainstCodes(
    catalogFromEnv(configEnv("catalogOverride")),
    async (code) => (await findModel(code)) !== undefined,
  );

  if (options.baseModelsDir) await uploadBaseModels(options.baseModelsDir, resources.buckets.artifacts, log);

  const [authorizer, filesApi, validator, jobsApi, dispatcher, jobStatus, usageApi, deployer, webhooksApi] =
    await Promise.all([
      import("../../lambdas/authorizer/index.ts"),
      import("../../lambdas/files-api/index.ts"),
      import("../../lambdas/validator/index.ts"),
      import("../../lambdas/jobs-api/index.ts"),
      import("../../lambdas/dispatcher/index.ts"),
      import("../../lambdas/job-status/index.ts"),
      import("../../lambdas/usage-api/index.ts"),
      import("../../lambdas/deployer/index.ts"),
      import("../../lambdas/webhooks-api/index.ts"),
    ]);
  const batch = new LocalBatch({
    command: options.trainerCommand ?? DEFAULT_TRAINER_COMMAND,
    workDir: options.workDir ?? join(REPO_ROOT, ".cache/local-batch", options.prefix),
    concurrency: options.trainingConcurrency ?? 1,
    onStateChange: mirror
      ? async (event) => {
          // A trained model's files are on disk before its record says it is ready.
          const { tenantId, jobId } = event.detail.parameters as { tenantId: string; jobId: string };
          const succeeded = event.detail.status === "SUCCEEDED";
          if (succeeded) await mirror.syncPrefix("artifacts", jobArtifactKeys(tenantId, jobId, "lora").root);
          await jobStatus.handler(event);
          if (succeeded)
            await mirror.syncKeys("datasets", [resultsFileObjectKey(tenantId, resultsFileId(jobId))]);
        }
      : (event) => jobStatus.handler(event),
    log: (line) => log(`batch: ${line}`),
  });
  const jobsHandler = jobsApi.handlerWith(batch);
  const server = createGateway(authorizer.handler, [
    { prefix: "/v4/files", handler: filesApi.handler },
    { prefix: "/v4/fine_tuning", handler: jobsHandler },
    { prefix: "/v4/models", handler: jobsHandler },
    { prefix: "/v4/usage", handler: usageApi.handler },
    { prefix: "/v4/webhooks", handler: webhooksApi.handler },
    createChatService(
      chatDependenciesFromEnv(findModel, process.env, {
        usage: new UsageRepository(documentClient(), resources.tables.usage),
        tokenRate: tokenRateFromEnv(documentClient()),
      }),
    ),
  ]);
  if (options.console) {
    serveConsole(server, await loadConsoleSite(options.console), {
      apiOrigin: () => `http://localhost:${(server.address() as AddressInfo).port}`,
      // Presigned uploads go from the browser straight to the object store.
      uploadOrigin: new URL(process.env.AWS_ENDPOINT_URL).origin,
    });
    await allowBrowserUploads(s3Client(), resources.buckets.datasets);
  }
  await new Promise<void>((resolve) => server.listen(options.port, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  if (mirror) {
    const leftovers = await batch.reapLeftovers();
    if (leftovers) log(`stopped ${leftovers} training processes a previous run left behind`);
    await resumeUnfinishedWork({
      documents: documentClient(),
      sqs: sqsClient(),
      s3: s3Client(),
      resources,
      resumeRun: (runId, submission) => batch.resume(runId, submission),
      catalog: catalogFromEnv(configEnv("catalogOverride")),
      log,
    });
  }

  const pollers = [
    new SqsPoller({
      sqs: sqsClient(),
      queueUrl: resources.queueUrls.validation,
      queueArn: await queueArn(resources.queueUrls.validation),
      handler: mirror ? mirrorUploadsFirst(validator.handler, mirror, log) : validator.handler,
      log: (line) => log(`validator: ${line}`),
    }),
    new SqsPoller({
      sqs: sqsClient(),
      queueUrl: resources.queueUrls.training,
      queueArn: await queueArn(resources.queueUrls.training),
      handler: dispatcher.dispatcherHandler(() => dispatcher.dispatcherDependencies(batch)),
      log: (line) => log(`dispatcher: ${line}`),
    }),
    new SqsPoller({
      sqs: sqsClient(),
      queueUrl: resources.queueUrls.deployments,
      queueArn: await queueArn(resources.queueUrls.deployments),
      handler: deployer.deployerHandler(() =>
        deployerDependencies(
          options.inferenceUrl ? new LocalDeploymentRuntime(options.inferenceUrl) : NO_INFERENCE_SERVER,
        ),
      ),
      log: (line) => log(`deployer: ${line}`),
    }),
  ];
  for (const poller of pollers) poller.start();
  // The jobs and files tables' streams → fan-out → webhook-deliveries queue → delivery, in this process.
  const webhooks = await startLocalWebhooks({
    resources,
    dynamo: dynamoClient(),
    sqs: sqsClient(),
    queueArn,
    log,
  });
  mirror?.start((options.stateSyncSeconds ?? 3) * 1000);
  log(`gateway on http://localhost:${port}/v4, resources prefixed ${options.prefix}`);

  return {
    baseUrl: `http://localhost:${port}/v4`,
    ...(options.console ? { consoleUrl: `http://localhost:${port}/` } : {}),
    resources,
    batch,
    async stop() {
      // The runs first: one the terminal's Ctrl-C reached must not report a failure (it resumes next time).
      await Promise.all([batch.stop(), ...pollers.map((p) => p.stop()), webhooks.stop()]);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await mirror?.stop();
    },
  };
}

/**
 * The validator behind a copy to disk of the objects it is about to validate: a file is `processed`
 * only once its content is kept. A message whose object cannot be copied is retried, not validated.
 */
function mirrorUploadsFirst(
  handler: SqsHandler,
  mirror: ObjectMirror,
  log: (line: string) => void,
): SqsHandler {
  return async (event: SQSEvent, context: Context) => {
    const ready: SQSEvent["Records"] = [];
    const failed: { itemIdentifier: string }[] = [];
    for (const record of event.Records) {
      try {
        const { Records = [] } = JSON.parse(record.body) as { Records?: S3EventRecord[] };
        const keys = Records.filter((r) => r.eventName?.startsWith("ObjectCreated")).map((r) =>
          decodeURIComponent(r.s3.object.key.replace(/\+/g, " ")),
        );
        await mirror.syncKeys("datasets", keys);
        ready.push(record);
      } catch (error) {
        log(`state: upload not kept yet, validation retried: ${(error as Error).message}`);
        failed.push({ itemIdentifier: record.messageId });
      }
    }
    const response = ready.length ? await handler({ Records: ready }, context) : undefined;
    return { batchItemFailures: [...(response?.batchItemFailures ?? []), ...failed] };
  };
}

/** Without a local inference server (tests of the API alone) a deployment fails at once, saying why. */
const NO_INFERENCE_SERVER: DeploymentRuntime = {
  start: async () => {},
  probe: async () => ({ state: "failed", reason: "this local platform runs no inference server" }),
  release: async () => {},
};

async function queueArn(url: string): Promise<string> {
  const { Attributes } = await sqsClient().send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
  );
  return Attributes!.QueueArn!;
}

/** Puts each `{dir}/{name}/` under `base-models/{name}/` of the artifacts bucket, where the catalog points. */
async function uploadBaseModels(dir: string, bucket: string, log: (line: string) => void): Promise<void> {
  for (const name of readdirSync(dir)) {
    const root = join(dir, name);
    if (!statSync(root).isDirectory()) continue;
    const files = walk(root);
    for (const file of files) {
      await s3Client().send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `base-models/${name}/${relative(root, file).split("\\").join("/")}`,
          Body: readFileSync(file),
        }),
      );
    }
    log(`base model ${name}: ${files.length} files in s3://${bucket}/base-models/${name}/`);
  }
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}
