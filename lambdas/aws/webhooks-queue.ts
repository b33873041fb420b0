import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { DeliveryMessage, DeliveryQueue } from "../core/webhooks/ports.ts";

/** The `webhook-deliveries` queue and its DLQ, on SQS. */
export class SqsDeliveryQueue implements DeliveryQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    /** Only the delivery function dead-letters; the API and the fan-out only send. */
    private readonly deadLetterQueueUrl?: string,
  ) {}

  async send(message: DeliveryMessage, delaySeconds: number): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(message),
        DelaySeconds: Math.max(0, Math.min(900, Math.round(delaySeconds))),
      }),
    );
  }

  async deadLetter(message: DeliveryMessage, reason: string): Promise<void> {
    if (!this.deadLetterQueueUrl) throw new Error("This delivery queue has no dead-letter queue URL.");
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.deadLetterQueueUrl,
        MessageBody: JSON.stringify({ ...message, deadLetterReason: reason }),
      }),
    );
  }
}
