import type { TrainingMethod } from "../catalog/base-models.ts";
import type { TrainingObjective } from "../catalog/catalog-file.ts";
import { type DeploymentRecord, toDeploymentObject } from "../deployments/deployment.ts";
import type { CreateJobRequest, JobPlan } from "./create-request.ts";
import { completeHyperparameters, type StoredHyperparameters } from "./hyperparameters.ts";
import { eventKey, jobKey, newEventId } from "./ids.ts";
import type { EventLevel, JobError, JobStatus } from "./state-machine.ts";

/**
 * Stored shapes of the jobs context and their OpenAI wire objects: `fine_tuning.job`,
 * `fine_tuning.job.event`, `fine_tuning.job.checkpoint` and the fine-tuned `model`. Times are epoch
 * seconds, as on the wire, except the events table's sort key (milliseconds, for order).
 */

/**
 * The compute one job runs on, as the resource planner (`resources.ts`) chose it at creation: `nodes`
 * nodes of `instanceType`, `gpusPerNode` training processes on each. More than one node is an AWS Batch
 * multi-node parallel job.
 */
export interface JobResources {
  readonly nodes: number;
  readonly gpusPerNode: number;
  readonly instanceType: string;
}

/** The stored record in the `jobs` table (tenantId + jobId). */
export interface JobRecord {
  readonly tenantId: string;
  /** `ftjob-…`, time-sortable (ids.ts). */
  readonly jobId: string;
  /** The base model's name. */
  readonly model: string;
  readonly trainingFile: string;
  readonly validationFile: string | null;
  /**
   * The ETag of the training (validation) file's object as the validator read it: the trainer
   * downloads with `If-Match` on it and fails as invalid input on any other object. Absent on records
   * older than this check and for files validated before ETags were recorded.
   */
  readonly trainingFileETag?: string;
  readonly validationFileETag?: string;
  readonly method: TrainingMethod;
  /** What the job optimises; absent on records older than DPO, which are all supervised. */
  readonly objective?: TrainingObjective;
  /** The fine-tuned model the job starts from (DPO after SFT); absent when it starts from the base model. */
  readonly initModel?: InitModel;
  /** Resolved at creation: what the trainer receives, seed included (older records lack the later keys). */
  readonly hyperparameters: StoredHyperparameters;
  readonly modelCode: string;
  /** The model's display name at creation (renaming the model renames it here too); absent on older records. */
  readonly name?: string | null;
  /** The zhipuai SDK's `request_id` of the create request, kept as given; absent on older records. */
  readonly requestId?: string | null;
  readonly userProvidedSuffix: string | null;
  readonly seed: number;
  readonly metadata: Readonly<Record<string, string>> | null;
  readonly status: JobStatus;
  readonly createdAt: number;
  readonly finishedAt: number | null;
  readonly batchJobId: string | null;
  readonly error: JobError | null;
  readonly trainedTokens: number | null;
  readonly estimatedFinish: number | null;
  /** File ids of result files: the job's per-step metrics CSV (purpose `fine-tune-results`) once it succeeded. */
  readonly resultFiles: readonly string[];
  /** What the trainer's result.json says about the delivered weights; set on success when it says anything. */
  readonly trainingSummary?: TrainingSummary;
  /**
   * The planner's compute for the job. Absent on records older than the planner: those run as they
   * always did, on one node with every GPU their method's job definition gives them.
   */
  readonly resources?: JobResources;
  /**
   * How many times the job was resumed after a pause. Each resume starts a new training run, named by
   * `runName` (dispatch.ts) so that Batch's name lookup and the status handler tell it from the runs
   * before it; absent until the first resume.
   */
  readonly resumes?: number;
}

/**
 * A finished run's account of its result (the trainer's result.json, checked field by field: a field
 * it lacks or gets wrong is null). Shown as the job's `training_summary`.
 */
