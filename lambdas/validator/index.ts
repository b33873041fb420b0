import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { Logger } from "@aws-lambda-powertools/logger";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { documentClient, s3Client } from "../aws/clients.ts";
import { requiredEnv } from "../aws/env.ts";
import { FilesRepository } from "../aws/files-repository.ts";
import { ObjectStore } from "../aws/object-store.ts";
import { validateDataset } from "../core/datasets/validate.ts";
import { processS3Notification } from "./process.ts";

const logger = new Logger({ serviceName: "validator" });
const processor = new BatchProcessor(EventType.SQS);
const contextLimits = JSON.parse(process.env.CONTEXT_LIMITS ?? "{}") as Record<string, number>;
const deps = {
  files: new FilesRepository(documentClient(), requiredEnv("FILES_TABLE")),
  datasets: new ObjectStore(s3Client(), requiredEnv("DATASETS_BUCKET")),
  validate: (source: ReadableStream<Uint8Array>) => validateDataset(source, { contextLimits }),
  log: (level: "info" | "warn", message: string, details: Record<string, unknown>) =>
    logger[level](message, details),
};

async function recordHandler(record: SQSRecord): Promise<void> {
  const outcomes = await processS3Notification(record.body, deps);
  logger.info("validated", { messageId: record.messageId, outcomes });
}

/** SQS → validator, reporting partial batch failures so one bad message does not redeliver the others. */
export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  return processPartialResponse(event, recordHandler, processor, { context });
}
