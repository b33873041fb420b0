/**
 * The platform's stateful resources as plain data: the single source of truth that both the CDK
 * constructs (infra/constructs) and the LocalStack bootstrap (local/bootstrap.ts) read, so the local
 * platform and the cloud cannot drift apart. No CDK or AWS SDK imports here on purpose (the pure domain
 * only): this module is loaded by Lambda-free tooling and by tests.
 */

import { CATALOG_OVERRIDE_ENV } from "../../lambdas/core/catalog/base-models.ts";
import { CONTRACT } from "../../lambdas/core/contract.ts";
import { TRAINING_QUEUE_MAX_RECEIVES } from "../../lambdas/core/jobs/dispatch.ts";
import { TRAINING_INSTANCE_TYPES_ENV } from "../../lambdas/core/jobs/resources.ts";
import { QUOTA_ENV } from "../../lambdas/core/tenants/quotas.ts";
import { RETRY_ENV } from "../../lambdas/core/webhooks/retry.ts";

export type AttributeType = "S" | "N";

export interface KeyAttribute {
  readonly name: string;
  readonly type: AttributeType;
}

export interface IndexDefinition {
  readonly indexName: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  /** ALL keeps list queries to one round trip; the items are small. */
  readonly projection: "ALL" | "KEYS_ONLY";
}

export interface TableDefinition {
  /** Logical id, also the suffix of the physical name (`{prefix}-{id}`). */
  readonly id: TableId;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  readonly globalSecondaryIndexes: readonly IndexDefinition[];
  /** Attribute holding an epoch-seconds expiry, when items expire. */
  readonly timeToLiveAttribute?: string;
  readonly stream?: "NEW_IMAGE" | "NEW_AND_OLD_IMAGES";
}

export interface QueueDefinition {
  readonly id: QueueId;
  /** Seconds; must exceed the consumer's timeout (AWS recommends 6x) so a slow message is not redelivered. */
  readonly visibilityTimeoutSeconds: number;
  readonly retentionPeriodSeconds: number;
  /** Receives after which a message moves to `{id}-dlq`. */
  readonly maxReceiveCount: number;
  readonly dlqRetentionPeriodSeconds: number;
}

export interface BucketDefinition {
  readonly id: BucketId;
  readonly versioned: boolean;
}

export type TableId =
  | "files"
  | "jobs"
  | "job-events"
  | "models"
  | "api-keys"
  | "idempotency"
  | "usage"
  | "tenants"
  | "chat-rate"
  | "webhooks"
  | "webhook-deliveries";
export type QueueId = "validation" | "training" | "deployments" | "webhook-deliveries";
export type BucketId = "datasets" | "artifacts";

const S = (name: string): KeyAttribute => ({ name, type: "S" });
const N = (name: string): KeyAttribute => ({ name, type: "N" });

const FOURTEEN_DAYS = 14 * 24 * 3600;
const FOUR_DAYS = 4 * 24 * 3600;

/**
 * Tenant id leads every tenant-owned key, so a query can never cross tenants. Ids that sort by time
 * (`file-…`, `ftjob-…`) make the sort key double as creation order for paginated lists.
 */