export interface TrainingSummary {
  /** The step whose weights are the result (the best evaluation's, when there was validation data). */
  readonly deliveredStep: number | null;
  /** The step with the lowest validation loss; null without validation data. */
  readonly bestStep: number | null;
  /** True when early stopping ended the run before its last step. */
  readonly earlyStopped: boolean | null;
  /** Loss and token accuracy of the delivered weights over the whole validation set. */
  readonly fullValidLoss: number | null;
  readonly fullValidMeanTokenAccuracy: number | null;
  /** The share of the training file held out as validation data, when no validation file was given. */
  readonly validationSplit: { readonly fraction: number; readonly examples: number } | null;
}

/** The `training_summary` wire object: null until the job succeeded with a summary. */
function toTrainingSummaryObject(summary: TrainingSummary | undefined) {
  if (!summary) return null;
  return {
    delivered_step: summary.deliveredStep,
    best_step: summary.bestStep,
    early_stopped: summary.earlyStopped,
    full_valid_loss: summary.fullValidLoss,
    full_valid_mean_token_accuracy: summary.fullValidMeanTokenAccuracy,
    validation_split: summary.validationSplit ? { ...summary.validationSplit } : null,
  };
}

/**
 * The tenant's own fine-tuned model a job starts from: its code, the job that trained it (whose result,
 * `adapter/` or `model/` by `method`, the trainer loads as `INIT_MODEL_URI`) and its method.
 */
export interface InitModel {
  readonly modelCode: string;
  readonly jobId: string;
  readonly method: TrainingMethod;
}

/** The record of a job about to be created: status `validating_files`, nothing trained yet. */
export function newJobRecord(args: {
  tenantId: string;
  jobId: string;
  createdAt: number;
  request: CreateJobRequest;
  plan: JobPlan;
  /** The files' `validatedETag`s, as the create checked them. */
  fileETags?: { readonly training?: string | undefined; readonly validation?: string | undefined };
}): JobRecord {
  const { request, plan } = args;
  const etags = args.fileETags ?? {};
  return {
    tenantId: args.tenantId,
    jobId: args.jobId,
    model: plan.baseModel.name,
    trainingFile: request.trainingFile,
    validationFile: request.validationFile,
    ...(etags.training ? { trainingFileETag: etags.training } : {}),
    ...(request.validationFile && etags.validation ? { validationFileETag: etags.validation } : {}),
    method: plan.method,
    objective: plan.objective,
    ...(plan.initModel ? { initModel: { ...plan.initModel } } : {}),
    hyperparameters: plan.hyperparameters,
    modelCode: plan.modelCode,
    name: request.name,
    requestId: request.requestId,
    userProvidedSuffix: plan.userProvidedSuffix,
    seed: plan.hyperparameters.seed,
    metadata: request.metadata,
    status: "validating_files",
    createdAt: args.createdAt,
    finishedAt: null,
    batchJobId: null,
    error: null,
    trainedTokens: null,
    estimatedFinish: null,
    resultFiles: [],
    resources: {
      nodes: plan.resources.nodes,
      gpusPerNode: plan.resources.gpusPerNode,
      instanceType: plan.resources.instanceType,
    },
  };
}

/** The hyperparameters as shown to clients: the resolved set without the seed (a field of its own). */
function shownHyperparameters(stored: StoredHyperparameters) {
  const h = completeHyperparameters(stored);
  return {
    n_epochs: h.n_epochs,
    batch_size: h.batch_size,
    learning_rate_multiplier: h.learning_rate_multiplier,
    lora_r: h.lora_r,
    lora_alpha: h.lora_alpha,
    lora_dropout: h.lora_dropout,
    max_seq_length: h.max_seq_length,
    beta: h.beta,
    eval_interval: h.eval_interval,
    early_stopping_patience: h.early_stopping_patience,
    validation_split: h.validation_split,
  };
}

type ShownHyperparameters = ReturnType<typeof shownHyperparameters>;

