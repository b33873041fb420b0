import { DEFAULT_CATALOG } from "../../../lambdas/core/catalog/base-models.ts";
import {
  type DeployerMessage,
  type DeploymentChange,
  type DeploymentQueue,
  type DeploymentRecord,
  type DeploymentStatus,
  type DeploymentsStore,
  isLive,
  type StartDeploymentOutcome,
} from "../../../lambdas/core/deployments/deployment.ts";
import type { FileRecord, FileStatus } from "../../../lambdas/core/files/file-record.ts";
import { newId } from "../../../lambdas/core/ids.ts";
import type { TrainingMessage } from "../../../lambdas/core/jobs/dispatch.ts";
import { jobKey } from "../../../lambdas/core/jobs/ids.ts";
import {
  type ArtifactStore,
  type CreateJobOutcome,
  type DeleteJobOutcome,
  type DeleteModelOutcome,
  EventCursorNotFoundError,
  type FilesReader,
  type IdempotencyRecord,
  type IdempotencyStore,
  type JobsStore,
  type ModelsStore,
  type NewJob,
  type Page,
  type TrainingCanceller,
  type TrainingQueue,
  type TransitionWrite,
} from "../../../lambdas/core/jobs/ports.ts";
import { isTerminal, TERMINAL_STATUSES } from "../../../lambdas/core/jobs/state-machine.ts";
import {
  type JobEventItem,
  type JobRecord,
  type ModelRecord,
  newJobEventItem,
} from "../../../lambdas/core/jobs/wire.ts";
import { createJob } from "../../../lambdas/jobs-api/create-job.ts";
import type { JobsDependencies } from "../../../lambdas/jobs-api/dependencies.ts";
import { InMemoryQuotaSettings } from "../tenants/quota-fakes.ts";

/**
 * In-memory stand-ins for the jobs API's ports, keyed and conditioned like the DynamoDB tables: a
 * create checks every condition of the transaction, reports a failure as the port orders them and
 * writes all or nothing; a transition applies only from an allowed status. `beforeCreate` / `beforeTransition` run inside the write, where a
 * concurrent request would win.
 */

export const TENANT = "tn_0123456789abcdef";
export const OTHER_TENANT = "tn_fedcba9876543210";
/** 2023-11-14T22:13:20Z, in ms. */
export const NOW = 1_700_000_000_000;

const key = (tenantId: string, id: string) => `${tenantId}/${id}`;

export class InMemoryFiles implements FilesReader {
  readonly records = new Map<string, FileRecord>();

  async get(tenantId: string, fileId: string): Promise<FileRecord | undefined> {
    return this.records.get(key(tenantId, fileId));
  }

  /** A file of `tenantId` in `status`, with the validator's statistics. */
  add(
    tenantId: string,
    status: FileStatus = "processed",
    statistics: Record<string, unknown> = {
      examples: 10,
      tokens: { total: 2_000, max: 300, method: "tokenizer:t" },
    },
  ): string {
    const fileId = newId("file", NOW);
    this.records.set(key(tenantId, fileId), {
      tenantId,
      fileId,
      filename: "train.jsonl",
      purpose: "fine-tune",
      bytes: 1_000,
      contentType: "application/jsonl",
      objectKey: `tenants/${tenantId}/files/${fileId}.jsonl`,
      createdAt: NOW / 1000,
      status,
      statistics,
      // The validator records the ETag of the object it read (a quoted MD5, as S3 answers it).
      ...(status === "processed" || status === "error" ? { validatedETag: `"etag-${fileId}"` } : {}),
    });
    return fileId;
  }

  setStatus(tenantId: string, fileId: string, status: FileStatus): void {
    this.update(tenantId, fileId, { status });
  }

  /** Changes fields of a stored file (its format, purpose…). */
  update(tenantId: string, fileId: string, fields: Partial<FileRecord>): void {
    const file = this.records.get(key(tenantId, fileId))!;
    this.records.set(key(tenantId, fileId), { ...file, ...fields });
  }

  /** A processed preference (DPO) file of `tenantId`: 10 pairs, as the validator records them. */
  addPreference(tenantId: string): string {
    const fileId = this.add(tenantId, "processed", {
      examples: 10,
      preference: { pairs: 10, whitespaceOnly: 0, whitespaceOnlyShare: 0 },
      tokens: { total: 3_000, max: 400, assistant: 2_000, method: "tokenizer:t" },
    });
    this.update(tenantId, fileId, { format: "preference" });
    return fileId;
  }
}

