/**
 * A quick check that a LocalStack does what the platform needs, with the AWS SDK v3:
 *   tsx local/localstack/with-localstack.ts tsx local/localstack/smoke.ts
 * (or with AWS_ENDPOINT_URL set, against any LocalStack). Prints one line per check and exits non-zero
 * if one fails.
 */
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const endpoint = process.env.AWS_ENDPOINT_URL;
if (!endpoint) {
  console.error("AWS_ENDPOINT_URL is not set: run through local/localstack/with-localstack.ts");
  process.exit(2);
}
const config = {
  endpoint,
  region: process.env.AWS_REGION ?? "us-east-1",
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "test",
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "test",
  },
};
const s3 = new S3Client({ ...config, forcePathStyle: true });
const sqs = new SQSClient(config);
const ddb = new DynamoDBClient(config);
const id = `smoke-${Date.now().toString(36)}`;
const cleanups: (() => Promise<unknown>)[] = [];
let failed = 0;

async function check(name: string, body: () => Promise<string | undefined>): Promise<void> {
  const start = Date.now();
  try {
    const detail = await body();
    console.log(`ok    ${name} (${Date.now() - start} ms)${detail ? `: ${detail}` : ""}`);
  } catch (error) {
    failed++;
    console.log(`FAIL  ${name}: ${error instanceof Error ? `${error.name}: ${error.message}` : error}`);
  }
}

function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function receiveOne(queueUrl: string, waitSeconds = 5) {
  const { Messages } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      WaitTimeSeconds: waitSeconds,
      MaxNumberOfMessages: 1,
      VisibilityTimeout: 1,
      MessageSystemAttributeNames: ["ApproximateReceiveCount"],
    }),
  );
  return Messages?.[0];
}

const bucket = id;
const table = id;
let queueUrl = "";

await check("s3: create bucket, put and get an object", async () => {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  cleanups.push(async () => {
    const { Contents = [] } = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    for (const { Key } of Contents) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  });
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: "a/b.txt", Body: "hello", ContentType: "text/plain" }),
  );
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "a/b.txt" }));
  const body = await object.Body?.transformToString();
  expect(body === "hello", `read back ${JSON.stringify(body)}`);
  return undefined;
});

await check("s3: presigned PUT (path-style) with a plain fetch; other size or type refused", async () => {
  // As lambdas/aws/object-store.ts does: without signableHeaders the SDK leaves content-type unsigned,
  // and S3 (and LocalStack) then take any type.
  const url = await getSignedUrl(
    s3,
    new PutObjectCommand({
      Bucket: bucket,
      Key: "upload.jsonl",
      ContentType: "application/jsonl",
      ContentLength: 11,
    }),
    { expiresIn: 300, signableHeaders: new Set(["content-type", "content-length"]) },
  );
  expect(url.startsWith(`${endpoint}/${bucket}/upload.jsonl?`), `not a path-style URL: ${url}`);
  const put = (body: string, type: string) =>
    fetch(url, { method: "PUT", body, headers: { "content-type": type } });
  const good = await put('{"a":true}\n', "application/jsonl");
  expect(good.status === 200, `PUT answered ${good.status}: ${await good.text()}`);
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "upload.jsonl" }));
  expect(head.ContentLength === 11, `stored ${head.ContentLength} bytes`);
  const otherType = await put('{"a":true}\n', "text/plain");
  expect(otherType.status === 403, `a PUT with another content type answered ${otherType.status}, not 403`);
  const otherSize = await put('{"a":false}\n', "application/jsonl");
  expect(otherSize.status === 403, `a PUT of another size answered ${otherSize.status}, not 403`);
  return "200 as signed; 403 for another content type or size";
});

await check("sqs: create a queue, send, receive, delete", async () => {
  ({ QueueUrl: queueUrl = "" } = await sqs.send(new CreateQueueCommand({ QueueName: id })));
  cleanups.push(() => sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })));
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "ping" }));
  const message = await receiveOne(queueUrl);
  expect(message?.Body === "ping", `received ${JSON.stringify(message?.Body)}`);
  await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
  return queueUrl;
});

