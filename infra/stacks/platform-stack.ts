import { CfnOutput, type RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { contextLimits } from "../../lambdas/core/catalog/base-models.ts";
import { TRAINING_INSTANCE_TYPES_ENV } from "../../lambdas/core/jobs/resources.ts";
import { Api } from "../constructs/api.ts";
import { Chat, type InferenceOptions } from "../constructs/chat.ts";
import { DurableQueue } from "../constructs/durable-queue.ts";
import { Network } from "../constructs/network.ts";
import { Observability } from "../constructs/observability.ts";
import { pascal, Storage } from "../constructs/storage.ts";
import { Training, type TrainingProps } from "../constructs/training.ts";
import { Validation } from "../constructs/validation.ts";
import { BUCKET_ENV, QUEUE_ENV, QUEUES, type QueueId, TABLE_ENV } from "../resources/definitions.ts";

export interface PlatformStackProps extends StackProps {
  /** Prefix of physical resource names (tables, queues). */
  readonly prefix: string;
  readonly removalPolicy?: RemovalPolicy;
  readonly alarmEmail?: string;
  /** Base model name → max sequence tokens, for the validator's over-length counts; the catalog's by default. */
  readonly contextLimits?: Record<string, number>;
  /** The trainer image, its GPU capacity per method, timeouts (see infra/bin/app.ts for the context keys). */
  readonly training?: Pick<
    TrainingProps,
    "trainerImageUri" | "capacity" | "multiNode" | "timeoutHours" | "dispatcherConcurrency" | "volumeGiB"
  >;
  /** Where chat completions are served: an external endpoint or private vLLM servers. */
  readonly inference?: InferenceOptions;
  readonly chatRateLimitPerMinute?: number;
}

/** The whole platform in one stack: each bounded context is one construct composed here. */
export class PlatformStack extends Stack {
  readonly storage: Storage;
  readonly observability: Observability;
  readonly queues: Readonly<Record<QueueId, DurableQueue>>;
  readonly api: Api;
  readonly validation: Validation;
  readonly network: Network;
  readonly training: Training;
  readonly chat: Chat;

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
      eventsTable: tables["job-events"],
      modelsTable: tables.models,
      idempotencyTable: tables.idempotency,
      datasetsBucket: buckets.datasets,
      artifactsBucket: buckets.artifacts,
      trainingQueue: queues.training.queue,
    });
    this.validation = new Validation(this, "Validation", {
      datasetsBucket: buckets.datasets,
      filesTable: tables.files,
      queue: queues.validation,
      contextLimits: props.contextLimits ?? contextLimits(),
    });
    const privateInference = (props.inference?.servers?.length ?? 0) > 0;
    this.network = new Network(this, "Network", { xrayEndpoint: privateInference });
    this.training = new Training(this, "Training", {
      network: this.network,
      jobsTable: tables.jobs,
      eventsTable: tables["job-events"],
      modelsTable: tables.models,
      datasetsBucket: buckets.datasets,
      artifactsBucket: buckets.artifacts,
      queue: queues.training,
      alarmTopic: this.observability.alarmTopic,
      ...props.training,
    });
    // The planner in the jobs function chooses among the instance types the training compute has.
    this.api.jobsFunction.addEnvironment(
      TRAINING_INSTANCE_TYPES_ENV,
      JSON.stringify(this.training.instanceTypes),
    );
    this.chat = new Chat(this, "Chat", {
      api: this.api,
      apiKeysTable: tables["api-keys"],
      modelsTable: tables.models,
      artifactsBucket: buckets.artifacts,
      accessLogsBucket: this.storage.accessLogsBucket,
      network: this.network,
      alarmTopic: this.observability.alarmTopic,
      ...(props.inference ? { inference: props.inference } : {}),
      ...(props.chatRateLimitPerMinute !== undefined
        ? { rateLimitPerMinute: props.chatRateLimitPerMinute }
        : {}),
    });
    new CfnOutput(this, "ChatFunctionUrl", { value: this.chat.functionUrl.url, description: "CHAT_URL" });
    new CfnOutput(this, "LoraJobQueueArn", {
      value: this.training.jobQueues.lora.jobQueueArn,
      description: "Batch job queue of LoRA training",
    });
    new CfnOutput(this, "FullJobQueueArn", {
      value: this.training.jobQueues.full.jobQueueArn,
      description: "Batch job queue of full-parameter training",
    });
    new CfnOutput(this, "MultiNodeJobQueueArn", {
      value: this.training.multiNode.jobQueue.jobQueueArn,
      description: "Batch job queue of multi-node (torchrun + FSDP2) training",
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
