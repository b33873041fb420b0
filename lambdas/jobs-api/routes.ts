import { createHash } from "node:crypto";
import type { FilesRepository } from "../aws/files-repository.ts";
import { IdempotencyRaceError, type JobsRepository, modelNotFound } from "../aws/jobs-repository.ts";
import type { ObjectStore } from "../aws/object-store.ts";
import type { TrainingQueue } from "../aws/training-queue.ts";
import type { TrainingRunner } from "../aws/training-runner.ts";
import {
  type BaseModelCatalog,
  findBaseModel,
  listBaseModels,
  toBaseModelObject,
} from "../core/catalog/base-models.ts";
import {
  InvalidRequestError,
  NotFoundError,
  ServiceUnavailableError,
  UnprocessableError,
} from "../core/errors.ts";
import { FILE_ID_PREFIX, type FileRecord } from "../core/files/file-record.ts";
import { listEnvelope, parseListParams } from "../core/http/pagination.ts";
import { toInvalidRequest } from "../core/http/request-errors.ts";
import { jsonBody, type RequestContext, type Route } from "../core/http/router.ts";
import { isId } from "../core/ids.ts";
import { checkpointFromManifest } from "../core/jobs/checkpoints.ts";
import { parseCreateJobRequest, planJob } from "../core/jobs/create-request.ts";
import { modelUpdateSchema } from "../core/jobs/display-name.ts";
import { estimateJob } from "../core/jobs/estimate.ts";
import { isJobId, newJobId } from "../core/jobs/ids.ts";
import type { ConfiguredInstanceTypes } from "../core/jobs/resources.ts";
import { type JobEvent, jobNotCancellable, jobNotDeletable, transition } from "../core/jobs/state-machine.ts";
import {
  type JobRecord,
  jobArtifactKeys,
  newJobEventItem,
  newJobRecord,
  toCheckpointObject,
  toFineTunedModelObject,
  toJobEventObject,
  toJobObject,
} from "../core/jobs/wire.ts";

export interface JobsDependencies {
  readonly jobs: JobsRepository;
  readonly files: Pick<FilesRepository, "get">;
  readonly queue: Pick<TrainingQueue, "send" | "depth">;
  readonly runner: Pick<TrainingRunner, "terminate">;
  readonly artifacts: Pick<ObjectStore, "childPrefixes" | "getJson">;
  readonly catalog: BaseModelCatalog;
  /** The deployment's GPU instance types (`TRAINING_INSTANCE_TYPES`); every known type when absent. */
  readonly instanceTypes?: ConfiguredInstanceTypes;
  /** Awaited before every request: the catalog's check against stored model codes (code-conflicts.ts). */
  readonly ready?: () => Promise<void>;
  readonly now?: () => number;
}

