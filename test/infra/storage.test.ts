import { Match } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { QUEUES, TABLES } from "../../infra/resources/definitions.ts";
import { synthPlatform } from "./synth.ts";

describe("storage construct", () => {
  const { template } = synthPlatform();

  it("blocks public access, enforces SSL and encrypts every bucket", () => {
    // datasets, artifacts and access logs here, plus the console's site bucket (infra/constructs/console.ts).
    const buckets = template.findResources("AWS::S3::Bucket");
    expect(Object.keys(buckets)).toHaveLength(4);
    for (const bucket of Object.values(buckets)) {
      expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0]).toMatchObject({
        ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" },
      });
    }
    const policies = template.findResources("AWS::S3::BucketPolicy");
    expect(Object.keys(policies)).toHaveLength(4);
    for (const policy of Object.values(policies)) {
      expect(policy.Properties.PolicyDocument.Statement).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            Effect: "Deny",
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          }),
        ]),
      );
    }
  });

  it("versions the artifacts bucket, logs access and aborts incomplete multipart uploads", () => {
    template.hasResourceProperties("AWS::S3::Bucket", {
      VersioningConfiguration: { Status: "Enabled" },
      LoggingConfiguration: { LogFilePrefix: "artifacts/", DestinationBucketName: Match.anyValue() },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
        ]),
      },
    });
    template.hasResourceProperties("AWS::S3::Bucket", {
      VersioningConfiguration: Match.absent(),
      LoggingConfiguration: { LogFilePrefix: "datasets/", DestinationBucketName: Match.anyValue() },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
        ]),
      },
    });
  });

  it("creates every table on demand with point-in-time recovery, encryption and the shared key schema", () => {
    for (const def of TABLES) {
      template.hasResource("AWS::DynamoDB::Table", {
        DeletionPolicy: "Retain",
        Properties: Match.objectLike({
          TableName: `ft-${def.id}`,
          BillingMode: "PAY_PER_REQUEST",
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          SSESpecification: { SSEEnabled: true },
          DeletionProtectionEnabled: true,
          KeySchema: [
            { AttributeName: def.partitionKey.name, KeyType: "HASH" },
            ...(def.sortKey ? [{ AttributeName: def.sortKey.name, KeyType: "RANGE" }] : []),
          ],
        }),
      });
    }
  });

  it("leads every tenant-owned key with the tenant id", () => {
    for (const id of ["files", "jobs", "usage"] as const) {
      template.hasResourceProperties("AWS::DynamoDB::Table", {
        TableName: `ft-${id}`,
        KeySchema: Match.arrayWith([{ AttributeName: "tenantId", KeyType: "HASH" }]),
      });
    }
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      TableName: "ft-models",
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: "byTenant",
          KeySchema: Match.arrayWith([{ AttributeName: "tenantId", KeyType: "HASH" }]),
        }),
      ],
    });
  });

  it("keeps usage per tenant by day and model: tenantId, then usageKey", () => {
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      TableName: "ft-usage",
      KeySchema: [
        { AttributeName: "tenantId", KeyType: "HASH" },
        { AttributeName: "usageKey", KeyType: "RANGE" },
      ],
      AttributeDefinitions: [
        { AttributeName: "tenantId", AttributeType: "S" },
        { AttributeName: "usageKey", AttributeType: "S" },
      ],
    });
    template.hasOutput("UsageTableName", { Description: "USAGE_TABLE" });
  });

  it("gives every queue an encrypted DLQ and an alarm on it", () => {
    for (const def of QUEUES) {
      template.hasResourceProperties("AWS::SQS::Queue", {
        QueueName: `ft-${def.id}`,
        VisibilityTimeout: def.visibilityTimeoutSeconds,
        SqsManagedSseEnabled: true,
        RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: def.maxReceiveCount },
      });
      template.hasResourceProperties("AWS::SQS::Queue", {
        QueueName: `ft-${def.id}-dlq`,
        SqsManagedSseEnabled: true,
      });
    }
    const queueAlarms = Object.values(template.findResources("AWS::CloudWatch::Alarm")).filter((alarm) =>
      /^Messages in ft-/.test(alarm.Properties.AlarmDescription),
    );
    expect(queueAlarms).toHaveLength(QUEUES.length);
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "ApproximateNumberOfMessagesVisible",
      Threshold: 1,
      AlarmActions: [Match.anyValue()],
    });
  });
});

describe("cdk-nag", () => {
  it("reports no unacknowledged finding from the AwsSolutions and Serverless packs", () => {
    expect(synthPlatform().violations).toEqual([]);
  });
});
