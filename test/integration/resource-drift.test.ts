import { DescribeTableCommand, DescribeTimeToLiveCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { beforeAll, describe, expect, it } from "vitest";
import type { BootstrappedResources } from "../../local/bootstrap.ts";
import { synthPlatform } from "../infra/synth.ts";
import { freshResources, localClients } from "./aws.ts";

/**
 * The local bootstrap and the CDK app read the same definitions; this compares what each actually
 * produces, so a change to one path that the other does not follow fails here.
 */
describe("LocalStack resources match the synthesized template", () => {
  const { dynamo, sqs } = localClients();
  const { template } = synthPlatform();
  let local: BootstrappedResources;

  beforeAll(async () => {
    local = await freshResources("drift");
  });

  const templateTables = () =>
    Object.values(template.findResources("AWS::DynamoDB::Table")).map((r) => r.Properties) as {
      TableName: string;
      KeySchema: unknown[];
      AttributeDefinitions: { AttributeName: string; AttributeType: string }[];
      GlobalSecondaryIndexes?: {
        IndexName: string;
        KeySchema: unknown[];
        Projection: { ProjectionType: string };
      }[];
      StreamSpecification?: { StreamViewType: string };
      TimeToLiveSpecification?: { AttributeName: string; Enabled: boolean };
    }[];

  it("has the same tables, key schemas, attribute types, GSIs, streams and TTL", async () => {
    const expected = templateTables();
    expect(expected.map((t) => t.TableName.replace(/^ft-/, "")).sort()).toEqual(
      Object.keys(local.tables).sort(),
    );
    for (const cfn of expected) {
      const id = cfn.TableName.replace(/^ft-/, "") as keyof typeof local.tables;
      const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: local.tables[id] }));
      expect(Table?.KeySchema, id).toEqual(cfn.KeySchema);
      const sortByName = <T extends { AttributeName?: string }>(list: T[]) =>
        [...list].sort((a, b) => (a.AttributeName ?? "").localeCompare(b.AttributeName ?? ""));
      expect(sortByName(Table?.AttributeDefinitions ?? []), id).toEqual(sortByName(cfn.AttributeDefinitions));
      const indexes = (Table?.GlobalSecondaryIndexes ?? []).map((i) => ({
        IndexName: i.IndexName,
        KeySchema: i.KeySchema,
        Projection: { ProjectionType: i.Projection?.ProjectionType },
      }));
      expect(indexes, id).toEqual(cfn.GlobalSecondaryIndexes ?? []);
      expect(Table?.StreamSpecification?.StreamViewType, id).toEqual(cfn.StreamSpecification?.StreamViewType);
      const ttl = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: local.tables[id] }));
      const enabled = ttl.TimeToLiveDescription?.TimeToLiveStatus === "ENABLED";
      expect(enabled ? ttl.TimeToLiveDescription?.AttributeName : undefined, id).toEqual(
        cfn.TimeToLiveSpecification?.AttributeName,
      );
    }
  });

  it("has the same queues, visibility timeouts, retention and redrive policies", async () => {
    const queues = Object.values(template.findResources("AWS::SQS::Queue")).map((r) => r.Properties) as {
      QueueName: string;
      VisibilityTimeout?: number;
      MessageRetentionPeriod?: number;
      RedrivePolicy?: { maxReceiveCount: number };
    }[];
    for (const [id, url] of Object.entries(local.queueUrls)) {
      const cfn = queues.find((q) => q.QueueName === `ft-${id}`);
      expect(cfn, id).toBeDefined();
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }),
      );
      expect(Number(Attributes?.VisibilityTimeout), id).toBe(cfn?.VisibilityTimeout);
      expect(Number(Attributes?.MessageRetentionPeriod), id).toBe(cfn?.MessageRetentionPeriod);
      const redrive = JSON.parse(Attributes?.RedrivePolicy ?? "{}") as {
        maxReceiveCount?: number;
        deadLetterTargetArn?: string;
      };
      expect(Number(redrive.maxReceiveCount), id).toBe(cfn?.RedrivePolicy?.maxReceiveCount);
      expect(redrive.deadLetterTargetArn, id).toMatch(new RegExp(`:${local.prefix}-${id}-dlq$`));
      const dlq = queues.find((q) => q.QueueName === `ft-${id}-dlq`);
      const dlqAttributes = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: local.dlqUrls[id as keyof typeof local.dlqUrls],
          AttributeNames: ["All"],
        }),
      );
      expect(Number(dlqAttributes.Attributes?.MessageRetentionPeriod), id).toBe(dlq?.MessageRetentionPeriod);
    }
  });
});
