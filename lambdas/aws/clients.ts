import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

/**
 * SDK clients, built once per process (module scope in a Lambda). The SDK reads `AWS_ENDPOINT_URL`
 * itself; S3 additionally needs path-style addressing against LocalStack, whose virtual-host names
 * would need DNS this machine does not have.
 */
const endpoint = (): string | undefined => process.env.AWS_ENDPOINT_URL || undefined;

let s3: S3Client | undefined;
let sqs: SQSClient | undefined;
let dynamo: DynamoDBClient | undefined;
let documents: DynamoDBDocumentClient | undefined;

export function s3Client(): S3Client {
  s3 ??= new S3Client({ forcePathStyle: endpoint() !== undefined });
  return s3;
}

export function sqsClient(): SQSClient {
  sqs ??= new SQSClient({});
  return sqs;
}

export function dynamoClient(): DynamoDBClient {
  dynamo ??= new DynamoDBClient({});
  return dynamo;
}

/** Document client: plain JS values in and out; undefined attributes are dropped rather than rejected. */
export function documentClient(): DynamoDBDocumentClient {
  documents ??= DynamoDBDocumentClient.from(dynamoClient(), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return documents;
}
