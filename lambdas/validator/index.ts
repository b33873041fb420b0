import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { observability } from "../aws/observability.ts";
import { validatorDependenciesFromEnv } from "./dependencies.ts";
import { processS3Notification } from "./process.ts";

const { logger } = observability(SERVICES.validator);
const processor = new BatchProcessor(EventType.SQS);
const deps = validatorDependenciesFromEnv();

async function recordHandler(record: SQSRecord): Promise<void> {
  const outcomes = await processS3Notification(record.body, deps);
  logger.info("validated", { messageId: record.messageId, outcomes });
}

/** SQS → validator, reporting partial batch failures so one bad message does not redeliver the others. */
export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  return processPartialResponse(event, recordHandler, processor, { context });
}