export class InMemoryJobs implements JobsStore, ModelsStore, IdempotencyStore {
  readonly jobs = new Map<string, JobRecord>();
  readonly events = new Map<string, JobEventItem[]>();
  readonly models = new Map<string, ModelRecord>();
  readonly keys = new Map<string, IdempotencyRecord>();
  /** Runs once, inside the next create, before its conditions are checked. */
  beforeCreate: (() => void) | undefined;
  /** Runs inside every transition, before its condition is checked. */
  beforeTransition: ((job: JobRecord) => void) | undefined;

  constructor(private readonly files: InMemoryFiles) {}

  async get(tenantId: string, jobId: string): Promise<JobRecord | undefined> {
    return this.jobs.get(key(tenantId, jobId));
  }

  async list(tenantId: string, limit: number, after?: string): Promise<Page<JobRecord>> {
    const all = [...this.jobs.values()]
      .filter((job) => job.tenantId === tenantId && (after === undefined || job.jobId < after))
      .sort((a, b) => b.jobId.localeCompare(a.jobId));
    return { items: all.slice(0, limit), hasMore: all.length > limit };
  }

  async create(write: NewJob): Promise<CreateJobOutcome> {
    const before = this.beforeCreate;
    this.beforeCreate = undefined;
    before?.();
    const { job } = write;
    // Every condition, as one transaction checks them; the outcome as the port orders them.
    const taken = write.idempotency && this.keys.get(write.idempotency.id);
    if (taken && taken.expiration >= job.createdAt) return { outcome: "idempotency_key_taken" };
    for (const [param, fileId] of [
      ["training_file", job.trainingFile],
      ["validation_file", job.validationFile],
    ] as const) {
      if (fileId === null) continue;
      const file = await this.files.get(job.tenantId, fileId);
      if (file?.status !== "processed" || file.deletingAt !== undefined) {
        return { outcome: "file_not_processed", param, fileId };
      }
    }
    if (this.jobs.has(key(job.tenantId, job.jobId))) throw new Error(`job ${job.jobId} exists`);
    if (this.models.has(write.model.modelCode))
      return { outcome: "model_code_taken", modelCode: job.modelCode };
    // The files' users gain the job, as the transaction's conditional updates add it.
    for (const fileId of new Set([job.trainingFile, job.validationFile])) {
      const file = fileId === null ? undefined : await this.files.get(job.tenantId, fileId);
      if (file && fileId !== null) {
        const usedByJobs = new Set([...(file.usedByJobs ?? []), job.jobId]);
        this.files.update(job.tenantId, fileId, { usedByJobs });
      }
    }
    this.jobs.set(key(job.tenantId, job.jobId), job);
    this.models.set(write.model.modelCode, write.model);
    this.events.set(jobKey(job.tenantId, job.jobId), [...write.events]);
    if (write.idempotency) this.keys.set(write.idempotency.id, write.idempotency);
    return { outcome: "created" };
  }

  async applyTransition(write: TransitionWrite): Promise<boolean> {
    const { job, result } = write;
    const current = this.jobs.get(key(job.tenantId, job.jobId));
    if (current) this.beforeTransition?.(current);
    const stored = this.jobs.get(key(job.tenantId, job.jobId));
    if (!stored || !result.allowedFrom.includes(stored.status)) return false;
    if (write.runId && stored.batchJobId && stored.batchJobId !== write.runId) return false;
    this.jobs.set(key(job.tenantId, job.jobId), {
      ...stored,
      ...write.fields,
      ...(write.runId ? { batchJobId: write.runId } : {}),
      status: result.to,
      ...(result.finished ? { finishedAt: write.nowSeconds } : {}),
      ...(result.error ? { error: result.error } : {}),
    });
    this.appendEvent(
      write.event ??
        newJobEventItem(
          job.tenantId,
          job.jobId,
          { level: result.message.level, message: result.message.text },
          NOW + 10,
        ),
    );
    const model = this.models.get(job.modelCode);
    if (write.model && model?.jobId === job.jobId) {
      this.models.set(job.modelCode, {
        ...model,
        status: write.model.status,
        ...(write.model.artifactUri !== undefined ? { artifactUri: write.model.artifactUri } : {}),
      });
    }
    return true;
  }

