import type { BaseModelCatalog } from "../core/catalog/base-models.ts";
import { FILE_ID_PREFIX, type FileRecord } from "../core/files/file-record.ts";
import { isId } from "../core/ids.ts";
import {
  type CreateJobRequest,
  type JobPlan,
  parseCreateJobRequest,
  planJob,
} from "../core/jobs/create-request.ts";
import { estimateJob, type JobEstimate } from "../core/jobs/estimate.ts";
import { newJobId } from "../core/jobs/ids.ts";
import { modelCodeTaken } from "../core/jobs/model-code.ts";
import type {
  CreateJobOutcome,
  FilesReader,
  IdempotencyStore,
  JobFileParam,
  JobsStore,
  NewJob,
  TrainingQueue,
} from "../core/jobs/ports.ts";
import type { ConfiguredInstanceTypes } from "../core/jobs/resources.ts";
import { type JobEvent, transition } from "../core/jobs/state-machine.ts";
import { parseTrainingFileStatistics, trainingDataSize } from "../core/jobs/training-data.ts";
import { type JobRecord, newJobEventItem, newJobRecord } from "../core/jobs/wire.ts";
import { type Clock, type JobsMetricsHooks, nowMs, nowSeconds } from "./dependencies.ts";
import {
  fileNoLongerProcessed,
  fileNotFound,
  fileNotProcessed,
  IdempotencyRaceUnresolvedError,
  preferenceFileForSupervised,
  queueUnavailable,
} from "./errors.ts";
import { type IdempotencyKey, idempotencyKeyOf, idempotencyRecord, replayJob } from "./idempotency.ts";

export interface CreateJobDependencies extends Clock {
  readonly jobs: Pick<JobsStore, "get" | "create" | "applyTransition"> & IdempotencyStore;
  readonly files: FilesReader;
  readonly queue: TrainingQueue;
  readonly catalog: BaseModelCatalog;
  /** The deployment's GPU instance types; every known type when absent. */
  readonly instanceTypes?: ConfiguredInstanceTypes;
  readonly record?: Pick<JobsMetricsHooks, "created">;
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

  const training = await processedFile(deps, tenantId, request.trainingFile, "training_file");
  if (request.validationFile) await processedFile(deps, tenantId, request.validationFile, "validation_file");
  const jobId = newJobId(nowMs(deps));
  const { totalTokens, ...dataset } = trainingDataSize(parseTrainingFileStatistics(training.statistics));
  const plan = planJob(request, {
    jobId,
    dataset,
    catalog: deps.catalog,
    ...(deps.instanceTypes ? { instanceTypes: deps.instanceTypes } : {}),
  });
  if (request.dryRun) {
    const estimate = estimateJob({
      baseModel: plan.baseModel,
      method: plan.method,
      hyperparameters: plan.hyperparameters,
      dataset: { examples: dataset.examples, totalTokens },
      jobsAhead: await deps.queue.depth(),
      resources: plan.resources,
    });
    return { kind: "estimate", estimate: { ...estimate, model_code: plan.modelCode } };
  }

  const write = newJobWrite(deps, tenantId, jobId, request, plan);
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

/** The tenant's file, `processed`; else a 400 naming `param`. */
async function processedFile(
  deps: Pick<CreateJobDependencies, "files">,
  tenantId: string,
  fileId: string,
  param: JobFileParam,
): Promise<FileRecord> {
  const file = isId(FILE_ID_PREFIX, fileId) ? await deps.files.get(tenantId, fileId) : undefined;
  if (!file) throw fileNotFound(fileId, param);
  if (file.status !== "processed") throw fileNotProcessed(file, param);
  if (file.format === "preference") throw preferenceFileForSupervised(fileId, param);
  return file;
}

/** The job (queued), its pending model and its first two events. */
function newJobWrite(
  deps: Clock,
  tenantId: string,
  jobId: string,
  request: CreateJobRequest,
  plan: JobPlan,
): Omit<NewJob, "idempotency"> {
  const created = nowSeconds(deps);
  const draft = newJobRecord({ tenantId, jobId, createdAt: created, request, plan });
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
