import type { JobsRepository } from "../aws/jobs-repository.ts";
import type { ObjectStore } from "../aws/object-store.ts";
import type { JobOutcome, JobOutcomeSample } from "../aws/observability.ts";
import { failureCode, parseBatchStateChange } from "../core/jobs/batch-event.ts";
import { resultArtifactUri } from "../core/jobs/dispatch.ts";
import { type JobStatus, TERMINAL_STATUSES, transition } from "../core/jobs/state-machine.ts";
import { type JobRecord, jobArtifactKeys, newJobEventItem } from "../core/jobs/wire.ts";

export interface StatusDependencies {
  readonly jobs: Pick<JobsRepository, "get" | "applyTransition" | "latestErrorEvent">;
  readonly artifacts: Pick<ObjectStore, "getJson"> & { readonly bucket: string };
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
        fields.resultFiles = [];
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

/** The trainer's result.json, written last: its presence is what "complete" means. */
async function readResult(job: JobRecord, deps: StatusDependencies) {
  const key = jobArtifactKeys(job.tenantId, job.jobId, job.method).resultSummary;
  const result = (await deps.artifacts.getJson(key)) as { trained_tokens?: unknown } | undefined;
  if (!result) return undefined;
  return { trainedTokens: typeof result.trained_tokens === "number" ? result.trained_tokens : null };
}