  async deleteJob(tenantId: string, jobId: string): Promise<DeleteJobOutcome> {
    const job = this.jobs.get(key(tenantId, jobId));
    if (!job) return { outcome: "not_found" };
    if (!TERMINAL_STATUSES.includes(job.status)) return { outcome: "not_finished", job };
    this.jobs.delete(key(tenantId, jobId));
    this.events.delete(jobKey(tenantId, jobId));
    return { outcome: "deleted" };
  }

  async listEvents(
    tenantId: string,
    jobId: string,
    limit: number,
    after?: string,
  ): Promise<Page<JobEventItem>> {
    const newestFirst = [...(this.events.get(jobKey(tenantId, jobId)) ?? [])].sort((a, b) =>
      b.eventKey.localeCompare(a.eventKey),
    );
    const start = after === undefined ? 0 : newestFirst.findIndex((event) => event.id === after) + 1;
    if (after !== undefined && start === 0) throw new EventCursorNotFoundError(after);
    return { items: newestFirst.slice(start, start + limit), hasMore: start + limit < newestFirst.length };
  }

  appendEvent(event: JobEventItem): void {
    this.events.set(event.jobKey, [...(this.events.get(event.jobKey) ?? []), event]);
  }

  eventsOf(tenantId: string, jobId: string): JobEventItem[] {
    return this.events.get(jobKey(tenantId, jobId)) ?? [];
  }

  async getModel(modelCode: string): Promise<ModelRecord | undefined> {
    return this.models.get(modelCode);
  }

  async listModels(tenantId: string): Promise<ModelRecord[]> {
    return [...this.models.values()]
      .filter((model) => model.tenantId === tenantId)
      .sort((a, b) => b.createdAt - a.createdAt);
  }

  async deleteModel(tenantId: string, modelCode: string): Promise<DeleteModelOutcome> {
    const model = this.models.get(modelCode);
    if (!model || model.tenantId !== tenantId) return { outcome: "not_found" };
    if (model.status === "pending") return { outcome: "still_training", jobId: model.jobId };
    this.models.delete(modelCode);
    return { outcome: "deleted" };
  }

  async renameModel(
    tenantId: string,
    modelCode: string,
    name: string | null,
  ): Promise<ModelRecord | undefined> {
    const model = this.models.get(modelCode);
    if (!model || model.tenantId !== tenantId) return undefined;
    const renamed = { ...model, name };
    this.models.set(modelCode, renamed);
    const job = this.jobs.get(key(tenantId, model.jobId));
    if (job) this.jobs.set(key(tenantId, model.jobId), { ...job, name });
    return renamed;
  }

  async getIdempotency(id: string): Promise<IdempotencyRecord | undefined> {
    return this.keys.get(id);
  }

  /** Stores `job` as it is (a job some earlier request made), with its model. */
  put(job: JobRecord, model: Partial<ModelRecord> = {}): JobRecord {
    this.jobs.set(key(job.tenantId, job.jobId), job);
    this.models.set(job.modelCode, {
      modelCode: job.modelCode,
      tenantId: job.tenantId,
      jobId: job.jobId,
      baseModel: job.model,
      method: job.method,
      status: "pending",
      createdAt: job.createdAt,
      artifactUri: null,
      ...model,
    });
    return job;
  }
}

export class FakeQueue implements TrainingQueue {
  readonly sent: TrainingMessage[] = [];
  waiting = 3;
  /** Thrown by `send` when set. */
  failure: Error | undefined;

  async send(message: TrainingMessage): Promise<void> {
    if (this.failure) throw this.failure;
    this.sent.push(message);
  }

  async depth(): Promise<number> {
    return this.waiting;
  }
}

/** Deployments on the in-memory models, with the DynamoDB adapter's conditions. */
export class InMemoryDeployments implements DeploymentsStore {
  constructor(private readonly models: Map<string, ModelRecord>) {}

  async getModel(modelCode: string): Promise<ModelRecord | undefined> {
    return this.models.get(modelCode);
  }

  async startDeployment(
    tenantId: string,
    modelCode: string,
    deployment: DeploymentRecord,
  ): Promise<StartDeploymentOutcome> {
    const model = this.models.get(modelCode);
    if (!model || model.tenantId !== tenantId || model.status !== "ready" || model.method !== "full") {
      return { outcome: "not_deployable" };
    }
    if (isLive(model.deployment)) return { outcome: "live" };
    this.models.set(modelCode, { ...model, deployment });
    return { outcome: "started" };
  }

