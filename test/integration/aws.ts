import { randomBytes } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { inject } from "vitest";
import { type BootstrappedResources, bootstrapResources } from "../../local/bootstrap.ts";

/** Clients bound to the LocalStack the global setup provides. */
export function localClients() {
  const endpoint = inject("awsEndpoint");
  process.env.AWS_ENDPOINT_URL = endpoint;
  const common = {
    endpoint,
    region: process.env.AWS_REGION ?? "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  };
  const dynamo = new DynamoDBClient(common);
  return {
    endpoint,
    s3: new S3Client({ ...common, forcePathStyle: true }),
    sqs: new SQSClient(common),
    dynamo,
    documents: DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }),
  };
}

/** A fresh prefix per test file, so files never see each other's tables, buckets or queues. */
export function uniquePrefix(label: string): string {
  return `${label}-${randomBytes(4).toString("hex")}`;
}

/** Creates the platform's resources under a fresh prefix. */
export async function freshResources(label: string): Promise<BootstrappedResources> {
  return bootstrapResources(localClients(), uniquePrefix(label));
}
