import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { documentClient, sqsClient } from "../aws/clients.ts";
import { type Env, queueUrl, tableName } from "../aws/env.ts";
import { observability } from "../aws/observability.ts";
import { SqsDeliveryQueue } from "../aws/webhooks-queue.ts";
import { WebhookEndpointsRepository } from "../aws/webhooks-repository.ts";
import { type FanOutDependencies, fanOut } from "../core/webhooks/delivery.ts";
import { type EventSource, eventFromChange, type StatusChange } from "../core/webhooks/events.ts";

const { logger } = observability(SERVICES.webhookFanout);

export interface FanOutContext extends FanOutDependencies {
  /** Table name → the source its stream is (the jobs and files tables). */
  readonly tables: Readonly<Record<string, EventSource>>;
}

export function fanOutDependencies(env: Env = process.env): FanOutContext {
  return {
    endpoints: new WebhookEndpointsRepository(documentClient(), tableName("webhooks", env)),
    queue: new SqsDeliveryQueue(sqsClient(), queueUrl("webhook-deliveries", env)),
    tables: { [tableName("jobs", env)]: "jobs", [tableName("files", env)]: "files" },
  };
}

/** The table name in a stream ARN: `arn:…:table/{name}/stream/{label}`. */
export function tableOfStream(arn: string | undefined): string | undefined {
  return arn?.match(/:table\/([^/]+)\/stream\//)?.[1];
}

/** A stream record as a status change, or undefined when it is from neither table. */
export function toStatusChange(
  record: DynamoDBRecord,
  tables: Readonly<Record<string, EventSource>>,
): StatusChange | undefined {
  const source = tables[tableOfStream(record.eventSourceARN) ?? ""];
  const data = record.dynamodb;
  if (!source || !data?.SequenceNumber) return undefined;
  const image = (value: unknown) => (value ? unmarshall(value as Record<string, AttributeValue>) : undefined);
  const oldImage = image(data.OldImage);
  const newImage = image(data.NewImage);
  return {
    source,
    ...(oldImage ? { oldImage } : {}),
    ...(newImage ? { newImage } : {}),
    sequenceNumber: data.SequenceNumber,
    createdAt: Math.floor(data.ApproximateCreationDateTime ?? Date.now() / 1000),
  };
}

/**
 * A DynamoDB stream handler (jobs and files tables): each status change into an event status becomes
 * one delivery message per subscribed endpoint. Reports the first failed record, from which the
 * stream retries (the records before it are done; the ones after are sent again, with the same ids).
 */
export function fanOutHandler(deps: () => FanOutContext) {
  let resolved: FanOutContext | undefined;
  return async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    resolved ??= deps();
    for (const record of event.Records) {
      try {
        const change = toStatusChange(record, resolved.tables);
        const tenantEvent = change && eventFromChange(change);
        if (!tenantEvent) continue;
        const queued = await fanOut(tenantEvent, resolved);
        logger.info("webhook event", { eventId: tenantEvent.event.id, type: tenantEvent.event.type, queued });
      } catch (error) {
        logger.warn("webhook fan-out failed; the stream retries from this record", { error: error as Error });
        return { batchItemFailures: [{ itemIdentifier: record.dynamodb?.SequenceNumber ?? "" }] };
      }
    }
    return { batchItemFailures: [] };
  };
}

/** jobs and files table streams → webhook-deliveries queue. */
export const handler = fanOutHandler(() => fanOutDependencies());