export const TABLES: readonly TableDefinition[] = [
  // Streams (old and new images): the webhook fan-out sees every status change, whoever wrote it
  // (lambdas/webhook-fanout), so no writer has to remember to emit an event.
  {
    id: "files",
    partitionKey: S("tenantId"),
    sortKey: S("fileId"),
    globalSecondaryIndexes: [],
    stream: "NEW_AND_OLD_IMAGES",
  },
  {
    id: "jobs",
    partitionKey: S("tenantId"),
    sortKey: S("jobId"),
    globalSecondaryIndexes: [],
    stream: "NEW_AND_OLD_IMAGES",
  },
  {
    id: "job-events",
    // `{tenantId}#{jobId}` / `evt#{epochMillis:013}#{random}`: events of one job, in time order.
    partitionKey: S("jobKey"),
    sortKey: S("eventKey"),
    globalSecondaryIndexes: [],
  },
  {
    id: "models",
    // The model code alone is the key: that is what makes it globally unique (conditional put).
    partitionKey: S("modelCode"),
    globalSecondaryIndexes: [
      { indexName: "byTenant", partitionKey: S("tenantId"), sortKey: N("createdAt"), projection: "ALL" },
    ],
  },
  {
    id: "api-keys",
    // Only the SHA-256 of a key is stored; the authorizer looks it up directly.
    partitionKey: S("keyHash"),
    globalSecondaryIndexes: [
      { indexName: "byTenant", partitionKey: S("tenantId"), sortKey: S("keyId"), projection: "ALL" },
    ],
  },
  {
    // Not in the original design: Idempotency-Key records need their own expiry, and keeping them out
    // of the entity tables keeps list queries clean.
    id: "idempotency",
    partitionKey: S("id"),
    globalSecondaryIndexes: [],
    timeToLiveAttribute: "expiration",
  },
  {
    // Not in the original design: chat tokens per tenant for billing (`GET /v4/usage`). One item per
    // tenant, UTC day and model (`{YYYY-MM-DD}#{model}`, lambdas/core/usage), whose counters each
    // answered chat adds to; a date range is one key-condition query.
    id: "usage",
    partitionKey: S("tenantId"),
    sortKey: S("usageKey"),
    globalSecondaryIndexes: [],
  },
  {
    // Not in the original design: the operator's per-tenant settings (quota overrides,
    // lambdas/core/tenants/quotas.ts), one item per tenant. Apart from the api-keys table, whose key is
    // a key's hash: settings belong to the tenant, not to any of its keys.
    id: "tenants",
    partitionKey: S("tenantId"),
    globalSecondaryIndexes: [],
  },
  {
    // Not in the original design: the chat's tokens per tenant per minute, shared by every chat
    // function instance (lambdas/core/chat/token-rate.ts). `{tenantId}#{minutes since epoch}`; expires.
    id: "chat-rate",
    partitionKey: S("windowKey"),
    globalSecondaryIndexes: [],
    timeToLiveAttribute: "expiresAt",
  },
  {
    // Not in the original design: tenants' webhook endpoints (url, events, signing secret).
    id: "webhooks",
    partitionKey: S("tenantId"),
    sortKey: S("endpointId"),
    globalSecondaryIndexes: [],
  },
  {
    // Not in the original design: each endpoint's deliveries, `{tenantId}#{endpointId}` /
    // `{created_at:010}#{eventId}` (newest last), one item per event updated by each attempt; expire.
    id: "webhook-deliveries",
    partitionKey: S("endpointKey"),
    sortKey: S("deliveryKey"),
    globalSecondaryIndexes: [],
    timeToLiveAttribute: "expiresAt",
  },
];

export const QUEUES: readonly QueueDefinition[] = [
  {
    id: "validation",
    // The validator may stream a 1 GiB object for several minutes.
    visibilityTimeoutSeconds: 1800,
    retentionPeriodSeconds: FOUR_DAYS,
    maxReceiveCount: 5,
    dlqRetentionPeriodSeconds: FOURTEEN_DAYS,
  },
  {
    id: "training",
    visibilityTimeoutSeconds: 360,
    retentionPeriodSeconds: FOUR_DAYS,
    // The dispatcher fails a job whose run cannot be submitted on the last delivery.
    maxReceiveCount: TRAINING_QUEUE_MAX_RECEIVES,
    dlqRetentionPeriodSeconds: FOURTEEN_DAYS,
  },
  {
    // The deployer: starts, health-checks (a delayed message per check) and releases model servers.
    id: "deployments",
    visibilityTimeoutSeconds: 360,
    retentionPeriodSeconds: FOUR_DAYS,
    maxReceiveCount: 5,
    dlqRetentionPeriodSeconds: FOURTEEN_DAYS,
  },
  {
    // One message per (event, endpoint) and attempt: the delivery function re-sends a failed one with a
    // delay (lambdas/core/webhooks/retry.ts, ~24 h) and then to the DLQ itself; the redrive below only
    // catches messages the function could not handle at all. 6x the function's 30 s timeout.
    id: "webhook-deliveries",
    visibilityTimeoutSeconds: 180,
    retentionPeriodSeconds: FOUR_DAYS,
    maxReceiveCount: 5,
    dlqRetentionPeriodSeconds: FOURTEEN_DAYS,
  },
];

export const BUCKETS: readonly BucketDefinition[] = [
  { id: "datasets", versioned: false },
  // Versioned: trained adapters and weights are the product of GPU hours.
  { id: "artifacts", versioned: true },
];

export interface NotificationDefinition {
  readonly bucket: BucketId;
  /** Only keys under this prefix notify. */
  readonly prefix: string;
  /** And only keys ending so, when given. */
  readonly suffix?: string;
  readonly queue: QueueId;
}

