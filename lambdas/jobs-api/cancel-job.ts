import type { JobsStore, TrainingCanceller } from "../core/jobs/ports.ts";
import { jobNotCancellable, transition } from "../core/jobs/state-machine.ts";
import type { JobRecord } from "../core/jobs/wire.ts";
import { type Clock, type JobsMetricsHooks, nowSeconds } from "./dependencies.ts";
import { cancelKeptLosing } from "./errors.ts";
import { retrieveJob } from "./read-jobs.ts";

export interface CancelJobDependencies extends Clock {
  readonly jobs: Pick<JobsStore, "get" | "applyTransition">;
  readonly runner: TrainingCanceller;
  readonly record?: Pick<JobsMetricsHooks, "cancelled">;
}

/** Conditional updates lost to concurrent status changes before the cancel gives up with a 503. */
const CANCEL_ATTEMPTS = 5;

/**
 * Cancels the tenant's job: `validating_files`, `queued` and `running` become `cancelled` (the model
 * `failed`) and the training run, if any, is terminated. Cancelling a `cancelled` job answers it
 * unchanged and terminates its run again; a succeeded or failed job is a 409 `job_not_cancellable`.
 */
export async function cancelJob(
  deps: CancelJobDependencies,
  tenantId: string,
  jobId: string,
): Promise<JobRecord> {
  for (let attempt = 0; attempt < CANCEL_ATTEMPTS; attempt++) {
    const job = await retrieveJob(deps, tenantId, jobId);
    if (job.status === "cancelled") {
      // A retried cancel also retries the termination (Batch ignores it for a run that has ended).
      await terminateRun(deps, job);
      return job;
    }
    const result = transition(job.status, { type: "cancel_requested" });
    if (!result.ok) throw jobNotCancellable(job.status);
    const applied = await deps.jobs.applyTransition({
      job,
      result,
      nowSeconds: nowSeconds(deps),
      model: { status: "failed" },
    });
    if (!applied) continue;
    // The run as stored now: the dispatcher may have stored one since the read (`queued` → `running`
    // does not fail the write). Without one, the dispatcher's conditional store fails on `cancelled` and
    // terminates what it submitted.
    const cancelled = (await deps.jobs.get(job.tenantId, job.jobId)) ?? job;
    deps.record?.cancelled({ method: job.method });
    await terminateRun(deps, cancelled);
    return cancelled;
  }
  throw cancelKeptLosing();
}

async function terminateRun(deps: CancelJobDependencies, job: JobRecord): Promise<void> {
  if (job.batchJobId) await deps.runner.terminate(job.batchJobId, `Cancelled by the tenant (${job.jobId})`);
}
