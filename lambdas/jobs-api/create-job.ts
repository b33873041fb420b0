import { type BaseModelCatalog, findBaseModel } from "../core/catalog/base-models.ts";
import type { TrainingObjective } from "../core/catalog/catalog-file.ts";
import { FILE_ID_PREFIX, type FileRecord, isTrainingFile } from "../core/files/file-record.ts";
import { isId } from "../core/ids.ts";
import {
  type CreateJobRequest,
  type FineTunedModelCandidate,
  type JobPlan,
  parseCreateJobRequest,
  planJob,
} from "../core/jobs/create-request.ts";
import { estimateJob, type JobEstimate, outputTokensOf } from "../core/jobs/estimate.ts";
import { newJobId } from "../core/jobs/ids.ts";
import { modelCodeTaken } from "../core/jobs/model-code.ts";
import type {
  CreateJobOutcome,
  FilesReader,
  IdempotencyStore,
  JobFileParam,
  JobsStore,
  ModelsStore,
  NewJob,
  TrainingQueue,
} from "../core/jobs/ports.ts";
import type { ConfiguredInstanceTypes } from "../core/jobs/resources.ts";
import { type JobEvent, transition } from "../core/jobs/state-machine.ts";
import { parseTrainingFileStatistics, trainingDataSize } from "../core/jobs/training-data.ts";
import { type JobRecord, newJobEventItem, newJobRecord } from "../core/jobs/wire.ts";
import { enforceJobQuota, type JobQuotaPorts } from "../core/tenants/quotas.ts";
import { type Clock, type JobsMetricsHooks, nowMs, nowSeconds } from "./dependencies.ts";
import {
  fileNoLongerProcessed,
  fileNotForTraining,
  fileNotFound,
  fileNotProcessed,
  IdempotencyRaceUnresolvedError,
  preferenceFileForSupervised,
  queueUnavailable,
  supervisedFileForDpo,
} from "./errors.ts";
import { type IdempotencyKey, idempotencyKeyOf, idempotencyRecord, replayJob } from "./idempotency.ts";

export interface CreateJobDependencies extends Clock {
  /** The jobs and, for a DPO job that starts from a fine-tuned model, that model (`getModel`). */
  readonly jobs: Pick<JobsStore, "get" | "create" | "applyTransition"> &
    Pick<ModelsStore, "getModel"> &
    IdempotencyStore;
  readonly files: FilesReader;
  readonly queue: TrainingQueue;
  readonly catalog: BaseModelCatalog;
  /** The deployment's GPU instance types; every known type when absent. */
  readonly instanceTypes?: ConfiguredInstanceTypes;
  readonly record?: Pick<JobsMetricsHooks, "created">;
  /** The tenant's concurrent-jobs quota and its unfinished jobs: one more is a 429 `quota_exceeded`. */
  readonly quotas: JobQuotaPorts;
}

/** `POST /v4/fine_tuning/jobs` as the service sees it. */
export interface CreateJobCommand {
  readonly tenantId: string;
  /** The JSON body: the request, and what an Idempotency-Key's hash is taken over. */
  readonly body: Record<string, unknown>;
  /** The `Idempotency-Key` header, when sent. */
  readonly idempotencyKey?: string | undefined;
}

export type CreateJobResult =
  /** The new job, or the one an earlier request with the same Idempotency-Key made. */
  | { readonly kind: "job"; readonly job: JobRecord }
  /** `dry_run`: what the job would cost; nothing was written. */
  | { readonly kind: "estimate"; readonly estimate: JobEstimate & { readonly model_code: string } };

/**
 * Creates a fine-tuning job: validates the request against the catalog and the training file's
 * statistics, writes the job with its model code and Idempotency-Key in one transaction, and queues it
 * for the dispatcher. A job that can not be queued is failed at once and answered with a 503.
 */
export async function createJob(
  deps: CreateJobDependencies,
  command: CreateJobCommand,
): Promise<CreateJobResult> {
  const { tenantId } = command;
  const request = parseCreateJobRequest(command.body);
  const key = idempotencyKeyOf(tenantId, command.idempotencyKey, command.body);
  if (key && !request.dryRun) {
    const earlier = await replayJob(deps, tenantId, key);
    if (earlier) return { kind: "job", job: earlier };
  }

  const { objective } = request;
  const training = await datasetFile(deps, tenantId, request.trainingFile, "training_file", objective);
  const validation = request.validationFile
    ? await datasetFile(deps, tenantId, request.validationFile, "validation_file", objective)
    : undefined;
  const fineTunedModel = await startingModel(deps, tenantId, request);
  const jobId = newJobId(nowMs(deps));
  const { totalTokens, ...dataset } = trainingDataSize(parseTrainingFileStatistics(training.statistics));
  const plan = planJob(request, {
    jobId,
    dataset,
    catalog: deps.catalog,
    ...(deps.instanceTypes ? { instanceTypes: deps.instanceTypes } : {}),
    ...(fineTunedModel ? { fineTunedModel } : {}),
  });
  if (request.dryRun) {
    const estimate = estimateJob({
      baseModel: plan.baseModel,
      objective: plan.objective,
      method: plan.method,
      hyperparameters: plan.hyperparameters,
      dataset: { examples: dataset.examples, totalTokens, outputTokens: outputTokensOf(training.statistics) },
      jobsAhead: await deps.queue.depth(),
      resources: plan.resources,
    });
    return { kind: "estimate", estimate: { ...estimate, model_code: plan.modelCode } };
  }

  // A dry run writes nothing, so it is not counted; an Idempotency-Key replay returned above.
  await enforceJobQuota(deps.quotas, tenantId);
  // The job records which objects were validated; the trainer reads those or fails (dispatch.ts).
  const fileETags = { training: training.validatedETag, validation: validation?.validatedETag };
  const write = newJobWrite(deps, tenantId, jobId, request, plan, fileETags);
  const outcome = await deps.jobs.create({
    ...write,
    ...(key ? { idempotency: idempotencyRecord(key, jobId, nowSeconds(deps)) } : {}),
  });
  if (outcome.outcome !== "created")
    return { kind: "job", job: await lostCreate(deps, tenantId, key, outcome) };
  const { job } = write;
  try {
    await deps.queue.send({ tenantId: job.tenantId, jobId: job.jobId });
  } catch (error) {
    await failJob(deps, job, { type: "dispatch_failed", reason: "the training queue could not be reached" });
    throw queueUnavailable(error);
  }
  deps.record?.created({ method: job.method, baseModel: job.model });
  return { kind: "job", job };
}

