import { type CfnElement, CfnOutput, Lazy, type RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { CatalogOverride } from "../../lambdas/core/catalog/base-models.ts";
import type { TenantQuotas } from "../../lambdas/core/tenants/quotas.ts";
import { Api } from "../constructs/api.ts";
import { PlatformCatalog } from "../constructs/catalog.ts";
import { Chat, type InferenceOptions } from "../constructs/chat.ts";
import { Console } from "../constructs/console.ts";
import { Deployments } from "../constructs/deployments.ts";
import { DurableQueue } from "../constructs/durable-queue.ts";
import { Jobs } from "../constructs/jobs.ts";
import { Network } from "../constructs/network.ts";
import { Observability } from "../constructs/observability.ts";
import { pascal, Storage } from "../constructs/storage.ts";
import {
  TrainingCompute,
  type TrainingComputeProps,
  type TrainingData,
} from "../constructs/training-compute.ts";
import { TrainingPipeline, type TrainingPipelineProps } from "../constructs/training-pipeline.ts";
import { Validation } from "../constructs/validation.ts";
import { Webhooks } from "../constructs/webhooks.ts";
import {
  BUCKET_ENV,
  CONFIG_ENV,
  QUEUE_ENV,
  QUEUES,
  type QueueId,
  TABLE_ENV,
  USAGE_PLAN_ENV,
} from "../resources/definitions.ts";

export interface PlatformStackProps extends StackProps {
  /** Prefix of physical resource names (tables, queues). */
  readonly prefix: string;
  readonly removalPolicy?: RemovalPolicy;
  readonly alarmEmail?: string;
  /**
   * The operator's change to the base-model catalog (`{"models": {…}}`, see `buildCatalog`): validated
   * at synth, passed to every function that reads the catalog, and used for the trainer's and the
   * inference servers' catalog facts. The built-in catalog without one.
   */
  readonly catalogOverride?: CatalogOverride;
  /** The trainer image, its GPU capacity per method, timeouts (see infra/bin/app.ts for the context keys). */
  readonly training?: Pick<
    TrainingComputeProps,
    "trainerImageUri" | "capacity" | "multiNode" | "timeoutHours" | "volumeGiB"
  > &
    Pick<TrainingPipelineProps, "dispatcherConcurrency">;
  /** Where chat completions are served: an external endpoint or private vLLM servers. */
  readonly inference?: InferenceOptions;
  readonly chatRateLimitPerMinute?: number;
  /** Chat tokens per tenant per minute, shared by the chat function's instances (CDK context chatTokensPerMinute). */
  readonly chatTokensPerMinute?: number;
  /** The operator's deployment limits (jobs API): live deployments per tenant, minutes to become healthy. */
  readonly deployments?: { readonly perTenant?: number; readonly timeoutMinutes?: number };
  /**
   * Every tenant's default quotas (files and jobs functions); `ftctl admin tenants set-quota` overrides
   * them per tenant. Unset ones take lambdas/core/tenants/quotas.ts's defaults (5 jobs, 10 GiB, 1000 files).
   */
  readonly quotas?: Partial<TenantQuotas>;
  /**
   * Each tenant's request rate, burst and daily request quota, enforced by API Gateway's usage plan
   * (CDK context tenantRequestsPerSecond, tenantBurst, tenantRequestsPerDay; defaults 10, 20, 10000).
   */
  readonly tenantLimits?: {
    readonly requestsPerSecond?: number;
    readonly burst?: number;
    readonly requestsPerDay?: number;
  };
  /**
   * The console's custom domain and its ACM certificate in us-east-1 (both or neither); unset, the
   * distribution's own `*.cloudfront.net` domain.
   */
  readonly console?: { readonly domainName?: string; readonly certificateArn?: string };
}

/**
 * Constructs that were split out of another keep their resources' logical ids, so that an update
 * replaces nothing (the dispatcher's and job-status's log groups, the job-status DLQ, the jobs
 * function's log group and permissions): a direct child of the stack with one of these ids is named as
 * its former parent when logical ids are allocated. Construct paths (and cdk-nag reports) show the new
 * constructs. The training compute keeps the former construct id `Training` itself: its launch
 * templates carry their construct path as a `Name` tag, and its Batch resources must stay put.
 */
const FORMER_IDS: Readonly<Record<string, string>> = {
  TrainingPipeline: "Training",
  Jobs: "Api",
};

/** Only the keys whose value is defined, so that the construct's defaults apply to the others. */
function defined<T extends Record<string, unknown>>(record: T): Partial<T> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The whole platform in one stack: each bounded context is one construct composed here. */
export class PlatformStack extends Stack {
  readonly catalog: PlatformCatalog;
  readonly storage: Storage;
  readonly observability: Observability;
  readonly queues: { readonly [Id in QueueId]: DurableQueue<Id> };
  readonly api: Api;
  readonly jobs: Jobs;
  readonly validation: Validation;
  readonly network: Network;
  readonly trainingCompute: TrainingCompute;
  readonly trainingPipeline: TrainingPipeline;
  readonly chat: Chat;
  /** Full-parameter models' servers, deployed through the API; only with private inference servers. */
  readonly deployments?: Deployments;
  /** Signed webhooks: endpoints API, stream fan-out, delivery with retries. */
  readonly webhooks: Webhooks;
  /** The console's static site (S3 + CloudFront), the one origin the API's CORS allows. */
  readonly console: Console;

  constructor(scope: Construct, id: string, props: PlatformStackProps) {
    super(scope, id, props);
    // First: a broken override stops the synth before anything is built.
    this.catalog = new PlatformCatalog(props.catalogOverride);
    this.observability = new Observability(this, "Observability", {
      ...(props.alarmEmail ? { alarmEmail: props.alarmEmail } : {}),
    });
    this.storage = new Storage(this, "Storage", {
      prefix: props.prefix,
      ...(props.removalPolicy ? { removalPolicy: props.removalPolicy } : {}),
    });
    const queues = {} as { [Id in QueueId]: DurableQueue<Id> };
    for (const definition of QUEUES) {
      (queues as Record<QueueId, DurableQueue>)[definition.id] = new DurableQueue(
        this,
        `${pascal(definition.id)}Queue`,
        {
          prefix: props.prefix,
          definition,
          alarmTopic: this.observability.alarmTopic,
        },
      );
    }
    this.queues = queues;

    const { storage, catalog } = this;
    const { dispatcherConcurrency, ...compute } = props.training ?? {};
    // The console is built last (it needs the API's and chat's URLs); its origin is read when synthesized.
    const consoleOrigin = Lazy.string({ produce: () => this.console.origin });
    this.api = new Api(this, "Api", {
      consoleOrigin,
      apiKeysTable: storage.table("api-keys"),
      filesTable: storage.table("files"),
      jobsTable: storage.table("jobs"),
      datasetsBucket: storage.bucket("datasets"),
      usageTable: storage.table("usage"),
      tenantsTable: storage.table("tenants"),
      ...defined({
        tenantRequestsPerSecond: props.tenantLimits?.requestsPerSecond,
        tenantBurst: props.tenantLimits?.burst,
        tenantRequestsPerDay: props.tenantLimits?.requestsPerDay,
      }),
    });
    this.validation = new Validation(this, "Validation", {
      datasetsBucket: storage.bucket("datasets"),
      filesTable: storage.table("files"),
      queue: queues.validation,
      catalog,
    });
    const privateInference = (props.inference?.servers?.length ?? 0) > 0;
    this.network = new Network(this, "Network", { xrayEndpoint: privateInference });
    const trainingData: TrainingData = {
      jobsTable: storage.table("jobs"),
      eventsTable: storage.table("job-events"),
      datasetsBucket: storage.bucket("datasets"),
      artifactsBucket: storage.bucket("artifacts"),
    };
    this.trainingCompute = new TrainingCompute(this, "Training", {
      ...trainingData,
      network: this.network,
      catalog,
      ...compute,
    });
    this.jobs = new Jobs(this, "Jobs", {
      filesTable: storage.table("files"),
      jobsTable: storage.table("jobs"),
      eventsTable: storage.table("job-events"),
      modelsTable: storage.table("models"),
      idempotencyTable: storage.table("idempotency"),
      tenantsTable: storage.table("tenants"),
      artifactsBucket: storage.bucket("artifacts"),
      trainingQueue: queues.training.ref,
      deploymentsQueue: queues.deployments.ref,
      catalog,
      // The planner in the jobs function chooses among the instance types the training compute has.
      instanceTypes: this.trainingCompute.instanceTypes,
    });
    this.api.routeJobs(this.jobs.function);
    this.webhooks = new Webhooks(this, "Webhooks", {
      webhooksTable: storage.table("webhooks"),
      deliveriesTable: storage.table("webhook-deliveries"),
      jobsTable: storage.table("jobs"),
      filesTable: storage.table("files"),
      queue: queues["webhook-deliveries"],
      alarmTopic: this.observability.alarmTopic,
    });
    this.api.routeWebhooks(this.webhooks.apiFunction);
    this.trainingPipeline = new TrainingPipeline(this, "TrainingPipeline", {
      ...trainingData,
      compute: this.trainingCompute,
      modelsTable: storage.table("models"),
      filesTable: storage.table("files"),
      queue: queues.training,
      alarmTopic: this.observability.alarmTopic,
      catalog,
      dispatcherConcurrency,
    });
    this.chat = new Chat(this, "Chat", {
      api: this.api,
      apiKeysTable: storage.table("api-keys"),
      modelsTable: storage.table("models"),
      usageTable: storage.table("usage"),
      chatRateTable: storage.table("chat-rate"),
      artifactsBucket: storage.bucket("artifacts"),
      accessLogsBucket: storage.accessLogsBucket,
      network: this.network,
      alarmTopic: this.observability.alarmTopic,
      catalog,
      ...(props.inference ? { inference: props.inference } : {}),
      ...(props.chatRateLimitPerMinute !== undefined
        ? { rateLimitPerMinute: props.chatRateLimitPerMinute }
        : {}),
      ...(props.chatTokensPerMinute !== undefined ? { tokensPerMinute: props.chatTokensPerMinute } : {}),
      consoleOrigin,
    });
    this.console = new Console(this, "Console", {
      api: this.api,
      chat: this.chat,
      accessLogsBucket: storage.accessLogsBucket,
      ...defined({
        removalPolicy: props.removalPolicy,
        domainName: props.console?.domainName,
        certificateArn: props.console?.certificateArn,
      }),
    });
    // Deployed models' servers answer chat inside the VPC, where the chat function is only beside private
    // inference servers (an external endpoint needs it outside: the VPC has no internet route).
    if (this.chat.inference && this.chat.securityGroup) {
      this.deployments = new Deployments(this, "Deployments", {
        network: this.network,
        artifactsBucket: storage.bucket("artifacts"),
        modelsTable: storage.table("models"),
        queue: queues.deployments,
        catalog,
        alarmTopic: this.observability.alarmTopic,
        prefix: props.prefix,
        cluster: this.chat.inference.cluster,
        ...(props.inference?.imageUri ? { imageUri: props.inference.imageUri } : {}),
      });
      this.deployments.allowFrom(this.chat.securityGroup);
      this.jobs.function.addEnvironment(CONFIG_ENV.deploymentsEnabled, "true");
    }
    if (props.deployments?.perTenant !== undefined) {
      this.jobs.function.addEnvironment(CONFIG_ENV.deploymentsPerTenant, String(props.deployments.perTenant));
    }
    const quotaEnv: Record<keyof TenantQuotas, string> = {
      concurrentJobs: CONFIG_ENV.tenantMaxConcurrentJobs,
      storedBytes: CONFIG_ENV.tenantMaxStoredBytes,
      files: CONFIG_ENV.tenantMaxFiles,
    };
    for (const [name, variable] of Object.entries(quotaEnv)) {
      const value = props.quotas?.[name as keyof TenantQuotas];
      if (value === undefined) continue;
      this.api.filesFunction.addEnvironment(variable, String(value));
      this.jobs.function.addEnvironment(variable, String(value));
    }
    if (props.deployments?.timeoutMinutes !== undefined) {
      this.jobs.function.addEnvironment(
        CONFIG_ENV.deploymentTimeoutMinutes,
        String(props.deployments.timeoutMinutes),
      );
    }
    new CfnOutput(this, "ConsoleUrl", {
      value: `${this.console.origin}/`,
      description: "The console (experience center); sign in with a tenant's API key",
    });
    new CfnOutput(this, "ChatFunctionUrl", { value: this.chat.functionUrl.url, description: "CHAT_URL" });
    new CfnOutput(this, "LoraJobQueueArn", {
      value: this.trainingCompute.jobQueues.lora.jobQueueArn,
      description: "Batch job queue of LoRA training",
    });
    new CfnOutput(this, "FullJobQueueArn", {
      value: this.trainingCompute.jobQueues.full.jobQueueArn,
      description: "Batch job queue of full-parameter training",
    });
    new CfnOutput(this, "MultiNodeJobQueueArn", {
      value: this.trainingCompute.multiNode.jobQueue.jobQueueArn,
      description: "Batch job queue of multi-node (torchrun + FSDP2) training",
    });
    new CfnOutput(this, "ApiBaseUrl", { value: `${this.api.restApi.url}v4`, description: "OPENAI_BASE_URL" });
    // ftctl admin reads it (--stack) to give each new tenant its API Gateway key in the plan.
    new CfnOutput(this, "TenantUsagePlanId", {
      value: this.api.usagePlan.usagePlanId,
      description: USAGE_PLAN_ENV,
    });

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

  /**
   * CDK's own allocation (`Stack.allocateLogicalId`), on the path with {@link FORMER_IDS} applied. Two
   * resources that would end up with one logical id fail the synth (CDK refuses duplicates).
   */
  protected override allocateLogicalId(element: CfnElement): string {
    const scopes = element.node.scopes.map((scope) => {
      const former = scope.node.scope === this ? FORMER_IDS[scope.node.id] : undefined;
      return former ? { node: { id: former } } : scope;
    });
    return super.allocateLogicalId({ node: { scopes }, stack: this } as unknown as CfnElement);
  }
}
