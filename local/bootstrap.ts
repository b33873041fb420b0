import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import {
  BUCKETS,
  type BucketId,
  dlqName,
  NOTIFICATIONS,
  physicalName,
  QUEUES,
  type QueueId,
  TABLES,
  type TableDefinition,
  type TableId,
} from "../infra/resources/definitions.ts";

export interface BootstrapClients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly dynamo: DynamoDBClient;
}

export interface BootstrappedResources {
  readonly prefix: string;
  readonly tables: Record<TableId, string>;
  readonly buckets: Record<BucketId, string>;
  readonly queueUrls: Record<QueueId, string>;
  readonly dlqUrls: Record<QueueId, string>;
}

/**
 * Creates in LocalStack (or any endpoint) the same tables, buckets and queues the CDK app creates, from
 * the same definitions. Idempotent: existing resources are kept, so restarting the local platform
 * loses nothing.
 */
export async function bootstrapResources(
  clients: BootstrapClients,
  prefix: string,
): Promise<BootstrappedResources> {
  const tables = {} as Record<TableId, string>;
  for (const def of TABLES) tables[def.id] = await ensureTable(clients.dynamo, prefix, def);

  const buckets = {} as Record<BucketId, string>;
  for (const def of BUCKETS) {
    const name = physicalName(prefix, def.id);
    await ensureBucket(clients.s3, name);
    if (def.versioned) {
      await clients.s3.send(
        new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: "Enabled" } }),
      );
    }
    buckets[def.id] = name;
  }

  const queueUrls = {} as Record<QueueId, string>;
  const dlqUrls = {} as Record<QueueId, string>;
  for (const def of QUEUES) {
    const dlq = await clients.sqs.send(
      new CreateQueueCommand({
        QueueName: dlqName(prefix, def.id),
        Attributes: { MessageRetentionPeriod: String(def.dlqRetentionPeriodSeconds) },
      }),
    );
    const dlqArn = await queueArn(clients.sqs, dlq.QueueUrl!);
    const queue = await clients.sqs.send(
      new CreateQueueCommand({
        QueueName: physicalName(prefix, def.id),
        Attributes: {
          VisibilityTimeout: String(def.visibilityTimeoutSeconds),
          MessageRetentionPeriod: String(def.retentionPeriodSeconds),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: dlqArn,
            maxReceiveCount: def.maxReceiveCount,
          }),
        },
      }),
    );
    queueUrls[def.id] = queue.QueueUrl!;
    dlqUrls[def.id] = dlq.QueueUrl!;
  }
  for (const notification of NOTIFICATIONS) {
    await clients.s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: buckets[notification.bucket],
        NotificationConfiguration: {
          QueueConfigurations: [
            {
              QueueArn: await queueArn(clients.sqs, queueUrls[notification.queue]),
              Events: ["s3:ObjectCreated:*"],
              Filter: {
                Key: {
                  FilterRules: [
                    { Name: "prefix", Value: notification.prefix },
                    ...(notification.suffix ? [{ Name: "suffix" as const, Value: notification.suffix }] : []),
                  ],
                },
              },
            },
          ],
        },
      }),
    );
  }
  return { prefix, tables, buckets, queueUrls, dlqUrls };
}

/** The CreateTable request for a definition; exported so tests can compare it with the template. */
export function createTableInput(prefix: string, def: TableDefinition): CreateTableCommandInput {
  const keys = [
    def.partitionKey,
    def.sortKey,
    ...def.globalSecondaryIndexes.flatMap((i) => [i.partitionKey, i.sortKey]),
  ];
  const attributes = new Map<string, string>();
  for (const key of keys) if (key) attributes.set(key.name, key.type);
  return {
    TableName: physicalName(prefix, def.id),
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({
      AttributeName,
      AttributeType: AttributeType as "S" | "N",
    })),
    KeySchema: [
      { AttributeName: def.partitionKey.name, KeyType: "HASH" },
      ...(def.sortKey ? [{ AttributeName: def.sortKey.name, KeyType: "RANGE" as const }] : []),
    ],
    ...(def.globalSecondaryIndexes.length
      ? {
          GlobalSecondaryIndexes: def.globalSecondaryIndexes.map((index) => ({
            IndexName: index.indexName,
            KeySchema: [
              { AttributeName: index.partitionKey.name, KeyType: "HASH" as const },
              ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: "RANGE" as const }] : []),
            ],
            Projection: { ProjectionType: index.projection },
          })),
        }
      : {}),
    ...(def.stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: def.stream } } : {}),
    // No SSESpecification: LocalStack answers it with a 500 (it would need KMS) after creating the table.
  };
}

async function ensureTable(dynamo: DynamoDBClient, prefix: string, def: TableDefinition): Promise<string> {
  const name = physicalName(prefix, def.id);
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: name }));
    return name;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  try {
    await dynamo.send(new CreateTableCommand(createTableInput(prefix, def)));
  } catch (error) {
    // Another process (a parallel test file, a second `npm start`) created it first.
    if ((error as { name?: string }).name !== "ResourceInUseException") throw error;
  }
  if (def.timeToLiveAttribute) {
    await dynamo.send(
      new UpdateTimeToLiveCommand({
        TableName: name,
        TimeToLiveSpecification: { AttributeName: def.timeToLiveAttribute, Enabled: true },
      }),
    );
  }
  return name;
}

async function ensureBucket(s3: S3Client, name: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: name }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket: name }));
  }
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
  );
  return attributes.Attributes!.QueueArn!;
}
