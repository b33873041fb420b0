import { DescribeTableCommand, type DynamoDBClient, UpdateTableCommand } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "@aws-sdk/client-dynamodb-streams";
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { CONFIG_ENV } from "../../infra/resources/definitions.ts";
import type { BootstrappedResources } from "../bootstrap.ts";
import { SqsPoller } from "./sqs-poller.ts";

/**
 * The local webhook environment: private addresses and http allowed (a receiver on localhost), the
 * dead-letter queue's URL. The operator's own values win (WEBHOOK_ALLOW_PRIVATE=0 tries the AWS rules).
 */
export function webhookEnvironment(
  resources: BootstrappedResources,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string> {
  return {
    [CONFIG_ENV.webhookAllowPrivate]: env[CONFIG_ENV.webhookAllowPrivate] ?? "1",
    [CONFIG_ENV.webhookDeadLetterQueueUrl]: resources.dlqUrls["webhook-deliveries"],
  };
}

type StreamHandler = (
  event: DynamoDBStreamEvent,
) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;

export interface LocalWebhooksOptions {
  readonly resources: BootstrappedResources;
  readonly dynamo: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly queueArn: (url: string) => Promise<string>;
  readonly log: (line: string) => void;
  /** Milliseconds between two reads of a shard with nothing new (default 500). */
  readonly pollMs?: number;
}

export interface LocalWebhooks {
  stop(): Promise<void>;
}

/**
 * The local stand-in for the AWS wiring of webhooks (infra/constructs/webhooks.ts): a reader of the
 * jobs and files tables' streams feeding the same fan-out handler as the Lambda event source mappings
 * (records of a shard in order; a reported failure retries from that record), and a poller feeding
 * the delivery handler from the webhook-deliveries queue. Streams are read from their end at start:
 * changes made while the platform was stopped send no webhook.
 */
export async function startLocalWebhooks(options: LocalWebhooksOptions): Promise<LocalWebhooks> {
  const [fanout, delivery] = await Promise.all([
    import("../../lambdas/webhook-fanout/index.ts"),
    import("../../lambdas/webhook-delivery/index.ts"),
  ]);
  const streams = new DynamoDBStreamsClient({});
  const readers: StreamReader[] = [];
  let ready = 0;
  for (const table of [options.resources.tables.jobs, options.resources.tables.files]) {
    try {
      const { arn, since } = await ensureStream(options.dynamo, streams, table);
      ready = Math.max(ready, since + STREAM_SETTLE_MS);
      readers.push(new StreamReader(streams, arn, fanout.handler, options.pollMs ?? 500, options.log));
    } catch (error) {
      // Webhooks are a notification: the platform runs on without this table's, and says so.
      options.log(`webhooks: ${table}'s changes send no webhooks this run: ${(error as Error).message}`);
    }
  }
  // LocalStack backs a stream with a Kinesis stream that takes a moment to become active; changes made
  // before then are lost. Only a table made just now (a fresh prefix: tests) waits.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, ready - Date.now())));
  const poller = new SqsPoller({
    sqs: options.sqs,
    queueUrl: options.resources.queueUrls["webhook-deliveries"],
    queueArn: await options.queueArn(options.resources.queueUrls["webhook-deliveries"]),
    handler: delivery.handler,
    log: (line) => options.log(`webhook-delivery: ${line}`),
  });
  await Promise.all(
    readers.map((reader) =>
      reader.start().catch((error: Error) => {
        options.log(`webhooks: a stream reader did not start: ${error.message}`);
      }),
    ),
  );
  poller.start();
  return {
    async stop() {
      await Promise.all([poller.stop(), ...readers.map((reader) => reader.stop())]);
    },
  };
}

/** Milliseconds after a stream's creation before LocalStack records into it reliably. */
const STREAM_SETTLE_MS = 3000;

/**
 * The table's stream ARN and when the stream began (epoch ms), enabling the stream on a table made
 * before streams were in its definition (a kept LocalStack from an older `npm start`).
 */
async function ensureStream(
  dynamo: DynamoDBClient,
  streams: DynamoDBStreamsClient,
  table: string,
): Promise<{ arn: string; since: number }> {
  const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: table }));
  if (Table?.StreamSpecification?.StreamEnabled && Table.LatestStreamArn) {
    const alive = await streams.send(new DescribeStreamCommand({ StreamArn: Table.LatestStreamArn })).then(
      () => true,
      (error: Error) => (error.name === "ResourceNotFoundException" ? false : Promise.reject(error)),
    );
    if (alive) return { arn: Table.LatestStreamArn, since: Table.CreationDateTime?.getTime() ?? 0 };
    // A LocalStack restarted on its kept state: the table remembers its stream, the stream is gone.
    // Turned off and on again, the table gets a new one (read from now on).
    await dynamo.send(
      new UpdateTableCommand({ TableName: table, StreamSpecification: { StreamEnabled: false } }),
    );
  }
  const { TableDescription } = await dynamo.send(
    new UpdateTableCommand({
      TableName: table,
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    }),
  );
  return { arn: TableDescription!.LatestStreamArn!, since: Date.now() };
}

