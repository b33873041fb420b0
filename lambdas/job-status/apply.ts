import type { FilesRepository } from "../aws/files-repository.ts";
import type { JobsRepository } from "../aws/jobs-repository.ts";
import type { ObjectStore } from "../aws/object-store.ts";
import type { JobOutcome, JobOutcomeSample } from "../aws/observability.ts";
import { RESULTS_FILE_CONTENT_TYPE, resultsFileRecord } from "../core/files/file-record.ts";
import { failureCode, parseBatchStateChange } from "../core/jobs/batch-event.ts";
import { resultArtifactUri, runName } from "../core/jobs/dispatch.ts";
import { type JobStatus, TERMINAL_STATUSES, transition } from "../core/jobs/state-machine.ts";
import { type JobRecord, jobArtifactKeys, newJobEventItem } from "../core/jobs/wire.ts";
import { parseResultSummary, type ResultSummary } from "./result-summary.ts";

export interface StatusDependencies {
  readonly jobs: Pick<JobsRepository, "get" | "applyTransition" | "latestErrorEvent">;
  readonly artifacts: Pick<ObjectStore, "getJson" | "head"> & { readonly bucket: string };
  /** Where a succeeded job's results.csv becomes the tenant's file: the datasets bucket, the files table. */
  readonly resultFiles: {
    readonly datasets: Pick<ObjectStore, "copyFrom">;
    readonly files: Pick<FilesRepository, "createIfAbsent">;
  };
  readonly now?: () => number;
  /** Counts a job this event finished (the `JobsFinished` metric), once: only the applied transition. */
  readonly recordOutcome?: (sample: JobOutcomeSample) => void;
}

export type StatusOutcome = "applied" | "unchanged" | "rejected" | "ignored" | "stale_run";

/**
 * A Batch job state change → the job's status, by a conditional transition (a lost race is re-read
 * and re-decided, never overwritten). Repeated or late events change nothing: `cancelled`, like every
 * terminal status, wins over anything that arrives after it.
 */
export async function applyBatchStateChange(
  detail: unknown,
  deps: StatusDependencies,
): Promise<StatusOutcome> {
  const change = parseBatchStateChange(detail);
  if (!change?.event) return "ignored";
  const nowMs = deps.now?.() ?? Date.now();

  for (let attempt = 0; attempt < 5; attempt++) {
    const job = await deps.jobs.get(change.tenantId, change.jobId);
    if (!job) return "ignored";
    // Events of an earlier run (one the dispatcher terminated, or from before a resubmission).
    if (job.batchJobId && job.batchJobId !== change.batchJobId) return "stale_run";
    // Events of a run a pause ended, after a resume cleared its id: each run has its own name.
    if (change.runName !== undefined && change.runName !== runName(job)) return "stale_run";
    let result = transition(job.status, change.event);
    if (!result.ok) return "rejected";
    // Duplicates (EventBridge delivers at least once) and SUBMITTED→PENDING→RUNNABLE add nothing;
    // RUNNABLE after RUNNING does: the run was interrupted and will resume.
    const interrupted = change.event.type === "batch_queued" && job.status === "running";
    if (!result.changed && !interrupted) return "unchanged";

    const fields: Record<string, unknown> = {};
    let model: { status: "ready" | "failed"; artifactUri?: string } | undefined;
    if (result.to === "succeeded") {
      const outcome = await readResult(job, deps);
      if (outcome) {
        fields.trainedTokens = outcome.trainedTokens;
        if (outcome.trainingSummary) fields.trainingSummary = outcome.trainingSummary;
        const resultsFile = await publishResultsFile(job, deps, Math.floor(nowMs / 1000));
        fields.resultFiles = resultsFile ? [resultsFile] : [];
        model = { status: "ready", artifactUri: resultArtifactUri(deps.artifacts.bucket, job) };
      } else {
        // Exit 0 without result.json (written last) is not a usable model.
        result = transition(job.status, {
          type: "batch_failed",
          reason: "the trainer exited without a complete result",
        });
        if (!result.ok) return "rejected";
        model = { status: "failed" };
      }
    }
    if (result.to === "failed") {
      const trainerError = await deps.jobs.latestErrorEvent(job.tenantId, job.jobId);
      const message = trainerError?.message ?? result.error?.message ?? "Training failed.";
      result = { ...result, error: { code: failureCode(change.exitCode), message, param: null } };
      model = { status: "failed" };
    }
    const applied = await deps.jobs.applyTransition({
      job,
      result,
      event: newJobEventItem(
        job.tenantId,
        job.jobId,
        {
          level: result.message.level,
          message: result.message.text,
          data: {
            batch_status: change.batchStatus,
            ...(change.exitCode !== undefined ? { exit_code: change.exitCode } : {}),
          },
        },
        nowMs,
      ),
      nowSeconds: Math.floor(nowMs / 1000),
      fields,
      runId: change.batchJobId,
      ...(model ? { model } : {}),
    });
    if (applied) {
      if (isOutcome(result.to)) deps.recordOutcome?.({ outcome: result.to, method: job.method });
      return "applied";
    }
  }
  throw new Error(`job ${change.jobId} kept changing while its status was updated`);
}

const isOutcome = (status: JobStatus): status is JobOutcome => TERMINAL_STATUSES.includes(status);

/**
 * The trainer's result.json, written last: its presence is what "complete" means. Its content is only
 * an account of the run: unreadable JSON (Python writes NaN as a bare word) reads as an empty one
 * rather than failing a job whose weights are complete, or retrying the event for hours.
 */
async function readResult(job: JobRecord, deps: StatusDependencies): Promise<ResultSummary | undefined> {
  const key = jobArtifactKeys(job.tenantId, job.jobId, job.method).resultSummary;
  let raw: unknown;
  try {
    raw = await deps.artifacts.getJson(key);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    raw = {};
  }
  return raw === undefined ? undefined : parseResultSummary(raw);
}

/**
 * The run's results.csv, copied to the tenant's files (datasets bucket) with its record: the file id,
 * or undefined when the trainer wrote none (one older than results.csv). The id is derived from the
 * job's, the object is copied before its record is made and the record only if absent, so a
 * redelivered or concurrent success event makes the same single file. A copy whose transition then
 * loses to a cancel stays a file no job names; the tenant sees it and may delete it.
 */
async function publishResultsFile(
  job: JobRecord,
  deps: StatusDependencies,
  nowSeconds: number,
): Promise<string | undefined> {
  const source = jobArtifactKeys(job.tenantId, job.jobId, job.method).resultsCsv;
  const object = await deps.artifacts.head(source);
  if (!object) return undefined;
  const record = resultsFileRecord({
    tenantId: job.tenantId,
    jobId: job.jobId,
    bytes: object.bytes,
    createdAt: nowSeconds,
  });
  await deps.resultFiles.datasets.copyFrom(
    { bucket: deps.artifacts.bucket, key: source },
    record.objectKey,
    RESULTS_FILE_CONTENT_TYPE,
  );
  await deps.resultFiles.files.createIfAbsent(record);
  return record.fileId;
}