/**
 * The dataset layout's fixed ending (`.jsonl`, contract/platform.json): the jobs' results files beside
 * the datasets (`….csv`) are never sent to the validator.
 */
const DATASET_SUFFIX = CONTRACT.s3.datasetObject.slice(CONTRACT.s3.datasetObject.lastIndexOf("}") + 1);

/** S3 → SQS wiring: every dataset object created under `tenants/` in the datasets bucket is validated. */
export const NOTIFICATIONS: readonly NotificationDefinition[] = [
  { bucket: "datasets", prefix: "tenants/", suffix: DATASET_SUFFIX, queue: "validation" },
];

/** Default prefix of physical names; CDK context `prefix` or env `FT_PREFIX` override it. */
export const DEFAULT_PREFIX = "ft";

export const physicalName = (prefix: string, id: string): string => `${prefix}-${id}`;
export const dlqName = (prefix: string, id: QueueId): string => `${prefix}-${id}-dlq`;

export function tableDefinition(id: TableId): TableDefinition {
  const table = TABLES.find((t) => t.id === id);
  if (!table) throw new Error(`unknown table ${id}`);
  return table;
}

export function queueDefinition(id: QueueId): QueueDefinition {
  const queue = QUEUES.find((q) => q.id === id);
  if (!queue) throw new Error(`unknown queue ${id}`);
  return queue;
}

/** Environment variable names through which functions receive resource names. */
export const TABLE_ENV: Record<TableId, string> = {
  files: "FILES_TABLE",
  jobs: "JOBS_TABLE",
  "job-events": "EVENTS_TABLE",
  models: "MODELS_TABLE",
  "api-keys": "API_KEYS_TABLE",
  idempotency: "IDEMPOTENCY_TABLE",
  usage: "USAGE_TABLE",
  tenants: "TENANTS_TABLE",
  "chat-rate": "CHAT_RATE_TABLE",
  webhooks: "WEBHOOKS_TABLE",
  "webhook-deliveries": "WEBHOOK_DELIVERIES_TABLE",
};

export const BUCKET_ENV: Record<BucketId, string> = {
  datasets: "DATASETS_BUCKET",
  artifacts: "ARTIFACTS_BUCKET",
};

/**
 * The tenants' usage plan id: a stack output's description, and the variable ftctl admin reads when
 * its tables come from the environment. Unset (the local platform), tenants get no API Gateway key.
 */
export const USAGE_PLAN_ENV = "USAGE_PLAN_ID";

export const QUEUE_ENV: Record<QueueId, string> = {
  validation: "VALIDATION_QUEUE_URL",
  training: "TRAINING_QUEUE_URL",
  deployments: "DEPLOYMENTS_QUEUE_URL",
  "webhook-deliveries": "WEBHOOK_DELIVERIES_QUEUE_URL",
};

/**
 * Environment variables that carry configuration rather than a resource name. Constructs set them,
 * handlers read them (`lambdas/aws/env.ts`), the local platform sets them: all through these names.
 */
