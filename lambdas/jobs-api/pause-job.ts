import type { JobsStore, TrainingCanceller } from "../core/jobs/ports.ts";
import { jobNotPausable } from "../core/jobs/state-machine.ts";
import type { JobRecord } from "../core/jobs/wire.ts";
import type { Clock } from "./dependencies.ts";
import { jobKeptChanging } from "./errors.ts";
import { stopJob } from "./stop-job.ts";

export interface PauseJobDependencies extends Clock {
  readonly jobs: Pick<JobsStore, "get" | "applyTransition">;
  readonly runner: TrainingCanceller;
}

/**
 * Pauses the tenant's job: `validating_files`, `queued` and `running` become `paused`, and the training
 * run, if any, is terminated. Terminating sends the trainer SIGTERM, on which it writes a checkpoint at
 * the end of its current step and exits; the run's FAILED event then changes nothing (state-machine.ts)
 * and the compute is released. A job paused before it ran simply holds: the dispatcher submits nothing
 * for it, or terminates what it had just submitted. Pausing a `paused` job answers it unchanged and
 * terminates its run again; a finished job is a 409 `job_not_pausable`. The model stays `pending`: the
 * job has not ended.
 */
export function pauseJob(deps: PauseJobDependencies, tenantId: string, jobId: string): Promise<JobRecord> {
  return stopJob(deps, tenantId, jobId, {
    event: "pause_requested",
    stopped: "paused",
    refused: jobNotPausable,
    keptChanging: () => jobKeptChanging("paused"),
    reason: (id) => `Paused by the tenant (${id})`,
  });
}
