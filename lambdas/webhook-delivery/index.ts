import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { SERVICES } from "../../infra/resources/definitions.ts";
import { documentClient, sqsClient } from "../aws/clients.ts";
import { configEnv, type Env, queueUrl, requiredConfigEnv, tableName } from "../aws/env.ts";
import { observability } from "../aws/observability.ts";
import { SqsDeliveryQueue } from "../aws/webhooks-queue.ts";
import { WebhookDeliveriesRepository, WebhookEndpointsRepository } from "../aws/webhooks-repository.ts";
import { type DeliveryDependencies, deliver } from "../core/webhooks/delivery.ts";
import { parseDeliveryMessage } from "../core/webhooks/message.ts";
import { retryScheduleFromEnv } from "../core/webhooks/retry.ts";
import { HttpWebhookSender } from "./http-sender.ts";

const { logger } = observability(SERVICES.webhookDelivery);

/** The delivery function's dependencies from the environment (CDK or the local platform). */
export function deliveryDependencies(env: Env = process.env): DeliveryDependencies {
  const policy = { allowPrivate: configEnv("webhookAllowPrivate", env) === "1" };
  return {
    endpoints: new WebhookEndpointsRepository(documentClient(), tableName("webhooks", env)),
    log: new WebhookDeliveriesRepository(documentClient(), tableName("webhook-deliveries", env)),
    queue: new SqsDeliveryQueue(
      sqsClient(),
      queueUrl("webhook-deliveries", env),
      requiredConfigEnv("webhookDeadLetterQueueUrl", env),
    ),
    sender: new HttpWebhookSender(policy),
    schedule: retryScheduleFromEnv(env),
    now: () => Math.floor(Date.now() / 1000),
  };
}

/**
 * An SQS handler over the given dependencies: one attempt per message (delivery.ts). A message whose
 * attempt could not be made or recorded fails alone and is redelivered; after the queue's
 * maxReceiveCount it lands in the DLQ.
 */
export function deliveryHandler(deps: () => DeliveryDependencies) {
  const processor = new BatchProcessor(EventType.SQS);
  let resolved: DeliveryDependencies | undefined;
  async function recordHandler(record: SQSRecord): Promise<void> {
    resolved ??= deps();
    const message = parseDeliveryMessage(record.body);
    if (!message) {
      logger.error("malformed webhook delivery message dropped", { messageId: record.messageId });
      return;
    }
    const ids = { eventId: message.event.id, endpointId: message.endpointId, attempt: message.attempt };
    try {
      const result = await deliver(message, resolved);
      logger.info("webhook delivery attempt", { ...ids, ...result });
    } catch (error) {
      logger.warn("webhook delivery failed; the message will be redelivered", {
        ...ids,
        error: error as Error,
      });
      throw error;
    }
  }
  return (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    processPartialResponse(event, recordHandler, processor, { context });
}

/** webhook-deliveries queue → signed POSTs to tenants' endpoints. */
export const handler = deliveryHandler(() => deliveryDependencies());
