import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;

export interface PollerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly handler: SqsHandler;
  readonly batchSize?: number;
  /** Seconds before a failed message is retried; the DLQ takes it after maxReceiveCount. */
  readonly retryDelaySeconds?: number;
  readonly log?: (line: string) => void;
}

/**
 * The local stand-in for a Lambda SQS event source mapping: long-polls, invokes the same handler with
 * the same event, deletes the messages that succeeded and makes the reported failures visible again.
 */
export class SqsPoller {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly options: PollerOptions) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /**
   * Lets the receive in flight finish (it waits at most WAIT_SECONDS) and hands back what it got, rather
   * than aborting it: an aborted long poll still takes a message on LocalStack's side, which would then
   * stay invisible for the queue's visibility timeout although nobody handles it (a restarted platform's
   * first messages were lost that way). The abort is kept for a receive that never answers.
   */
  async stop(): Promise<void> {
    this.running = false;
    const stuck = setTimeout(() => this.abort.abort(), (WAIT_SECONDS + 4) * 1000);
    await this.loop?.catch(() => {});
    clearTimeout(stuck);
  }

  private async release(receiptHandles: readonly string[]): Promise<void> {
    const { sqs, queueUrl } = this.options;
    await Promise.all(
      receiptHandles.map((handle) =>
        sqs
          .send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: queueUrl,
              ReceiptHandle: handle,
              VisibilityTimeout: 0,
            }),
          )
          .catch(() => {}),
      ),
    );
  }

  private async run(): Promise<void> {
    const { sqs, queueUrl } = this.options;
    while (this.running) {
      try {
        const { Messages } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: this.options.batchSize ?? 5,
            WaitTimeSeconds: WAIT_SECONDS,
            AttributeNames: ["All"],
          }),
          { abortSignal: this.abort.signal },
        );
        if (!Messages?.length) continue;
        if (!this.running) {
          // Stopped while this receive waited: visible again at once, for whoever polls next.
          await this.release(Messages.map((m) => m.ReceiptHandle!));
          return;
        }
        const event: SQSEvent = {
          Records: Messages.map((m) => ({
            messageId: m.MessageId!,
            receiptHandle: m.ReceiptHandle!,
            body: m.Body ?? "",
            attributes: (m.Attributes ?? {}) as SQSEvent["Records"][number]["attributes"],
            messageAttributes: {},
            md5OfBody: m.MD5OfBody ?? "",
            eventSource: "aws:sqs",
            eventSourceARN: this.options.queueArn,
            awsRegion: process.env.AWS_REGION ?? "us-east-1",
          })),
        };
        let failed = new Set<string>();
        try {
          const response = await this.options.handler(event, localContext());
          failed = new Set(response?.batchItemFailures.map((f) => f.itemIdentifier) ?? []);
        } catch (error) {
          // A thrown handler fails the whole batch, as with Lambda.
          this.options.log?.(`handler failed: ${(error as Error).message}`);
          failed = new Set(Messages.map((m) => m.MessageId!));
        }
        for (const message of Messages) {
          if (failed.has(message.MessageId!)) {
            await sqs.send(
              new ChangeMessageVisibilityCommand({
                QueueUrl: queueUrl,
                ReceiptHandle: message.ReceiptHandle,
                VisibilityTimeout: this.options.retryDelaySeconds ?? 5,
              }),
            );
          } else {
            await sqs.send(
              new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }),
            );
          }
        }
      } catch (error) {
        if (!this.running) return;
        this.options.log?.(`poll failed: ${(error as Error).message}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}

/** Long-poll wait of each receive: short, so that a stop never waits long for the one in flight. */
const WAIT_SECONDS = 1;

function localContext(): Context {
  return {
    functionName: "local",
    awsRequestId: crypto.randomUUID(),
    getRemainingTimeInMillis: () => 300_000,
  } as unknown as Context;
}
