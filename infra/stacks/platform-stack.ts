import { CfnOutput, type RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { contextLimits } from "../../lambdas/core/catalog/base-models.ts";
import { Api } from "../constructs/api.ts";
import { DurableQueue } from "../constructs/durable-queue.ts";
import { Observability } from "../constructs/observability.ts";
import { pascal, Storage } from "../constructs/storage.ts";
import { Validation } from "../constructs/validation.ts";
import { BUCKET_ENV, QUEUE_ENV, QUEUES, type QueueId, TABLE_ENV } from "../resources/definitions.ts";

export interface PlatformStackProps extends StackProps {
  /** Prefix of physical resource names (tables, queues). */
  readonly prefix: string;
  readonly removalPolicy?: RemovalPolicy;
  readonly alarmEmail?: string;
  /** Base model name → max sequence tokens, for the validator's over-length counts; the catalog's by default. */
  readonly contextLimits?: Record<string, number>;
}

/** The whole platform in one stack: each bounded context is one construct composed here. */
export class PlatformStack extends Stack {
  readonly storage: Storage;
  readonly observability: Observability;
  readonly queues: Readonly<Record<QueueId, DurableQueue>>;
  readonly api: Api;
  readonly validation: Validation;

  constructor(scope: Construct, id: string, props: PlatformStackProps) {
    super(scope, id, props);
    this.observability = new Observability(this, "Observability", {
      ...(props.alarmEmail ? { alarmEmail: props.alarmEmail } : {}),
    });
    this.storage = new Storage(this, "Storage", {
      prefix: props.prefix,
      ...(props.removalPolicy ? { removalPolicy: props.removalPolicy } : {}),
    });
    const queues = {} as Record<QueueId, DurableQueue>;
    for (const definition of QUEUES) {
      queues[definition.id] = new DurableQueue(this, `${pascal(definition.id)}Queue`, {
        prefix: props.prefix,
        definition,
        alarmTopic: this.observability.alarmTopic,
      });
    }
    this.queues = queues;

    const { tables, buckets } = this.storage;
    this.api = new Api(this, "Api", {
      apiKeysTable: tables["api-keys"],
      filesTable: tables.files,
      jobsTable: tables.jobs,
      datasetsBucket: buckets.datasets,
    });
    this.validation = new Validation(this, "Validation", {
      datasetsBucket: buckets.datasets,
      filesTable: tables.files,
      queue: queues.validation,
      contextLimits: props.contextLimits ?? contextLimits(),
    });
    new CfnOutput(this, "ApiBaseUrl", { value: `${this.api.restApi.url}v4`, description: "OPENAI_BASE_URL" });

    // Outputs carry the environment variable names the tools (ftctl, the local platform) read.
    for (const [id, table] of Object.entries(this.storage.tables)) {
      new CfnOutput(this, `${pascal(id)}TableName`, {
        value: table.tableName,
        description: TABLE_ENV[id as keyof typeof TABLE_ENV],
      });
    }
    for (const [id, bucket] of Object.entries(this.storage.buckets)) {
      new CfnOutput(this, `${pascal(id)}BucketName`, {
        value: bucket.bucketName,
        description: BUCKET_ENV[id as keyof typeof BUCKET_ENV],
      });
    }
    for (const [id, queue] of Object.entries(this.queues)) {
      new CfnOutput(this, `${pascal(id)}QueueUrl`, {
        value: queue.queue.queueUrl,
        description: QUEUE_ENV[id as QueueId],
      });
    }
  }
}
