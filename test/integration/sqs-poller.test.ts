import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { SqsPoller } from "../../local/platform/sqs-poller.ts";
import { localClients, uniquePrefix } from "./aws.ts";

/**
 * The local stand-in for Lambda's SQS event source must not lose a message to a stop: a restarted
 * platform sends its first messages (resumed jobs, reloaded deployments) right after the previous
 * poller stopped, and a receive that poller still had in flight must not keep them.
 */
describe("SqsPoller.stop", () => {
  it("hands back a message its last receive got after the stop, visible at once", async () => {
    const { sqs } = localClients();
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: uniquePrefix("poller-stop"),
        // As long as the platform's queues: a message kept by a dead receive would stay hidden for minutes.
        Attributes: { VisibilityTimeout: "300" },
      }),
    );
    const handled: string[] = [];
    for (let round = 0; round < 5; round++) {
      const poller = new SqsPoller({
        sqs,
        queueUrl: QueueUrl!,
        queueArn: "arn:aws:sqs:us-east-1:000000000000:poller-stop",
        handler: async (event) => {
          handled.push(...event.Records.map((r) => r.body));
          return { batchItemFailures: [] };
        },
      });
      poller.start();
      // Let its first long poll begin, then stop it and send while that receive may still be waiting.
      await new Promise((r) => setTimeout(r, 300));
      const stopping = poller.stop();
      const body = `after-stop-${round}`;
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
      await stopping;
      if (handled.includes(body)) continue; // the stopping poller handled it before it saw the stop
      const { Messages } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 3, MaxNumberOfMessages: 10 }),
      );
      expect(Messages?.map((m) => m.Body)).toEqual([body]);
      // Gone for good: deleted by the next "poller", as the handler's success would.
      await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages![0]!.ReceiptHandle }));
    }
  });
});