/**
 * The job's `method`. A supervised job keeps this platform's `{type: "lora" | "full", hyperparameters}`
 * (what its clients have always read); a DPO job has OpenAI's `{type: "dpo", dpo: {hyperparameters}}`,
 * with LoRA or full in the job's `training_type`.
 */
function methodObject(
  record: Pick<JobRecord, "objective" | "method">,
  hyperparameters: ShownHyperparameters,
):
  | { readonly type: TrainingMethod; readonly hyperparameters: ShownHyperparameters }
  | { readonly type: "dpo"; readonly dpo: { readonly hyperparameters: ShownHyperparameters } } {
  if (record.objective === "dpo") return { type: "dpo", dpo: { hyperparameters } };
  return { type: record.method, hyperparameters };
}

/**
 * The OpenAI `fine_tuning.job` object. `fine_tuned_model` is the model code once the job has
 * succeeded (null before, as on OpenAI); `model_code` and `name` are this platform's extra fields and
 * show the reserved code and the display name from the start; `request_id` is the zhipuai SDK's field.
 * `organization_id` is the tenant.
 */
export function toJobObject(record: JobRecord) {
  const hyperparameters = shownHyperparameters(record.hyperparameters);
  return {
    id: record.jobId,
    object: "fine_tuning.job" as const,
    model: record.model,
    created_at: record.createdAt,
    finished_at: record.finishedAt,
    fine_tuned_model: record.status === "succeeded" ? record.modelCode : null,
    organization_id: record.tenantId,
    result_files: [...record.resultFiles],
    training_summary: toTrainingSummaryObject(record.trainingSummary),
    status: record.status,
    validation_file: record.validationFile,
    training_file: record.trainingFile,
    hyperparameters,
    method: methodObject(record, hyperparameters),
    /** This platform's: LoRA adapters or full-parameter training, whatever `method.type` says. */
    training_type: record.method,
    /** This platform's: the fine-tuned model the job started from (DPO after SFT), else null. */
    parent_model: record.initModel?.modelCode ?? null,
    trained_tokens: record.trainedTokens,
    error: record.error ? { ...record.error } : null,
    seed: record.seed,
    metadata: record.metadata ? { ...record.metadata } : null,
    estimated_finish: record.estimatedFinish,
    user_provided_suffix: record.userProvidedSuffix,
    integrations: [] as never[],
    model_code: record.modelCode,
    name: record.name ?? null,
    request_id: record.requestId ?? null,
  };
}

export type JobObject = ReturnType<typeof toJobObject>;

/** One item of the `job-events` table. */
export interface JobEventItem {
  /** Partition key `{tenantId}#{jobId}`. */
  readonly jobKey: string;
  /** Sort key `evt#{epoch ms:013}#{6 hex}`. */
  readonly eventKey: string;
  /** `ftevent-…` */
  readonly id: string;
  /** Epoch seconds. */
  readonly createdAt: number;
  readonly level: EventLevel;
  /** `metrics` events carry `data` (step, train_loss, …); `message` events may. */
  readonly type: "message" | "metrics";
  readonly message: string;
  readonly data: Readonly<Record<string, unknown>> | null;
}

/** A new events-table item; `nowMs` and `randomHex` are parameters so tests and replays are exact. */
export function newJobEventItem(
  tenantId: string,
  jobId: string,
  event: {
    level: EventLevel;
    message: string;
    type?: "message" | "metrics";
    data?: Readonly<Record<string, unknown>> | null;
  },
  nowMs: number = Date.now(),
  randomHex?: string,
): JobEventItem {
  return {
    jobKey: jobKey(tenantId, jobId),
    eventKey: eventKey(nowMs, randomHex),
    id: newEventId(nowMs),
    createdAt: Math.floor(nowMs / 1000),
    level: event.level,
    type: event.type ?? "message",
    message: event.message,
    data: event.data ?? null,
  };
}

