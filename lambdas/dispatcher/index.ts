import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { batchClient, documentClient } from "../aws/clients.ts";
import {
  bucketName,
  configEnv,
  jobTables,
  requiredConfigEnv,
  requiredJsonEnv,
  tableName,
} from "../aws/env.ts";
import { JobsRepository } from "../aws/jobs-repository.ts";
import { observability, recordJobOutcome } from "../aws/observability.ts";
import { type BatchTargets, BatchTrainingRunner, type TrainingRunner } from "../aws/training-runner.ts";
import { catalogFromEnv } from "../core/catalog/base-models.ts";
import { TRAINING_QUEUE_MAX_RECEIVES, trainingMessageSchema } from "../core/jobs/dispatch.ts";
import { type DispatchDependencies, dispatchJob } from "./dispatch.ts";

const { logger, metrics } = observability(SERVICES.dispatcher);

/** The dispatcher's dependencies from the environment; `runner` is AWS Batch unless given (local platform). */
export function dispatcherDependencies(runner?: TrainingRunner): DispatchDependencies {
  return {
    jobs: new JobsRepository(documentClient(), jobTables()),
    runner:
      runner ??
      // The JSON maps are the construct's own output (infra/constructs), not user input.
      new BatchTrainingRunner(batchClient(), {
        jobQueues: requiredJsonEnv("batchJobQueues") as BatchTargets["jobQueues"],
        jobDefinitions: requiredJsonEnv("batchJobDefinitions") as BatchTargets["jobDefinitions"],
        multiNode: {
          jobQueue: requiredConfigEnv("batchMultinodeJobQueue"),
          // Instance type → job definition ARN.
          jobDefinitions: requiredJsonEnv("batchMultinodeJobDefinitions") as Record<string, string>,
        },
      }),
    catalog: catalogFromEnv(configEnv("catalogOverride")),
    locations: {
      datasetsBucket: bucketName("datasets"),
      artifactsBucket: bucketName("artifacts"),
      jobsTable: tableName("jobs"),
      eventsTable: tableName("job-events"),
    },
    log: (message, details) => logger.warn(message, details),
    recordOutcome: (sample) => recordJobOutcome(metrics, sample),
  };
}

/** An SQS handler over the given dependencies, reporting partial batch failures. */
export function dispatcherHandler(deps: () => DispatchDependencies) {
  const processor = new BatchProcessor(EventType.SQS);
  let resolved: DispatchDependencies | undefined;
  async function recordHandler(record: SQSRecord): Promise<void> {
    resolved ??= deps();
    const parsed = trainingMessageSchema.safeParse(JSON.parse(record.body));
    if (!parsed.success) {
      // Redelivery would not make it valid: drop it (logged), rather than poison the queue.
      logger.error("malformed training message dropped", { messageId: record.messageId, body: record.body });
      return;
    }
    let outcome: string;
    try {
      // The receive count SQS reports includes this delivery.
      const receives = Number(record.attributes.ApproximateReceiveCount ?? "1");
      outcome = await dispatchJob(parsed.data, resolved, { last: receives >= TRAINING_QUEUE_MAX_RECEIVES });
    } catch (error) {
      logger.warn("dispatch failed; the message will be redelivered", {
        ...parsed.data,
        error: error as Error,
      });
      throw error;
    }
    logger.info("dispatched", { messageId: record.messageId, ...parsed.data, outcome });
  }
  return (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    processPartialResponse(event, recordHandler, processor, { context });
}

/** Training queue → AWS Batch. */
export const handler = dispatcherHandler(() => dispatcherDependencies());