await check("sqs: redrive to a DLQ after maxReceiveCount (2)", async () => {
  const { QueueUrl: dlqUrl = "" } = await sqs.send(new CreateQueueCommand({ QueueName: `${id}-dlq` }));
  cleanups.push(() => sqs.send(new DeleteQueueCommand({ QueueUrl: dlqUrl })));
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ["QueueArn"] }),
  );
  const { QueueUrl: mainUrl = "" } = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${id}-main`,
      Attributes: {
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes?.QueueArn, maxReceiveCount: 2 }),
      },
    }),
  );
  cleanups.push(() => sqs.send(new DeleteQueueCommand({ QueueUrl: mainUrl })));
  await sqs.send(new SendMessageCommand({ QueueUrl: mainUrl, MessageBody: "poison" }));
  for (let i = 1; i <= 2; i++) {
    const message = await receiveOne(mainUrl);
    expect(message?.Body === "poison", `receive ${i} got nothing`);
    await sleep(1100); // visibility timeout 1 s: not deleted, so it comes back
  }
  const third = await receiveOne(mainUrl, 1);
  expect(!third, "the message was received a third time instead of moving to the DLQ");
  const dead = await receiveOne(dlqUrl);
  expect(dead?.Body === "poison", "the message is not in the DLQ");
  return `in the DLQ after 2 receives (ApproximateReceiveCount ${dead.Attributes?.ApproximateReceiveCount})`;
});

await check("s3 → sqs: ObjectCreated notification delivered", async () => {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
  );
  const queueArn = Attributes?.QueueArn;
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: queueUrl,
      Attributes: {
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: { Service: "s3.amazonaws.com" },
              Action: "sqs:SendMessage",
              Resource: queueArn,
            },
          ],
        }),
      },
    }),
  );
  await s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: {
        QueueConfigurations: [
          {
            QueueArn: queueArn,
            Events: ["s3:ObjectCreated:*"],
            Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "incoming/" }] } },
          },
        ],
      },
    }),
  );
  // S3 sends a s3:TestEvent when the configuration is saved; skip it.
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "ignored/x.txt", Body: "x" }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "incoming/file 1.jsonl", Body: "{}\n" }));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const message = await receiveOne(queueUrl, 2);
    if (!message?.Body) continue;
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    const event = JSON.parse(message.Body) as {
      Event?: string;
      Records?: { eventName: string; s3: { object: { key: string; size: number } } }[];
    };
    if (event.Event === "s3:TestEvent") continue;
    const record = event.Records?.[0];
    expect(record, `unexpected message ${message.Body}`);
    // Keys arrive URL-encoded: S3 writes a space as "+", LocalStack 4.13 as "%20"; decode both.
    const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, " "));
    expect(key === "incoming/file 1.jsonl", `notified for ${record.s3.object.key}`);
    return `${record.eventName} for ${record.s3.object.key} (${record.s3.object.size} bytes)`;
  }
  throw new Error("no notification within 10 s");
});

await check("dynamodb: table with a GSI, put, get, query the index", async () => {
  await ddb.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "tenant", AttributeType: "S" },
      ],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      GlobalSecondaryIndexes: [
        {
          IndexName: "byTenant",
          KeySchema: [{ AttributeName: "tenant", KeyType: "HASH" }],
          Projection: { ProjectionType: "ALL" },
        },
      ],
    }),
  );
  cleanups.push(() => ddb.send(new DeleteTableCommand({ TableName: table })));
  await ddb.send(
    new PutItemCommand({
      TableName: table,
      Item: { pk: { S: "job#1" }, tenant: { S: "t1" }, n: { N: "1" } },
    }),
  );
  const { Item } = await ddb.send(
    new GetItemCommand({ TableName: table, Key: { pk: { S: "job#1" } }, ConsistentRead: true }),
  );
  expect(Item?.tenant?.S === "t1", `got ${JSON.stringify(Item)}`);
  const { Items = [] } = await ddb.send(
    new QueryCommand({
      TableName: table,
      IndexName: "byTenant",
      KeyConditionExpression: "tenant = :t",
      ExpressionAttributeValues: { ":t": { S: "t1" } },
    }),
  );
  expect(Items.length === 1, `the index returned ${Items.length} items`);
  return undefined;
});

await check("dynamodb: conditional put and a transaction whose ConditionCheck fails", async () => {
  try {
    await ddb.send(
      new PutItemCommand({
        TableName: table,
        Item: { pk: { S: "job#1" }, tenant: { S: "t2" } },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
    throw new Error("the conditional put succeeded");
  } catch (error) {
    expect(error instanceof ConditionalCheckFailedException, `conditional put: ${error}`);
  }
  try {
    await ddb.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            ConditionCheck: {
              TableName: table,
              Key: { pk: { S: "job#1" } },
              ConditionExpression: "n = :two",
              ExpressionAttributeValues: { ":two": { N: "2" } },
            },
          },
          { Put: { TableName: table, Item: { pk: { S: "job#2" }, tenant: { S: "t1" } } } },
        ],
      }),
    );
    throw new Error("the transaction succeeded");
  } catch (error) {
    expect(error instanceof TransactionCanceledException, `transaction: ${error}`);
    const reasons = error.CancellationReasons?.map((r) => r.Code).join(",");
    expect(reasons === "ConditionalCheckFailed,None", `cancellation reasons ${reasons}`);
  }
  const { Item } = await ddb.send(new GetItemCommand({ TableName: table, Key: { pk: { S: "job#2" } } }));
  expect(!Item, "the transaction's put was applied although its condition failed");
  return "cancelled with [ConditionalCheckFailed, None]; nothing written";
});

for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
for (const client of [s3, sqs, ddb]) client.destroy();
console.log(
  failed
    ? `smoke: ${failed} check(s) failed against ${endpoint}`
    : `smoke: all checks passed against ${endpoint}`,
);
process.exit(failed ? 1 : 0);