/** The OpenAI `fine_tuning.job.event` object. */
export function toJobEventObject(item: JobEventItem) {
  return {
    id: item.id,
    object: "fine_tuning.job.event" as const,
    created_at: item.createdAt,
    level: item.level,
    message: item.message,
    type: item.type,
    data: item.data ? { ...item.data } : null,
  };
}

export type JobEventObject = ReturnType<typeof toJobEventObject>;

/** A stored checkpoint (written by the trainer beside its S3 checkpoint). */
export interface CheckpointRecord {
  /** `ftckpt-…` */
  readonly checkpointId: string;
  readonly jobId: string;
  readonly modelCode: string;
  readonly createdAt: number;
  readonly stepNumber: number;
  /** OpenAI names: step, train_loss, train_mean_token_accuracy, valid_loss, valid_mean_token_accuracy, … */
  readonly metrics: Readonly<Record<string, number>>;
}

/**
 * The OpenAI `fine_tuning.job.checkpoint` object. `fine_tuned_model_checkpoint` is
 * `{modelCode}:step-{N}`: the `:` keeps it from ever being mistaken for a model code, since
 * checkpoints are not served for chat.
 */
export function toCheckpointObject(record: CheckpointRecord) {
  return {
    id: record.checkpointId,
    object: "fine_tuning.job.checkpoint" as const,
    created_at: record.createdAt,
    fine_tuning_job_id: record.jobId,
    fine_tuned_model_checkpoint: `${record.modelCode}:step-${record.stepNumber}`,
    step_number: record.stepNumber,
    metrics: { ...record.metrics },
  };
}

export type CheckpointObject = ReturnType<typeof toCheckpointObject>;

/** A fine-tuned model's status: `pending` while its job has not finished, `ready` to chat with, `failed` otherwise. */
export type FineTunedModelStatus = "pending" | "ready" | "failed";

/** The model status that follows from its job's status. */
export function modelStatusForJob(status: JobStatus): FineTunedModelStatus {
  if (status === "succeeded") return "ready";
  if (status === "failed" || status === "cancelled") return "failed";
  return "pending";
}

/** The stored record in the `models` table (partition key: the model code, globally unique). */
export interface ModelRecord {
  readonly modelCode: string;
  readonly tenantId: string;
  readonly jobId: string;
  readonly baseModel: string;
  readonly method: TrainingMethod;
  /** What its job optimised; absent on records older than DPO (supervised). */
  readonly objective?: TrainingObjective;
  readonly status: FineTunedModelStatus;
  readonly createdAt: number;
  /** The display name (display-name.ts); absent or null when the tenant gave none. */
  readonly name?: string | null;
  /**
   * `s3://{artifacts}/tenants/{tenant}/jobs/{jobId}/adapter/` (LoRA) or `…/model/` (full): set when the
   * model becomes ready, null before.
   */
  readonly artifactUri: string | null;
  /** A full-parameter model's latest deployment (deployments/deployment.ts); absent until deployed once. */
  readonly deployment?: DeploymentRecord;
}

/**
 * The OpenAI `model` object of a fine-tuned model. `owned_by` is the tenant (as `organization_id` on
 * its job); `root` and `parent` name the base model, as in OpenAI's older model objects.
 */
export function toFineTunedModelObject(record: ModelRecord) {
  return {
    id: record.modelCode,
    object: "model" as const,
    created: record.createdAt,
    owned_by: record.tenantId,
    name: record.name ?? null,
    root: record.baseModel,
    parent: record.baseModel,
    status: record.status,
    fine_tuning_job_id: record.jobId,
    method: record.method,
    // A full-parameter model is served only while deployed; a LoRA model on its base model's server.
    ...(record.method === "full" ? { deployment: toDeploymentObject(record.deployment) } : {}),
  };
}

export type FineTunedModelObject = ReturnType<typeof toFineTunedModelObject>;

/** Artifact keys of a job in the artifacts bucket (`contract/platform.json`'s layout). */
export { jobArtifactKeys } from "../contract.ts";
