import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { Logger } from "@aws-lambda-powertools/logger";
import { BatchClient } from "@aws-sdk/client-batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { documentClient } from "../aws/clients.ts";
import { requiredEnv } from "../aws/env.ts";
import { JobsRepository } from "../aws/jobs-repository.ts";
import { BatchTrainingRunner, type TrainingRunner } from "../aws/training-runner.ts";
import { CATALOG_OVERRIDE_ENV, catalogFromEnv } from "../core/catalog/base-models.ts";
import { TRAINING_QUEUE_MAX_RECEIVES, trainingMessageSchema } from "../core/jobs/dispatch.ts";
import { type DispatchDependencies, dispatchJob } from "./dispatch.ts";

const logger = new Logger({ serviceName: "dispatcher" });

/** The dispatcher's dependencies from the environment; `runner` is AWS Batch unless given (local platform). */
export function dispatcherDependencies(runner?: TrainingRunner): DispatchDependencies {
  return {
    jobs: new JobsRepository(documentClient(), {
      jobs: requiredEnv("JOBS_TABLE"),
      events: requiredEnv("EVENTS_TABLE"),
      models: requiredEnv("MODELS_TABLE"),
    }),
    runner:
      runner ??
      new BatchTrainingRunner(new BatchClient({}), {
        jobQueues: JSON.parse(requiredEnv("BATCH_JOB_QUEUES")),
        jobDefinitions: JSON.parse(requiredEnv("BATCH_JOB_DEFINITIONS")),
        multiNode: {
          jobQueue: requiredEnv("BATCH_MULTINODE_JOB_QUEUE"),
          // Instance type → job definition ARN.
          jobDefinitions: JSON.parse(requiredEnv("BATCH_MULTINODE_JOB_DEFINITIONS")),
        },
      }),
    catalog: catalogFromEnv(process.env[CATALOG_OVERRIDE_ENV]),
    locations: {
      datasetsBucket: requiredEnv("DATASETS_BUCKET"),
      artifactsBucket: requiredEnv("ARTIFACTS_BUCKET"),
      jobsTable: requiredEnv("JOBS_TABLE"),
      eventsTable: requiredEnv("EVENTS_TABLE"),
    },
    log: (message, details) => logger.warn(message, details),
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
