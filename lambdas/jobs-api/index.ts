import type { APIGatewayProxyEvent } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { batchClient, documentClient, s3Client, sqsClient } from "../aws/clients.ts";
import { DeploymentsRepository, SqsDeploymentQueue } from "../aws/deployments-repository.ts";
import { bucketName, configEnv, jobTables, queueUrl, quotaDefaults, tableName } from "../aws/env.ts";
import { FilesRepository } from "../aws/files-repository.ts";
import { JobsRepository } from "../aws/jobs-repository.ts";
import { ObjectStore } from "../aws/object-store.ts";
import { observability, recordJobCreated, recordJobOutcome } from "../aws/observability.ts";
import { quotasReader, TenantSettingsRepository, unfinishedJobs } from "../aws/tenant-settings-repository.ts";
import { SqsTrainingQueue } from "../aws/training-queue.ts";
import { BatchTrainingRunner, type TrainingRunner } from "../aws/training-runner.ts";
import { catalogFromEnv } from "../core/catalog/base-models.ts";
import { catalogGuard } from "../core/catalog/code-conflicts.ts";
import { deploymentSettings } from "../core/deployments/settings.ts";
import { handleApiEvent } from "../core/http/api-gateway.ts";
import type { HttpResponse } from "../core/http/response.ts";
import { Router } from "../core/http/router.ts";
import { instanceTypesFromEnv } from "../core/jobs/resources.ts";
import { jobsRoutes } from "./routes.ts";

const { logger, metrics } = observability(SERVICES.jobsApi);
const logError = (message: string, details: Record<string, unknown>) => logger.error(message, details);

/** The jobs API's router over the environment's tables; `runner` is AWS Batch unless given (local platform). */
export function createJobsRouter(runner?: TrainingRunner): Router {
  const jobs = new JobsRepository(documentClient(), {
    ...jobTables(),
    files: tableName("files"),
    idempotency: tableName("idempotency"),
  });
  const catalog = catalogFromEnv(configEnv("catalogOverride"));
  const instanceTypes = instanceTypesFromEnv(configEnv("trainingInstanceTypes"));
  const settings = deploymentSettings({
    perTenant: configEnv("deploymentsPerTenant"),
    timeoutMinutes: configEnv("deploymentTimeoutMinutes"),
  });
  return new Router(
    jobsRoutes({
      jobs,
      files: new FilesRepository(documentClient(), tableName("files")),
      // Job creation and resume both queue a job for the dispatcher.
      queue: new SqsTrainingQueue(sqsClient(), queueUrl("training")),
      // Cancel and pause only terminate: the job queues and definitions are the dispatcher's business.
      runner: runner ?? new BatchTrainingRunner(batchClient()),
      artifacts: new ObjectStore(s3Client(), bucketName("artifacts")),
      catalog,
      ...(instanceTypes ? { instanceTypes } : {}),
      deployments: new DeploymentsRepository(documentClient(), tableName("models")),
      deploymentQueue: new SqsDeploymentQueue(sqsClient(), queueUrl("deployments")),
      deploymentsEnabled: configEnv("deploymentsEnabled") === "true",
      deploymentsPerTenant: settings.deploymentsPerTenant,
      deploymentTimeoutSeconds: settings.deploymentTimeoutSeconds,
      quotas: {
        quotasOf: quotasReader(
          new TenantSettingsRepository(documentClient(), tableName("tenants")),
          quotaDefaults(),
        ),
        unfinishedJobs: (tenantId) => unfinishedJobs(documentClient(), jobTables().jobs, tenantId),
      },
      ready: catalogGuard(catalog, async (code) => (await jobs.getModel(code)) !== undefined, logError),
      record: {
        created: (job) => recordJobCreated(metrics, job),
        cancelled: (job) => recordJobOutcome(metrics, { outcome: "cancelled", method: job.method }),
      },
    }),
  );
}

let router: Router | undefined;

/** `/v4/fine_tuning/jobs…` and `/v4/models…` behind the API key authorizer. */
export async function handler(event: APIGatewayProxyEvent): Promise<HttpResponse> {
  router ??= createJobsRouter();
  return handleApiEvent(router, event, logError);
}

/** For the local platform: the same handler with another training runner. */
export function handlerWith(runner: TrainingRunner) {
  const local = createJobsRouter(runner);
  return (event: APIGatewayProxyEvent) => handleApiEvent(local, event, logError);
}
