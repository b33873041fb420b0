import type { FileRecord } from "../files/file-record.ts";
import type { TrainingMessage } from "./dispatch.ts";
import type { TransitionResult } from "./state-machine.ts";
import type { FineTunedModelStatus, JobEventItem, JobRecord, ModelRecord } from "./wire.ts";

/**
 * The ports of the jobs context: what its services (lambdas/jobs-api) need from storage, the training
 * queue and the training runner. Adapters in lambdas/aws implement them (DynamoDB, SQS, Batch, S3); the
 * unit tests implement them in memory. An adapter reports what happened as a result (an `outcome`
 * union) or a domain error declared here, never as an HTTP error: which status and message a client
 * gets is the service's decision.
 */

/** One page of an `after` / `limit` list, newest first. */
export interface Page<T> {
  readonly items: T[];
  readonly hasMore: boolean;
}

/** A stored `Idempotency-Key`: which job a key made, and a hash of the body it was sent with. */
export interface IdempotencyRecord {
  /** `{tenantId}#{key}`: keys are scoped to the tenant. */
  readonly id: string;
  readonly requestHash: string;
  readonly jobId: string;
  /** Epoch seconds; DynamoDB TTL removes the record after it. */
  readonly expiration: number;
}

/** A new job and everything written with it, all or nothing. */
export interface NewJob {
  readonly job: JobRecord;
  /** The model record whose key (the model code) reserves the code. */
  readonly model: ModelRecord;
  readonly events: readonly JobEventItem[];
  /**
   * The request's Idempotency-Key, when it sent one: written only if the key is new or has expired by
   * `job.createdAt` (the write's "now").
   */
  readonly idempotency?: IdempotencyRecord;
}

/** The file parameter of a create request. */
export type JobFileParam = "training_file" | "validation_file";

/**
 * Why a {@link NewJob} was not written, or that it was. Nothing is written unless `created`. When the
 * Idempotency-Key was taken, that is the outcome whatever else failed: the request that took it may be
 * this one's twin, whose job also holds the model code.
 */
export type CreateJobOutcome =
  | { readonly outcome: "created" }
  /** A training or validation file stopped being `processed` (deleted, re-uploaded) after it was checked. */
  | { readonly outcome: "file_not_processed"; readonly param: JobFileParam; readonly fileId: string }
  /** Another model (any tenant's) has this code. */
  | { readonly outcome: "model_code_taken"; readonly modelCode: string }
  /** Another request with the same Idempotency-Key committed first. */
  | { readonly outcome: "idempotency_key_taken" };

export type AcceptedTransition = Extract<TransitionResult, { ok: true }>;

/** A state-machine transition to apply to a stored job (see {@link JobsStore.applyTransition}). */
export interface TransitionWrite {
  readonly job: Pick<JobRecord, "tenantId" | "jobId" | "modelCode">;
  readonly result: AcceptedTransition;
  /** The event to append; the transition's own message by default. */
  readonly event?: JobEventItem;
  readonly nowSeconds: number;
  readonly fields?: Readonly<Record<string, unknown>>;
  /**
   * The training run this change is about: stored as `batchJobId`, and the change applies only while
   * the job has no run yet or this one — so a redelivered dispatch stores nothing twice and events of
   * another run change nothing.
   */
  readonly runId?: string;
  readonly model?: { readonly status: FineTunedModelStatus; readonly artifactUri?: string | null };
}

export type DeleteJobOutcome =
  | { readonly outcome: "deleted" }
  | { readonly outcome: "not_found" }
  /** Nothing was deleted: the job has not ended. */
  | { readonly outcome: "not_finished"; readonly job: JobRecord };

export type DeleteModelOutcome =
  | { readonly outcome: "deleted" }
  /** No model has the code, or another tenant's has: the same answer for both. */
  | { readonly outcome: "not_found" }
  /** Nothing was deleted: the model's job is still training. */
  | { readonly outcome: "still_training"; readonly jobId: string };

/** `after` named no event of the job (listing events pages by event id, which is not a sort key). */
export class EventCursorNotFoundError extends Error {
  constructor(readonly after: string) {
    super(`no event ${after} in this job`);
    this.name = "EventCursorNotFoundError";
  }
}

/** The jobs and their events. */
export interface JobsStore {
  get(tenantId: string, jobId: string): Promise<JobRecord | undefined>;
  /** A tenant's jobs, newest first; `after` is the last job id of the previous page. */
  list(tenantId: string, limit: number, after?: string): Promise<Page<JobRecord>>;
  /**
   * Writes a job, its model code, its first events and its Idempotency-Key in one transaction. The
   * files must still be `processed`, the code free and the key new; else nothing is written.
   */
  create(job: NewJob): Promise<CreateJobOutcome>;
  /**
   * Moves the job's status only if it is still one of `result.allowedFrom`, appends the event and
   * updates the model, all or nothing. False when a concurrent change won: nothing was written.
   */
  applyTransition(write: TransitionWrite): Promise<boolean>;
  /** Deletes an ended job and its events; the model and artifacts stay. */
  deleteJob(tenantId: string, jobId: string): Promise<DeleteJobOutcome>;
  /**
   * A job's events, newest first; `after` is an event id of the previous page.
   * @throws EventCursorNotFoundError when `after` is not an event of the job
   */
  listEvents(tenantId: string, jobId: string, limit: number, after?: string): Promise<Page<JobEventItem>>;
}

/** The fine-tuned models; a model code is the key, across tenants. */
export interface ModelsStore {
  /** Any tenant's model of that code: the caller checks the owner. */
  getModel(modelCode: string): Promise<ModelRecord | undefined>;
  /** A tenant's models, newest first. */
  listModels(tenantId: string): Promise<ModelRecord[]>;
  /** Deletes a tenant's model whose job has ended, freeing its code. */
  deleteModel(tenantId: string, modelCode: string): Promise<DeleteModelOutcome>;
  /** Sets or clears the display name (on the job too); undefined when the code is not the tenant's. */
  renameModel(tenantId: string, modelCode: string, name: string | null): Promise<ModelRecord | undefined>;
}

/** The Idempotency-Keys of job creation (written by {@link JobsStore.create}). */
export interface IdempotencyStore {
  getIdempotency(id: string): Promise<IdempotencyRecord | undefined>;
}

/** What the jobs context reads of the files context: a tenant's file, with its status and statistics. */
export interface FilesReader {
  get(tenantId: string, fileId: string): Promise<FileRecord | undefined>;
}

/** The queue between the jobs API and the dispatcher. */
export interface TrainingQueue {
  send(message: TrainingMessage): Promise<void>;
  /** Messages waiting or in flight: the jobs ahead of a new one (approximate). */
  depth(): Promise<number>;
}

/** Stops training runs (AWS Batch, or the local platform's runner). */
export interface TrainingCanceller {
  /** A run that already ended is not an error. */
  terminate(runId: string, reason: string): Promise<void>;
}

/** The artifacts bucket as the jobs API reads it: checkpoint folders and their manifests. */
export interface ArtifactStore {
  /** The "folders" directly under `prefix` (which ends in `/`). */
  childPrefixes(prefix: string): Promise<string[]>;
  /** The object parsed as JSON; undefined when it does not exist. */
  getJson(key: string): Promise<unknown>;
}