export const CONFIG_ENV = {
  /** JSON override of the base-model catalog (see `lambdas/core/catalog`). */
  catalogOverride: CATALOG_OVERRIDE_ENV,
  /** JSON: the instance types each training queue may use (the resource planner's choices). */
  trainingInstanceTypes: TRAINING_INSTANCE_TYPES_ENV,
  /** JSON: instance type → single-node job queue ARN. */
  batchJobQueues: "BATCH_JOB_QUEUES",
  /** JSON: instance type → single-node job definition ARN. */
  batchJobDefinitions: "BATCH_JOB_DEFINITIONS",
  batchMultinodeJobQueue: "BATCH_MULTINODE_JOB_QUEUE",
  /** JSON: instance type → multi-node job definition ARN. */
  batchMultinodeJobDefinitions: "BATCH_MULTINODE_JOB_DEFINITIONS",
  /** JSON: model code, base model or `*` → inference server URL. */
  inferenceEndpoints: "INFERENCE_ENDPOINTS",
  chatRateLimitPerMinute: "CHAT_RATE_LIMIT_PER_MINUTE",
  /** Chat tokens per tenant per minute, shared by all chat instances (the chat-rate table); 0 = off. */
  chatTokensPerMinute: "CHAT_TOKENS_PER_MINUTE",
  /** Default quotas of every tenant (lambdas/core/tenants/quotas.ts); `ftctl admin tenants set-quota` overrides them. */
  tenantMaxConcurrentJobs: QUOTA_ENV.concurrentJobs,
  tenantMaxStoredBytes: QUOTA_ENV.storedBytes,
  tenantMaxFiles: QUOTA_ENV.files,
  /** Bearer key for the inference servers, when the operator puts one on them (no construct sets it). */
  inferenceApiKey: "INFERENCE_API_KEY",
  /**
   * A base model's family (chat template), from the catalog: the trainer's (dispatch.ts) and each
   * private inference server's (infra/constructs/inference.ts).
   */
  modelFamily: "MODEL_FAMILY",
  /**
   * `s3://{artifacts}/{weightsPrefix}`: where a base model's weights are, from the catalog; the
   * trainer's and each private inference server's.
   */
  baseModelUri: "BASE_MODEL_URI",
  /** Live (deploying or deployed) model deployments a tenant may hold at once; 2 by default. */
  deploymentsPerTenant: "DEPLOYMENTS_PER_TENANT",
  /** Minutes a model server may take to pass its health check before its deployment fails; 45 by default. */
  deploymentTimeoutMinutes: "DEPLOYMENT_TIMEOUT_MINUTES",
  /** Seconds between the deployer's health checks of a starting server; 30 by default. */
  deploymentCheckSeconds: "DEPLOYMENT_CHECK_SECONDS",
  /**
   * `true` where the stack has the deployer and its ECS capacity (infra/constructs/deployments.ts: with
   * private inference servers); unset otherwise, when nothing would start a deployment's server.
   */
  deploymentsEnabled: "DEPLOYMENTS_ENABLED",
  // The deployer's ECS runtime (lambdas/aws/ecs-deployment-runtime.ts), set by the deployments construct.
  /** The ECS cluster model servers run in. */
  deploymentCluster: "DEPLOYMENT_CLUSTER",
  /** Family of the template task definition each deployment's own copy starts from. */
  deploymentTaskFamily: "DEPLOYMENT_TASK_FAMILY",
  /** JSON: the private subnet ids of the servers' tasks. */
  deploymentSubnets: "DEPLOYMENT_SUBNETS",
  /** The servers' security group (only the chat function may reach them). */
  deploymentSecurityGroup: "DEPLOYMENT_SECURITY_GROUP",
  /** The Cloud Map private DNS namespace a server's name is registered in: its id and DNS name. */
  deploymentNamespaceId: "DEPLOYMENT_NAMESPACE_ID",
  deploymentNamespaceName: "DEPLOYMENT_NAMESPACE_NAME",
  /** JSON: instance type → ECS capacity provider name. */
  deploymentCapacityProviders: "DEPLOYMENT_CAPACITY_PROVIDERS",
  /**
   * `1`: webhooks may go to http URLs and private addresses (the local platform sets it, so a receiver
   * on localhost works). Unset in AWS: https to public addresses only (lambdas/core/webhooks/url-policy.ts).
   */
  webhookAllowPrivate: "WEBHOOK_ALLOW_PRIVATE",
  /** The webhook-deliveries DLQ, where the delivery function puts a delivery whose retries are spent. */
  webhookDeadLetterQueueUrl: "WEBHOOK_DELIVERIES_DLQ_URL",
  /** The delivery retry schedule (lambdas/core/webhooks/retry.ts): first delay, factor, longest delay, window (seconds). */
  webhookRetryBaseSeconds: RETRY_ENV.baseSeconds,
  webhookRetryFactor: RETRY_ENV.factor,
  webhookRetryMaxDelaySeconds: RETRY_ENV.maxDelaySeconds,
  webhookRetryWindowSeconds: RETRY_ENV.windowSeconds,
} as const;

/**
 * Each function's service name: its log lines' `service`, its traces' and its metrics' namespace
 * dimension. The construct sets `POWERTOOLS_SERVICE_NAME` from it and the handler's logger factory
 * reads the same entry, so the two cannot disagree.
 */
export const SERVICES = {
  authorizer: "authorizer",
  filesApi: "files-api",
  usageApi: "usage-api",
  jobsApi: "jobs-api",
  chat: "chat",
  validator: "validator",
  dispatcher: "dispatcher",
  jobStatus: "job-status",
  deployer: "deployer",
  webhooksApi: "webhooks-api",
  webhookFanout: "webhook-fanout",
  webhookDelivery: "webhook-delivery",
} as const;
export type ServiceName = (typeof SERVICES)[keyof typeof SERVICES];

/** The CloudWatch namespace of the platform's metrics (EMF). */
export const METRICS_NAMESPACE = "FineTuningPlatform";
