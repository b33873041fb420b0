import { CONTRACT, checkpointPrefix, checkpointStepOf } from "../core/contract.ts";
import type { ListParams } from "../core/http/pagination.ts";
import { checkpointFromManifest } from "../core/jobs/checkpoints.ts";
import { isJobId } from "../core/jobs/ids.ts";
import {
  type ArtifactStore,
  EventCursorNotFoundError,
  type JobsStore,
  type Page,
} from "../core/jobs/ports.ts";
import {
  type CheckpointRecord,
  type JobEventItem,
  type JobRecord,
  jobArtifactKeys,
} from "../core/jobs/wire.ts";
import { causedBy, jobNotFound, unknownCursor } from "./errors.ts";

/** The reads of the jobs API: a job, the tenant's jobs, a job's events and its checkpoints. */

/** The tenant's job; 404 for a malformed id, a job that never existed and another tenant's alike. */
export async function retrieveJob(
  deps: { readonly jobs: Pick<JobsStore, "get"> },
  tenantId: string,
  jobId: string,
): Promise<JobRecord> {
  const record = isJobId(jobId) ? await deps.jobs.get(tenantId, jobId) : undefined;
  if (!record) throw jobNotFound(jobId);
  return record;
}

/** The tenant's jobs, newest first; `after` must be a job id. */
export async function listJobs(
  deps: { readonly jobs: Pick<JobsStore, "list"> },
  tenantId: string,
  params: ListParams,
): Promise<Page<JobRecord>> {
  if (params.after !== undefined && !isJobId(params.after)) throw unknownCursor("a job from a previous page");
  return deps.jobs.list(tenantId, params.limit, params.after);
}

/** A job's events, newest first; `after` must be an event of this job. */
export async function listJobEvents(
  deps: { readonly jobs: Pick<JobsStore, "listEvents"> },
  job: Pick<JobRecord, "tenantId" | "jobId">,
  params: ListParams,
): Promise<Page<JobEventItem>> {
  try {
    return await deps.jobs.listEvents(job.tenantId, job.jobId, params.limit, params.after);
  } catch (error) {
    if (error instanceof EventCursorNotFoundError)
      throw causedBy(unknownCursor("an event of this job"), error);
    throw error;
  }
}

/**
 * A job's complete checkpoints, newest first. The trainer's `checkpoints/step-N/checkpoint.json` is the
 * record (written last): a step folder without it is being written or was cut by a crash, and is left out.
 */
export async function listCheckpoints(
  deps: { readonly artifacts: ArtifactStore },
  job: Pick<JobRecord, "tenantId" | "jobId" | "method" | "modelCode" | "createdAt">,
  params: ListParams,
): Promise<Page<CheckpointRecord>> {
  const { root, checkpoints } = jobArtifactKeys(job.tenantId, job.jobId, job.method);
  const steps = (await deps.artifacts.childPrefixes(checkpoints))
    .map((prefix) => checkpointStepOf(prefix.slice(checkpoints.length)))
    .filter((step): step is number => step !== undefined)
    .sort((a, b) => b - a);
  const records: CheckpointRecord[] = [];
  for (const step of steps) {
    const manifest = await deps.artifacts.getJson(
      `${root}${checkpointPrefix(step)}${CONTRACT.s3.checkpointManifest}`,
    );
    const record = manifest ? checkpointFromManifest(job, step, manifest) : undefined;
    if (record) records.push(record);
  }
  const start = params.after ? records.findIndex((r) => r.checkpointId === params.after) + 1 : 0;
  if (params.after && start === 0) throw unknownCursor("a checkpoint of this job");
  return {
    items: records.slice(start, start + params.limit),
    hasMore: start + params.limit < records.length,
  };
}