  async updateDeployment(
    modelCode: string,
    deploymentId: string,
    from: readonly DeploymentStatus[],
    change: DeploymentChange,
  ): Promise<boolean> {
    const model = this.models.get(modelCode);
    const current = model?.deployment;
    if (!model || !current || current.id !== deploymentId || !from.includes(current.status)) return false;
    const next: Record<string, unknown> = { ...current, status: change.status };
    if (change.deployedAt !== undefined) next.deployedAt = change.deployedAt;
    for (const field of ["endpoint", "reason"] as const) {
      if (change[field] === null) delete next[field];
      else if (change[field] !== undefined) next[field] = change[field];
    }
    this.models.set(modelCode, { ...model, deployment: next as unknown as DeploymentRecord });
    return true;
  }

  async liveDeployments(tenantId: string): Promise<number> {
    return [...this.models.values()].filter((m) => m.tenantId === tenantId && isLive(m.deployment)).length;
  }
}

export class FakeDeploymentQueue implements DeploymentQueue {
  readonly sent: { message: DeployerMessage; delaySeconds: number | undefined }[] = [];
  failure: Error | undefined;

  async send(message: DeployerMessage, delaySeconds?: number): Promise<void> {
    if (this.failure) throw this.failure;
    this.sent.push({ message, delaySeconds });
  }
}

export class FakeRunner implements TrainingCanceller {
  readonly terminated: { runId: string; reason: string }[] = [];

  async terminate(runId: string, reason: string): Promise<void> {
    this.terminated.push({ runId, reason });
  }
}

/** Objects by key; "folders" are the key prefixes up to the next `/`. */
export class InMemoryArtifacts implements ArtifactStore {
  readonly objects = new Map<string, unknown>();

  async childPrefixes(prefix: string): Promise<string[]> {
    const children = new Set<string>();
    for (const objectKey of this.objects.keys()) {
      if (!objectKey.startsWith(prefix)) continue;
      const slash = objectKey.indexOf("/", prefix.length);
      if (slash >= 0) children.add(objectKey.slice(0, slash + 1));
    }
    return [...children];
  }

  async getJson(objectKey: string): Promise<unknown> {
    return this.objects.get(objectKey);
  }
}

/** Every port in memory, the default catalog and a clock pinned at {@link NOW}. */
export function fakeDependencies() {
  const files = new InMemoryFiles();
  const jobs = new InMemoryJobs(files);
  const queue = new FakeQueue();
  const runner = new FakeRunner();
  const artifacts = new InMemoryArtifacts();
  const deployments = new InMemoryDeployments(jobs.models);
  const deploymentQueue = new FakeDeploymentQueue();
  const quotaSettings = new InMemoryQuotaSettings();
  const deps: JobsDependencies = {
    jobs,
    files,
    queue,
    runner,
    artifacts,
    catalog: DEFAULT_CATALOG,
    now: () => NOW,
    deployments,
    deploymentQueue,
    deploymentsEnabled: true,
    deploymentsPerTenant: 2,
    deploymentTimeoutSeconds: 600,
    quotas: {
      quotasOf: quotaSettings.quotasOf,
      unfinishedJobs: async (tenantId) =>
        [...jobs.jobs.values()].filter((j) => j.tenantId === tenantId && !isTerminal(j.status)).length,
    },
  };
  return { deps, files, jobs, queue, runner, artifacts, deployments, deploymentQueue, quotaSettings };
}

let codes = 0;

/** A job of `tenantId` made through createJob, then stored with `fields` (a status, a run id…). */
export async function storedJob(
  fakes: ReturnType<typeof fakeDependencies>,
  fields: Partial<JobRecord> = {},
  tenantId = TENANT,
): Promise<JobRecord> {
  const result = await createJob(fakes.deps, {
    tenantId,
    body: {
      model: "tiny-chat",
      training_file: fakes.files.add(tenantId),
      model_code: `stored-${++codes}`,
      method: { type: "lora" },
    },
  });
  if (result.kind !== "job") throw new Error("expected a job");
  const job = { ...result.job, ...fields };
  fakes.jobs.jobs.set(`${tenantId}/${job.jobId}`, job);
  return job;
}
