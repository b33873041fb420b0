import { Logger } from "@aws-lambda-powertools/logger";
import { BatchClient } from "@aws-sdk/client-batch";
import type { APIGatewayProxyEvent } from "aws-lambda";
import { documentClient, s3Client, sqsClient } from "../aws/clients.ts";
import { requiredEnv } from "../aws/env.ts";
import { FilesRepository } from "../aws/files-repository.ts";
import { JobsRepository } from "../aws/jobs-repository.ts";
import { ObjectStore } from "../aws/object-store.ts";
import { TrainingQueue } from "../aws/training-queue.ts";
import { BatchTrainingRunner, type TrainingRunner } from "../aws/training-runner.ts";
import { CATALOG_OVERRIDE_ENV, catalogFromEnv } from "../core/catalog/base-models.ts";
import { catalogGuard } from "../core/catalog/code-conflicts.ts";
import { handleApiEvent } from "../core/http/api-gateway.ts";
import type { HttpResponse } from "../core/http/response.ts";
import { Router } from "../core/http/router.ts";
import { instanceTypesFromEnv, TRAINING_INSTANCE_TYPES_ENV } from "../core/jobs/resources.ts";
import { jobsRoutes } from "./routes.ts";

const logger = new Logger({ serviceName: "jobs-api" });

/** The jobs API's router over the environment's tables; `runner` is AWS Batch unless given (local platform). */
export function createJobsRouter(runner?: TrainingRunner): Router {
  const jobs = new JobsRepository(documentClient(), {
    jobs: requiredEnv("JOBS_TABLE"),
    events: requiredEnv("EVENTS_TABLE"),
    models: requiredEnv("MODELS_TABLE"),
    files: requiredEnv("FILES_TABLE"),
    idempotency: requiredEnv("IDEMPOTENCY_TABLE"),
  });
  const catalog = catalogFromEnv(process.env[CATALOG_OVERRIDE_ENV]);
  const instanceTypes = instanceTypesFromEnv(process.env[TRAINING_INSTANCE_TYPES_ENV]);
  return new Router(
    jobsRoutes({
      jobs,
      files: new FilesRepository(documentClient(), requiredEnv("FILES_TABLE")),
      queue: new TrainingQueue(sqsClient(), requiredEnv("TRAINING_QUEUE_URL")),
      // Cancel only terminates: the job queues and definitions are the dispatcher's business.
      runner: runner ?? new BatchTrainingRunner(new BatchClient({})),
      artifacts: new ObjectStore(s3Client(), requiredEnv("ARTIFACTS_BUCKET")),
      catalog,
      ...(instanceTypes ? { instanceTypes } : {}),
      ready: catalogGuard(
        catalog,
        async (code) => (await jobs.getModel(code)) !== undefined,
        (message, details) => logger.error(message, details),
      ),
    }),
  );
}

let router: Router | undefined;

/** `/v4/fine_tuning/jobs…` and `/v4/models…` behind the API key authorizer. */
export async function handler(event: APIGatewayProxyEvent): Promise<HttpResponse> {
  router ??= createJobsRouter();
  return handleApiEvent(router, event, (message, details) => logger.error(message, details));
}

/** For the local platform: the same handler with another training runner. */
export function handlerWith(runner: TrainingRunner) {
  const local = createJobsRouter(runner);
  return (event: APIGatewayProxyEvent) =>
    handleApiEvent(local, event, (message, details) => logger.error(message, details));
}
