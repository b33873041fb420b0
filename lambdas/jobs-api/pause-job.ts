import type { JobsStore, TrainingCanceller } from "../core/jobs/ports.ts";
import { jobNotPausable, transition } from "../core/jobs/state-machine.ts";
import type { JobRecord } from "../core/jobs/wire.ts";
import { type Clock, nowSeconds } from "./dependencies.ts";
import { jobKeptChanging } from "./errors.ts";
import { retrieveJob } from "./read-jobs.ts";

export interface PauseJobDependencies extends Clock {
  readonly jobs: Pick<JobsStore, "get" | "applyTransition">;
  readonly runner: TrainingCanceller;
}

/** Conditional updates lost to concurrent status changes before the pause gives up with a 503. */
const PAUSE_ATTEMPTS = 5;

/**
 * Pauses the tenant's job: `validating_files`, `queued` and `running` become `paused`, and the training
 * run, if any, is terminated. Terminating sends the trainer SIGTERM, on which it writes a checkpoint at
 * the end of its current step and exits; the run's FAILED event then changes nothing (state-machine.ts)
 * and the compute is released. A job paused before it ran simply holds: the dispatcher submits nothing
 * for it, or terminates what it had just submitted. Pausing a `paused` job answers it unchanged and
 * terminates its run again; a finished job is a 409 `job_not_pausable`.
 */
export async function pauseJob(
  deps: PauseJobDependencies,
  tenantId: string,
  jobId: string,
): Promise<JobRecord> {
  for (let attempt = 0; attempt < PAUSE_ATTEMPTS; attempt++) {
    const job = await retrieveJob(deps, tenantId, jobId);
    if (job.status === "paused") {
      // A retried pause also retries the termination (Batch ignores it for a run that has ended).
      await terminateRun(deps, job);
      return job;
    }
    const result = transition(job.status, { type: "pause_requested" });
    if (!result.ok) throw jobNotPausable(job.status);
    // The model stays `pending`: the job has not ended.
    const applied = await deps.jobs.applyTransition({ job, result, nowSeconds: nowSeconds(deps) });
    if (!applied) continue;
    // The run as stored now: the dispatcher may have stored one since the read. Without one, its
    // conditional store fails on `paused` and it terminates what it submitted.
    const paused = (await deps.jobs.get(job.tenantId, job.jobId)) ?? job;
    await terminateRun(deps, paused);
    return paused;
  }
  throw jobKeptChanging("paused");
}

async function terminateRun(deps: PauseJobDependencies, job: JobRecord): Promise<void> {
  if (job.batchJobId) await deps.runner.terminate(job.batchJobId, `Paused by the tenant (${job.jobId})`);
}
