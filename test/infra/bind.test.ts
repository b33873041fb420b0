import { App, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import { describe, expect, it } from "vitest";
import { bind, NAME_ONLY, resourceEnv } from "../../infra/constructs/bind.ts";
import { DurableQueue } from "../../infra/constructs/durable-queue.ts";
import { Storage } from "../../infra/constructs/storage.ts";
import { BUCKET_ENV, QUEUE_ENV, queueDefinition, TABLE_ENV } from "../../infra/resources/definitions.ts";

type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown };

/** A stack with the platform's storage, the training queue and one bare function to bind. */
function fixture() {
  const stack = new Stack(new App(), "BindOnly");
  const storage = new Storage(stack, "Storage", { prefix: "ft" });
  const topic = new sns.Topic(stack, "Alarms");
  const queue = new DurableQueue(stack, "TrainingQueue", {
    prefix: "ft",
    definition: { ...queueDefinition("training"), id: "training" },
    alarmTopic: topic,
  });
  const fn = new lambda.Function(stack, "Fn", {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: "index.handler",
    code: lambda.Code.fromInline("export const handler = async () => {};"),
  });
  const synth = () => {
    const template = Template.fromStack(stack);
    const [fnId, fnResource] = Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) =>
      id.startsWith("Fn"),
    )!;
    const statements = Object.values(template.findResources("AWS::IAM::Policy")).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as Statement[],
    );
    return { fnId, env: fnResource.Properties.Environment?.Variables ?? {}, statements };
  };
  return { stack, storage, queue, fn, synth };
}

const ref = (id: string) => ({
  "Fn::GetAtt": [expect.stringMatching(new RegExp(`^${id}[0-9A-F]{8}$`)), "Arn"],
});

describe("bind", () => {
  it("names a table's variable from TABLE_ENV and grants exactly the actions given, on the table only", () => {
    const { storage, fn, synth } = fixture();
    bind(fn, storage.table("jobs"), { actions: ["GetItem", "UpdateItem"] });
    const { env, statements } = synth();
    expect(env).toEqual({ [TABLE_ENV.jobs]: { Ref: expect.stringMatching(/^StorageJobsTable/) } });
    expect(statements).toEqual([
      {
        Action: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        Effect: "Allow",
        Resource: ref("StorageJobsTable"),
      },
    ]);
  });

  it("grants an index's actions on that index alone, and refuses an index the definitions lack", () => {
    const { storage, fn, synth } = fixture();
    bind(fn, storage.table("models"), { actions: ["GetItem"], indexes: { byTenant: ["Query"] } });
    const { env, statements } = synth();
    expect(Object.keys(env)).toEqual([TABLE_ENV.models]);
    expect(statements).toEqual([
      { Action: "dynamodb:GetItem", Effect: "Allow", Resource: ref("StorageModelsTable") },
      {
        Action: "dynamodb:Query",
        Effect: "Allow",
        Resource: { "Fn::Join": ["", [ref("StorageModelsTable"), "/index/byTenant"]] },
      },
    ]);
    expect(JSON.stringify(statements)).not.toContain("/index/*");
    expect(() => bind(fn, storage.table("jobs"), { indexes: { byTenant: ["Query"] } })).toThrow(
      /Table jobs has no index byTenant/,
    );
  });

  it("grants object actions on key patterns and ListBucket on prefixes only, never the bucket's objects at large", () => {
    const { storage, fn, synth } = fixture();
    bind(fn, storage.bucket("artifacts"), {
      objects: [{ keys: ["tenants/*/jobs/*/result.json"], actions: ["GetObject"], why: "test" }],
      list: ["tenants/*/jobs/*/checkpoints/*"],
    });
    const { env, statements } = synth();
    expect(env).toEqual({ [BUCKET_ENV.artifacts]: { Ref: expect.stringMatching(/^StorageArtifacts/) } });
    expect(statements).toEqual([
      {
        Action: "s3:GetObject",
        Effect: "Allow",
        Resource: { "Fn::Join": ["", [ref("StorageArtifacts"), "/tenants/*/jobs/*/result.json"]] },
      },
      {
        Action: "s3:ListBucket",
        Condition: { StringLike: { "s3:prefix": ["tenants/*/jobs/*/checkpoints/*"] } },
        Effect: "Allow",
        Resource: ref("StorageArtifacts"),
      },
    ]);
  });

  it("names a queue's URL variable from QUEUE_ENV and grants the producer actions given", () => {
    const { queue, fn, synth } = fixture();
    bind(fn, queue.ref, { actions: ["SendMessage", "GetQueueAttributes"] });
    const { env, statements } = synth();
    expect(env).toEqual({ [QUEUE_ENV.training]: { Ref: expect.stringMatching(/^TrainingQueue/) } });
    expect(statements).toEqual([
      {
        Action: ["sqs:SendMessage", "sqs:GetQueueAttributes"],
        Effect: "Allow",
        Resource: ref("TrainingQueue"),
      },
    ]);
  });

  it("passes a name on without any grant when the function never calls the resource", () => {
    const { storage, fn, synth } = fixture();
    bind(fn, storage.bucket("datasets"), NAME_ONLY);
    const { env, statements } = synth();
    expect(env).toEqual({ [BUCKET_ENV.datasets]: { Ref: expect.stringMatching(/^StorageDatasets/) } });
    expect(statements).toEqual([]);
  });

  it("gives containers the same variables through resourceEnv", () => {
    const { stack, storage, queue } = fixture();
    const env = stack.resolve(
      resourceEnv(storage.table("job-events"), storage.bucket("datasets"), queue.ref),
    );
    expect(Object.keys(env)).toEqual([TABLE_ENV["job-events"], BUCKET_ENV.datasets, QUEUE_ENV.training]);
  });
});