/** How long an Idempotency-Key is remembered (as Stripe and OpenAI do: a day). */
const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** `/v4/fine_tuning/jobs…` and `/v4/models…`: each route parses, checks the tenant, calls the store. */
export function jobsRoutes(deps: JobsDependencies): Route[] {
  const nowMs = () => deps.now?.() ?? Date.now();
  const nowSeconds = () => Math.floor(nowMs() / 1000);

  async function ownJob(request: RequestContext): Promise<JobRecord> {
    const jobId = request.params.job_id ?? "";
    const record = isJobId(jobId) ? await deps.jobs.get(request.tenantId, jobId) : undefined;
    // Another tenant's job and a job that never existed answer the same.
    if (!record)
      throw new NotFoundError(`No such fine-tuning job: ${jobId}`, "job_not_found", "fine_tuning_job_id");
    return record;
  }

  async function processedFile(tenantId: string, fileId: string, param: string): Promise<FileRecord> {
    const file = isId(FILE_ID_PREFIX, fileId) ? await deps.files.get(tenantId, fileId) : undefined;
    if (!file) throw new InvalidRequestError(`No such file: ${fileId}`, param, "file_not_found");
    if (file.status !== "processed") {
      throw new InvalidRequestError(
        file.status === "error"
          ? `File ${fileId} failed validation and can not be trained on; see GET /v4/files/${fileId}.`
          : `File ${fileId} is not processed yet (status '${file.status}'); wait until it is.`,
        param,
        "file_not_processed",
      );
    }
    return file;
  }

  async function create(request: RequestContext) {
    const body = jsonBody(request);
    const parsed = parseCreateJobRequest(body);
    const idempotency = idempotencyOf(request, body);
    if (idempotency && !parsed.dryRun) {
      const earlier = await replay(request.tenantId, idempotency);
      if (earlier) return { status: 200, body: toJobObject(earlier) };
    }

    const training = await processedFile(request.tenantId, parsed.trainingFile, "training_file");
    if (parsed.validationFile)
      await processedFile(request.tenantId, parsed.validationFile, "validation_file");
    const jobId = newJobId(nowMs());
    const stats = (training.statistics ?? {}) as {
      examples?: number;
      tokens?: { total?: number; max?: number; method?: string };
    };
    // An estimated count (no tokenizer for the family; `estimate:` method) can be several times too low
    // for a byte-level tokenizer: sizing max_seq_length on it would truncate examples, so it is not used.
    const measured = stats.tokens?.max !== undefined && !stats.tokens.method?.startsWith("estimate:");
    const plan = planJob(parsed, {
      jobId,
      dataset: {
        examples: stats.examples ?? 0,
        ...(measured ? { maxExampleTokens: stats.tokens!.max! } : {}),
      },
      catalog: deps.catalog,
      ...(deps.instanceTypes ? { instanceTypes: deps.instanceTypes } : {}),
    });
    if (parsed.dryRun) {
      const estimate = estimateJob({
        baseModel: plan.baseModel,
        method: plan.method,
        hyperparameters: plan.hyperparameters,
        dataset: { examples: stats.examples ?? 0, totalTokens: stats.tokens?.total ?? 0 },
        jobsAhead: await deps.queue.depth(),
        resources: plan.resources,
      });
      return { status: 200, body: { ...estimate, model_code: plan.modelCode } };
    }

    const created = nowSeconds();
    const draft = newJobRecord({
      tenantId: request.tenantId,
      jobId,
      createdAt: created,
      request: parsed,
      plan,
    });
    // The files were checked above (and again inside the transaction), so the job starts queued.
    const validated = transition(draft.status, { type: "files_validated" });
    if (!validated.ok) throw new Error("a new job must accept files_validated");
    const job: JobRecord = { ...draft, status: validated.to };
    const t = nowMs();
    await createOrReplay(request.tenantId, idempotency, {
      job,
      model: {
        modelCode: job.modelCode,
        tenantId: job.tenantId,
        jobId,
        baseModel: job.model,
        method: job.method,
        status: "pending",
        createdAt: created,
        artifactUri: null,
        name: job.name ?? null,
      },
      events: [
        newJobEventItem(
          job.tenantId,
          jobId,
          { level: "info", message: `Created fine-tuning job: ${jobId}` },
          t,
        ),
        newJobEventItem(
          job.tenantId,
          jobId,
          { level: validated.message.level, message: validated.message.text },
          t + 1,
        ),
      ],
    });
    try {
      await deps.queue.send({ tenantId: job.tenantId, jobId });
    } catch (error) {
      await fail(job, { type: "dispatch_failed", reason: "the training queue could not be reached" });
      throw new ServiceUnavailableError(
        `The job could not be queued for training (${(error as Error).name}); create it again.`,
        "queue_unavailable",
      );
    }
    return { status: 200, body: toJobObject(job) };
  }

  async function createOrReplay(
    tenantId: string,
    idempotency: { id: string; hash: string } | undefined,
    write: Omit<Parameters<JobsRepository["create"]>[0], "idempotency">,
  ) {
    try {
      await deps.jobs.create({
        ...write,
        ...(idempotency
          ? {
              idempotency: {
                id: idempotency.id,
                requestHash: idempotency.hash,
                jobId: write.job.jobId,
                expiration: nowSeconds() + IDEMPOTENCY_TTL_SECONDS,
              },
            }
          : {}),
      });
    } catch (error) {
      if (!(error instanceof IdempotencyRaceError) || !idempotency) throw error;
      const earlier = await replay(tenantId, idempotency);
      if (!earlier) throw error;
      throw new ReplayResult(earlier);
    }
  }

  /** The job an earlier request with the same key made; 422 when that request had another body. */
  async function replay(tenantId: string, idempotency: { id: string; hash: string }) {
    const stored = await deps.jobs.getIdempotency(idempotency.id);
    if (!stored || stored.expiration < nowSeconds()) return undefined;
    if (stored.requestHash !== idempotency.hash) {
      throw new UnprocessableError(
        "This Idempotency-Key was already used with a different request body; use a new key.",
        "idempotency_key_reused",
      );
    }
    const job = await deps.jobs.get(tenantId, stored.jobId);
    if (!job) {
      throw new UnprocessableError(
        `The job this Idempotency-Key created (${stored.jobId}) has been deleted; use a new key.`,
        "idempotency_key_reused",
      );
    }
    return job;
  }

  async function fail(job: JobRecord, event: JobEvent): Promise<void> {
    const result = transition(job.status, event);
    if (!result.ok) return;
    await deps.jobs.applyTransition({
      job,
      result,
      nowSeconds: nowSeconds(),
      model: { status: "failed" },
    });
  }

  async function cancel(request: RequestContext) {
    // Retried when a concurrent status change wins the conditional update.
    for (let attempt = 0; attempt < 5; attempt++) {
      const job = await ownJob(request);
      if (job.status === "cancelled") {
        // A retried cancel also retries the termination (Batch ignores it for a run that has ended).
        if (job.batchJobId)
          await deps.runner.terminate(job.batchJobId, `Cancelled by the tenant (${job.jobId})`);
        return { status: 200, body: toJobObject(job) };
      }
      const result = transition(job.status, { type: "cancel_requested" });
      if (!result.ok) throw jobNotCancellable(job.status);
      const applied = await deps.jobs.applyTransition({
        job,
        result,
        nowSeconds: nowSeconds(),
        model: { status: "failed" },
      });
      if (!applied) continue;
      // No Batch job yet: the dispatcher's conditional store fails on `cancelled` and terminates what it submitted.
      if (job.batchJobId)
        await deps.runner.terminate(job.batchJobId, `Cancelled by the tenant (${job.jobId})`);
      return { status: 200, body: toJobObject((await deps.jobs.get(job.tenantId, job.jobId)) ?? job) };
    }
    throw new ServiceUnavailableError("The job kept changing while being cancelled; try again.");
  }

  async function checkpoints(request: RequestContext) {
    const job = await ownJob(request);
    const params = parseListParams(request.query, { defaultLimit: 10, maxLimit: 100 });
    const root = jobArtifactKeys(job.tenantId, job.jobId, job.method).checkpoints;
    const steps = (await deps.artifacts.childPrefixes(root))
      .map((prefix) => Number(/step-(\d+)\/$/.exec(prefix)?.[1]))
      .filter((step) => Number.isInteger(step))
      .sort((a, b) => b - a);
    const records = [];
    for (const step of steps) {
      const manifest = await deps.artifacts.getJson(`${root}step-${step}/checkpoint.json`);
      // A checkpoint without its manifest is incomplete (being written, or cut by a crash).
      const record = manifest ? checkpointFromManifest(job, step, manifest) : undefined;
      if (record) records.push(toCheckpointObject(record));
    }
    const start = params.after ? records.findIndex((r) => r.id === params.after) + 1 : 0;
    if (params.after && start === 0) {
      throw new InvalidRequestError("after must be the id of a checkpoint of this job.", "after");
    }
    const page = records.slice(start, start + params.limit);
    return { status: 200, body: listEnvelope(page, start + params.limit < records.length) };
  }

  async function ownModel(request: RequestContext) {
    const code = request.params.model ?? "";
    const record = await deps.jobs.getModel(code);
    if (!record || record.tenantId !== request.tenantId) throw modelNotFound(code);
    return record;
  }

  /** The fine-tuned model code in the path; 400 `model_not_{deletable,editable}` for a base model's name. */
  function fineTunedCode(request: RequestContext, change: "deleted" | "changed"): string {
    const code = request.params.model ?? "";
    if (findBaseModel(code, deps.catalog)) {
      throw new InvalidRequestError(
        `'${code}' is a base model and can not be ${change}.`,
        "model",
        change === "deleted" ? "model_not_deletable" : "model_not_editable",
      );
    }
    return code;
  }

  /** Deletes the tenant's fine-tuned model named in the path; its code becomes free. */
  async function deleteOwnModel(request: RequestContext): Promise<string> {
    const code = fineTunedCode(request, "deleted");
    await deps.jobs.deleteModel(request.tenantId, code);
    return code;
  }

  /** A finished job goes, with its events; its model stays. 409 while it has not ended. */
  async function deleteJob(request: RequestContext) {
    const job = await ownJob(request);
    const result = await deps.jobs.deleteJob(job.tenantId, job.jobId);
    if (result.outcome === "not_found") {
      throw new NotFoundError(`No such fine-tuning job: ${job.jobId}`, "job_not_found", "fine_tuning_job_id");
    }
    if (result.outcome === "not_finished") throw jobNotDeletable(job.jobId, result.job.status);
    return { status: 200, body: { ...toJobObject(job), deleted: true } };
  }

  /** `POST /v4/models/{code}` `{"name": …}`: the display name is the one editable field. */
  async function updateModel(request: RequestContext) {
    const code = fineTunedCode(request, "changed");
    const parsed = modelUpdateSchema.safeParse(jsonBody(request), { reportInput: true });
    if (!parsed.success) throw toInvalidRequest(parsed.error);
    const updated = await deps.jobs.renameModel(request.tenantId, code, parsed.data.name);
    if (!updated) throw modelNotFound(code);
    return { status: 200, body: toFineTunedModelObject(updated) };
  }

  const routes: Route[] = [
    {
      method: "POST",
      pattern: "/v4/fine_tuning/jobs",
      handler: (request) => withReplay(() => create(request)),
    },
    {
      method: "GET",
      pattern: "/v4/fine_tuning/jobs",
      handler: async (request) => {
        const params = parseListParams(request.query, { defaultLimit: 20, maxLimit: 100 });
        if (params.after !== undefined && !isJobId(params.after)) {
          throw new InvalidRequestError("after must be the id of a job from a previous page.", "after");
        }
        const { items, hasMore } = await deps.jobs.list(request.tenantId, params.limit, params.after);
        return { status: 200, body: listEnvelope(items.map(toJobObject), hasMore) };
      },
    },
    {
      method: "GET",
      pattern: "/v4/fine_tuning/jobs/{job_id}",
      handler: async (request) => ({ status: 200, body: toJobObject(await ownJob(request)) }),
    },
    { method: "DELETE", pattern: "/v4/fine_tuning/jobs/{job_id}", handler: deleteJob },
    { method: "POST", pattern: "/v4/fine_tuning/jobs/{job_id}/cancel", handler: cancel },
    {
      method: "GET",
      pattern: "/v4/fine_tuning/jobs/{job_id}/events",
      handler: async (request) => {
        const job = await ownJob(request);
        const params = parseListParams(request.query, { defaultLimit: 20, maxLimit: 100 });
        const { items, hasMore } = await deps.jobs.listEvents(
          job.tenantId,
          job.jobId,
          params.limit,
          params.after,
        );
        return { status: 200, body: listEnvelope(items.map(toJobEventObject), hasMore) };
      },
    },
    { method: "GET", pattern: "/v4/fine_tuning/jobs/{job_id}/checkpoints", handler: checkpoints },
    {
      method: "GET",
      pattern: "/v4/models",
      handler: async (request) => {
        const tuned = await deps.jobs.listModels(request.tenantId);
        const data = [
          ...listBaseModels(deps.catalog).map(toBaseModelObject),
          ...tuned.map(toFineTunedModelObject),
        ];
        return { status: 200, body: { object: "list", data } };
      },
    },
    {
      method: "GET",
      pattern: "/v4/models/{model}",
      handler: async (request) => {
        const base = findBaseModel(request.params.model ?? "", deps.catalog);
        if (base) return { status: 200, body: toBaseModelObject(base) };
        return { status: 200, body: toFineTunedModelObject(await ownModel(request)) };
      },
    },
    {
      method: "DELETE",
      pattern: "/v4/models/{model}",
      handler: async (request) => {
        const code = await deleteOwnModel(request);
        return { status: 200, body: { id: code, object: "model", deleted: true } };
      },
    },
    { method: "POST", pattern: "/v4/models/{model}", handler: updateModel },
    {
      // The zhipuai SDK's `fine_tuning.models.delete`: the same delete, answered in Zhipu's shape
      // (`delete_status`) beside OpenAI's fields.
      method: "DELETE",
      pattern: "/v4/fine_tuning/fine_tuned_models/{model}",
      handler: async (request) => {
        const code = await deleteOwnModel(request);
        return {
          status: 200,
          body: {
            request_id: request.requestId,
            model_name: code,
            delete_status: "deleted",
            id: code,
            object: "model",
            deleted: true,
          },
        };
      },
    },
  ];
  const ready = deps.ready;
  if (!ready) return routes;
  return routes.map((route) => ({
    ...route,
    handler: async (request: RequestContext) => {
      await ready();
      return route.handler(request);
    },
  }));
}

/** A create that lost an Idempotency-Key race answers with the winner's job. */
class ReplayResult {
  constructor(readonly job: JobRecord) {}
}

async function withReplay(run: () => Promise<{ status: number; body: unknown }>) {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ReplayResult) return { status: 200, body: toJobObject(error.job) };
    throw error;
  }
}

/**
 * The tenant-scoped key record id and a hash of the body: the same key with the same body replays the
 * job, with another body is a 422. Keys are compared per tenant, so two tenants may use the same key.
 */
function idempotencyOf(request: RequestContext, body: unknown): { id: string; hash: string } | undefined {
  const key = request.headers["idempotency-key"];
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new InvalidRequestError(
      "Idempotency-Key must be 1–255 printable ASCII characters without spaces.",
      "Idempotency-Key",
      "invalid_idempotency_key",
    );
  }
  return {
    id: `${request.tenantId}#${key}`,
    hash: createHash("sha256").update(canonicalJson(body)).digest("hex"),
  };
}

/** JSON with object keys sorted, so key order does not make two equal bodies differ. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