/**
 * The tenant's dataset, `processed`, in the objective's format (preference pairs for DPO, messages or
 * input/target lines for supervised); else a 400 naming `param`. A results file (any purpose but
 * `fine-tune`) is not a dataset, though it is `processed`.
 */
async function datasetFile(
  deps: Pick<CreateJobDependencies, "files">,
  tenantId: string,
  fileId: string,
  param: JobFileParam,
  objective: TrainingObjective,
): Promise<FileRecord> {
  const file = isId(FILE_ID_PREFIX, fileId) ? await deps.files.get(tenantId, fileId) : undefined;
  // A file a delete has claimed is as good as gone (the create transaction would refuse it too).
  if (!file || file.deletingAt !== undefined) throw fileNotFound(fileId, param);
  if (!isTrainingFile(file)) throw fileNotForTraining(file, param);
  if (file.status !== "processed") throw fileNotProcessed(file, param);
  const preference = file.format === "preference";
  if (objective === "supervised" && preference) throw preferenceFileForSupervised(fileId, param);
  if (objective === "dpo" && !preference) throw supervisedFileForDpo(fileId, param);
  return file;
}

/**
 * The tenant's fine-tuned model a DPO job names as `model`, for {@link planJob} to check; undefined
 * for a base model's name, a supervised job (which never starts from one), an unknown code and another
 * tenant's model alike, so that the 400 reveals nothing.
 */
async function startingModel(
  deps: Pick<CreateJobDependencies, "jobs" | "catalog">,
  tenantId: string,
  request: CreateJobRequest,
): Promise<FineTunedModelCandidate | undefined> {
  if (request.objective !== "dpo" || findBaseModel(request.model, deps.catalog)) return undefined;
  const record = await deps.jobs.getModel(request.model);
  return record?.tenantId === tenantId ? record : undefined;
}

/** The job (queued), its pending model and its first two events. */
function newJobWrite(
  deps: Clock,
  tenantId: string,
  jobId: string,
  request: CreateJobRequest,
  plan: JobPlan,
  fileETags: Parameters<typeof newJobRecord>[0]["fileETags"],
): Omit<NewJob, "idempotency"> {
  const created = nowSeconds(deps);
  const draft = newJobRecord({ tenantId, jobId, createdAt: created, request, plan, fileETags });
  // The files were checked above (and again inside the transaction), so the job starts queued.
  const validated = transition(draft.status, { type: "files_validated" });
  if (!validated.ok) throw new Error("a new job must accept files_validated");
  const job: JobRecord = { ...draft, status: validated.to };
  const t = nowMs(deps);
  return {
    job,
    model: {
      modelCode: job.modelCode,
      tenantId,
      jobId,
      baseModel: job.model,
      method: job.method,
      objective: plan.objective,
      status: "pending",
      createdAt: created,
      artifactUri: null,
      name: job.name ?? null,
    },
    events: [
      newJobEventItem(tenantId, jobId, { level: "info", message: `Created fine-tuning job: ${jobId}` }, t),
      newJobEventItem(
        tenantId,
        jobId,
        { level: validated.message.level, message: validated.message.text },
        t + 1,
      ),
    ],
  };
}

/**
 * What a create whose transaction wrote nothing answers: the winner's job when another request with the
 * same Idempotency-Key committed first, else the error for the condition that failed.
 */
async function lostCreate(
  deps: CreateJobDependencies,
  tenantId: string,
  key: IdempotencyKey | undefined,
  outcome: Exclude<CreateJobOutcome, { outcome: "created" }>,
): Promise<JobRecord> {
  switch (outcome.outcome) {
    case "file_not_processed":
      throw fileNoLongerProcessed(outcome.fileId, outcome.param);
    case "model_code_taken":
      throw modelCodeTaken(outcome.modelCode);
    case "idempotency_key_taken": {
      const winner = key ? await replayJob(deps, tenantId, key) : undefined;
      if (!winner) throw new IdempotencyRaceUnresolvedError(key?.id ?? "(none)");
      return winner;
    }
  }
}

/** Moves a job to `failed` (its model too), unless a concurrent change already ended it. */
async function failJob(deps: CreateJobDependencies, job: JobRecord, event: JobEvent): Promise<void> {
  const result = transition(job.status, event);
  if (!result.ok) return;
  await deps.jobs.applyTransition({ job, result, nowSeconds: nowSeconds(deps), model: { status: "failed" } });
}