/** Reads every shard of one stream and hands its records to the handler, batch by batch. */
class StreamReader {
  private running = false;
  private loop: Promise<void> | undefined;
  /** Shard id → the iterator to read next; null once the shard is closed and read to its end. */
  private readonly iterators = new Map<string, string | null>();

  constructor(
    private readonly client: DynamoDBStreamsClient,
    private readonly arn: string,
    private readonly handler: StreamHandler,
    private readonly pollMs: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Positions every current shard at its end (LATEST), then reads in the background. */
  async start(): Promise<void> {
    await this.discoverShards("LATEST");
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop?.catch(() => {});
  }

  private async discoverShards(position: "LATEST" | "TRIM_HORIZON"): Promise<void> {
    const { StreamDescription } = await this.client.send(new DescribeStreamCommand({ StreamArn: this.arn }));
    for (const shard of StreamDescription?.Shards ?? []) {
      if (this.iterators.has(shard.ShardId!)) continue;
      const { ShardIterator } = await this.client.send(
        new GetShardIteratorCommand({
          StreamArn: this.arn,
          ShardId: shard.ShardId!,
          ShardIteratorType: position,
        }),
      );
      this.iterators.set(shard.ShardId!, ShardIterator ?? null);
    }
  }

  private async run(): Promise<void> {
    let rounds = 0;
    while (this.running) {
      try {
        // New shards (LocalStack rolls them rarely) are read from their start.
        if (++rounds % 20 === 0) await this.discoverShards("TRIM_HORIZON");
        let any = false;
        for (const [shard, iterator] of this.iterators) {
          if (!iterator || !this.running) continue;
          any = (await this.readShard(shard, iterator)) || any;
        }
        if (!any) await new Promise((resolve) => setTimeout(resolve, this.pollMs));
      } catch (error) {
        if (!this.running) return;
        this.log(`webhook-fanout: stream read failed: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  /** One GetRecords and its handling; true when there were records. */
  private async readShard(shard: string, iterator: string): Promise<boolean> {
    const { Records = [], NextShardIterator } = await this.client.send(
      new GetRecordsCommand({ ShardIterator: iterator, Limit: 100 }),
    );
    if (Records.length === 0) {
      this.iterators.set(shard, NextShardIterator ?? null);
      return false;
    }
    // The SDK answers Dates where a Lambda event carries epoch seconds.
    const records = Records.map((record) => ({
      ...record,
      eventSourceARN: this.arn,
      dynamodb: {
        ...record.dynamodb,
        ApproximateCreationDateTime: Math.floor(
          (record.dynamodb?.ApproximateCreationDateTime?.getTime() ?? Date.now()) / 1000,
        ),
      },
    })) as unknown as DynamoDBRecord[];
    const { batchItemFailures } = await this.handler({ Records: records });
    const failed = batchItemFailures[0]?.itemIdentifier;
    if (failed === undefined) {
      this.iterators.set(shard, NextShardIterator ?? null);
      return true;
    }
    // As a Lambda event source mapping does: the batch is retried from the failed record.
    this.log(`webhook-fanout: record ${failed} failed; retrying from it`);
    const { ShardIterator } = await this.client.send(
      new GetShardIteratorCommand({
        StreamArn: this.arn,
        ShardId: shard,
        ShardIteratorType: "AT_SEQUENCE_NUMBER",
        SequenceNumber: failed,
      }),
    );
    this.iterators.set(shard, ShardIterator ?? null);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return true;
  }
}
