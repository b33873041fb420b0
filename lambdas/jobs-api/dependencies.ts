import type { BaseModelCatalog, TrainingMethod } from "../core/catalog/base-models.ts";
import type {
  ArtifactStore,
  FilesReader,
  IdempotencyStore,
  JobsStore,
  ModelsStore,
  TrainingCanceller,
  TrainingQueue,
} from "../core/jobs/ports.ts";
import type { ConfiguredInstanceTypes } from "../core/jobs/resources.ts";
import type { JobQuotaPorts } from "../core/tenants/quotas.ts";
import type { DeploymentsDependencies } from "./deployments.ts";

/**
 * What the jobs API's services work with: the ports of lambdas/core/jobs/ports.ts (DynamoDB, SQS, Batch
 * and S3 adapters in AWS; in-memory fakes in the unit tests) and the deployment's configuration. Each
 * service names the part it uses.
 */
export interface JobsDependencies extends Clock, DeploymentsDependencies {
  /** The jobs context's tables: jobs and events, models, Idempotency-Keys (one repository in AWS). */
  readonly jobs: JobsStore & ModelsStore & IdempotencyStore;
  readonly files: FilesReader;
  readonly queue: TrainingQueue;
  /** Cancel and pause only terminate: the job queues and definitions are the dispatcher's business. */
  readonly runner: TrainingCanceller;
  readonly artifacts: ArtifactStore;
  readonly catalog: BaseModelCatalog;
  /** The deployment's GPU instance types (`TRAINING_INSTANCE_TYPES`); every known type when absent. */
  readonly instanceTypes?: ConfiguredInstanceTypes;
  /** The tenant's concurrent-jobs quota and its unfinished jobs (lambdas/core/tenants/quotas.ts). */
  readonly quotas: JobQuotaPorts;
  /** Awaited before every request: the catalog's check against stored model codes (code-conflicts.ts). */
  readonly ready?: () => Promise<void>;
  /** Counts what the operator watches (EMF metrics in AWS); nothing when absent. */
  readonly record?: JobsMetricsHooks;
}

/** The jobs API's metrics: a job created, a job cancelled (the job-status function never sees a cancel). */
export interface JobsMetricsHooks {
  readonly created: (job: { readonly method: TrainingMethod; readonly baseModel: string }) => void;
  readonly cancelled: (job: { readonly method: TrainingMethod }) => void;
}

/** The services' clock, pinned by tests. */
export interface Clock {
  /** Epoch milliseconds; `Date.now` when absent. */
  readonly now?: () => number;
}

export const nowMs = (clock: Clock): number => clock.now?.() ?? Date.now();
export const nowSeconds = (clock: Clock): number => Math.floor(nowMs(clock) / 1000);
