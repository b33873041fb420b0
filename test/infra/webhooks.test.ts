import { Match } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { CONFIG_ENV, QUEUE_ENV, TABLE_ENV } from "../../infra/resources/definitions.ts";
import { synthPlatform } from "./synth.ts";

type Template = ReturnType<typeof synthPlatform>["template"];
type Statement = { Effect?: string; Action: string | string[]; Resource: unknown };

const resourcesOf = (template: Template, type: string, prefix: string) =>
  Object.entries(template.findResources(type)).filter(([id]) => id.startsWith(prefix));

function statementsOf(template: Template, prefix: string): Statement[] {
  return resourcesOf(template, "AWS::IAM::Policy", prefix).flatMap(
    ([, policy]) => policy.Properties.PolicyDocument.Statement as Statement[],
  );
}
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

function functionOf(template: Template, prefix: string) {
  const found = resourcesOf(template, "AWS::Lambda::Function", prefix);
  expect(found, prefix).toHaveLength(1);
  return found[0]!;
}

/** The logical id of the one resource of this type whose id starts with the prefix. */
const idOf = (template: Template, type: string, prefix: string) => {
  const found = resourcesOf(template, type, prefix);
  expect(found, prefix).toHaveLength(1);
  return found[0]![0];
};

describe("webhooks infrastructure", () => {
  const { template, violations } = synthPlatform();

  it("delivers from the webhook-deliveries queue, whose dead letter is alarmed", () => {
    const dlq = idOf(template, "AWS::SQS::Queue", "WebhookDeliveriesQueueDlq");
    template.hasResourceProperties("AWS::SQS::Queue", {
      QueueName: "ft-webhook-deliveries",
      VisibilityTimeout: 180,
      RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": [dlq, "Arn"] }, maxReceiveCount: 5 },
      SqsManagedSseEnabled: true,
    });
    template.hasResourceProperties("AWS::SQS::Queue", {
      QueueName: "ft-webhook-deliveries-dlq",
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [dlq, "QueueName"] } }],
      Threshold: Match.anyValue(),
    });
    const [deliveryId] = functionOf(template, "WebhooksWebhookDelivery");
    const queue = resourcesOf(template, "AWS::SQS::Queue", "WebhookDeliveriesQueue").find(
      ([, q]) => q.Properties.QueueName === "ft-webhook-deliveries",
    )![0];
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionName: { Ref: deliveryId },
      EventSourceArn: { "Fn::GetAtt": [queue, "Arn"] },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
  });

  it("gives the delivery function the DLQ's URL and only the sends, reads and writes it needs", () => {
    const [, fn] = functionOf(template, "WebhooksWebhookDelivery");
    const dlq = idOf(template, "AWS::SQS::Queue", "WebhookDeliveriesQueueDlq");
    const env = fn.Properties.Environment.Variables;
    expect(env[CONFIG_ENV.webhookDeadLetterQueueUrl]).toEqual({ Ref: dlq });
    expect(env[QUEUE_ENV["webhook-deliveries"]]).toBeDefined();
    expect(env[TABLE_ENV.webhooks]).toBeDefined();
    // Retries wait 10 s ... 4 h in production: no test schedule is configured.
    expect(env[CONFIG_ENV.webhookRetryBaseSeconds]).toBeUndefined();
    // Never in the VPC (receivers are on the internet) and never allowed private addresses.
    expect(fn.Properties.VpcConfig).toBeUndefined();
    expect(env[CONFIG_ENV.webhookAllowPrivate]).toBeUndefined();
    expect(fn.Properties.Timeout).toBe(30);
    const statements = statementsOf(template, "WebhooksWebhookDeliveryRole");
    const sends = statements.filter((s) => actionsOf(s).includes("sqs:SendMessage"));
    expect(sends.map((s) => s.Resource)).toEqual(expect.arrayContaining([{ "Fn::GetAtt": [dlq, "Arn"] }]));
    const dynamo = statements.flatMap(actionsOf).filter((a) => a.startsWith("dynamodb:"));
    expect(new Set(dynamo)).toEqual(new Set(["dynamodb:GetItem", "dynamodb:UpdateItem"]));
  });

  it("reads the jobs and files tables' streams, filtered to event statuses, failures to a dead letter", () => {
    for (const table of ["StorageJobsTable", "StorageFilesTable"]) {
      const id = idOf(template, "AWS::DynamoDB::Table", table);
      expect(template.toJSON().Resources[id].Properties.StreamSpecification).toEqual({
        StreamViewType: "NEW_AND_OLD_IMAGES",
      });
    }
    const [fanout] = functionOf(template, "WebhooksWebhookFanout");
    const failures = idOf(template, "AWS::SQS::Queue", "WebhooksFanoutFailures");
    const mappings = Object.values(template.findResources("AWS::Lambda::EventSourceMapping")).filter(
      (m) => (m.Properties.FunctionName as { Ref: string }).Ref === fanout,
    );
    expect(mappings).toHaveLength(2);
    for (const mapping of mappings) {
      expect(mapping.Properties).toMatchObject({
        StartingPosition: "TRIM_HORIZON",
        BisectBatchOnFunctionError: true,
        FunctionResponseTypes: ["ReportBatchItemFailures"],
        DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [failures, "Arn"] } } },
      });
    }
    const patterns = mappings.map((m) => JSON.parse(m.Properties.FilterCriteria.Filters[0].Pattern));
    expect(patterns).toEqual(
      expect.arrayContaining([
        { dynamodb: { NewImage: { status: { S: ["succeeded", "failed", "cancelled", "paused"] } } } },
        { dynamodb: { NewImage: { status: { S: ["processed", "error"] } } } },
      ]),
    );
  });

  it("keeps the webhooks API function to the webhooks tables and the delivery queue", () => {
    const statements = statementsOf(template, "WebhooksWebhooksApiRole");
    const resources = JSON.stringify(statements.map((s) => s.Resource));
    expect(resources).toMatch(/StorageWebhooksTable/);
    expect(resources).not.toMatch(/StorageJobsTable|StorageFilesTable|StorageApiKeysTable/);
    expect(statements.flatMap(actionsOf).filter((a) => a.startsWith("sqs:"))).toEqual(["sqs:SendMessage"]);
  });

  it("routes /v4/webhooks behind the authorizer, with ANY for the 405s", () => {
    const paths = resourcesOf(template, "AWS::ApiGateway::Resource", "ApiRestApiv4webhooks").map(
      ([, r]) => r.Properties.PathPart,
    );
    expect(paths.sort()).toEqual(["deliveries", "test", "webhooks", "{webhook_id}"]);
    const methods = Object.entries(template.findResources("AWS::ApiGateway::Method")).filter(([id]) =>
      id.startsWith("ApiRestApiv4webhooks"),
    );
    const summary = methods.map(([id, m]) => `${id.replace(/[0-9A-F]{8}$/, "")}:${m.Properties.HttpMethod}`);
    expect(summary).toEqual(
      expect.arrayContaining([
        "ApiRestApiv4webhooksGET:GET",
        "ApiRestApiv4webhooksPOST:POST",
        "ApiRestApiv4webhooksANY:ANY",
        "ApiRestApiv4webhookswebhookidGET:GET",
        "ApiRestApiv4webhookswebhookidDELETE:DELETE",
        "ApiRestApiv4webhookswebhookidtestPOST:POST",
        "ApiRestApiv4webhookswebhookiddeliveriesGET:GET",
      ]),
    );
    for (const [, method] of methods.filter(([, m]) => m.Properties.HttpMethod !== "OPTIONS")) {
      expect(method.Properties.AuthorizationType).toBe("CUSTOM");
    }
  });

  it("has no unacknowledged cdk-nag finding", () => {
    expect(violations.filter((v) => /Webhook/.test(v.path))).toEqual([]);
  });
});
