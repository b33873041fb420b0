import { BatchClient } from "@aws-sdk/client-batch";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { tracer } from "./observability.ts";

/**
 * SDK clients, built once per process (module scope in a Lambda), each captured by the Tracer so every
 * call is a subsegment of the invocation's trace (outside Lambda the Tracer is off and hands the client
 * back as is). The SDK reads `AWS_ENDPOINT_URL` itself; S3 additionally needs path-style addressing
 * against LocalStack, whose virtual-host names would need DNS this machine does not have.
 */
const endpoint = (): string | undefined => process.env.AWS_ENDPOINT_URL || undefined;

let s3: S3Client | undefined;
let sqs: SQSClient | undefined;
let dynamo: DynamoDBClient | undefined;
let documents: DynamoDBDocumentClient | undefined;
let batch: BatchClient | undefined;

export function s3Client(): S3Client {
  s3 ??= tracer().captureAWSv3Client(
    new S3Client({
      forcePathStyle: endpoint() !== undefined,
      // Otherwise the SDK signs the CRC32 of an empty body into every presigned PUT URL, and S3 refuses
      // the real upload whose body does not match it.
      requestChecksumCalculation: "WHEN_REQUIRED",
    }),
  );
  return s3;
}

export function sqsClient(): SQSClient {
  sqs ??= tracer().captureAWSv3Client(new SQSClient({}));
  return sqs;
}

export function dynamoClient(): DynamoDBClient {
  dynamo ??= tracer().captureAWSv3Client(new DynamoDBClient({}));
  return dynamo;
}

/**
 * Document client: plain JS values in and out; undefined attributes are dropped rather than rejected.
 * It shares the captured DynamoDB client's middleware stack, so its calls are traced too.
 */
export function documentClient(): DynamoDBDocumentClient {
  documents ??= DynamoDBDocumentClient.from(dynamoClient(), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return documents;
}

/** AWS Batch: the dispatcher submits training runs, the jobs API terminates cancelled ones. */
export function batchClient(): BatchClient {
  batch ??= tracer().captureAWSv3Client(new BatchClient({}));
  return batch;
}
