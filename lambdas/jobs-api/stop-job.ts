import type { JobsStore, TrainingCanceller, TransitionWrite } from "../core/jobs/ports.ts";
import { type JobStatus, transition } from "../core/jobs/state-machine.ts";
import type { JobRecord } from "../core/jobs/wire.ts";
import { type Clock, nowSeconds } from "./dependencies.ts";
import { retrieveJob } from "./read-jobs.ts";

export interface StopJobDependencies extends Clock {
  readonly jobs: Pick<JobsStore, "get" | "applyTransition">;
  readonly runner: TrainingCanceller;
}

/** What makes a stop a cancel or a pause. */
export interface StopKind {
  readonly event: "cancel_requested" | "pause_requested";
  /** The status the event leads to: asked again there, the stop answers the job unchanged. */
  readonly stopped: Extract<JobStatus, "cancelled" | "paused">;
  /** The model's change with the job's (a cancel fails it; a paused job's model stays `pending`). */
  readonly model?: TransitionWrite["model"];
  /** The 409 for a status the event is not allowed from. */
  readonly refused: (status: JobStatus) => Error;
  /** The 503 once every attempt lost its conditional update to a concurrent change. */
  readonly keptChanging: () => Error;
  /** Why the run is terminated (Batch's `reason`). */
  readonly reason: (jobId: string) => string;
  /** Called once the status changed, before the run is terminated (metrics). */
  readonly onStopped?: (job: JobRecord) => void;
}

/** Conditional updates lost to concurrent status changes before a stop gives up with a 503. */
const STOP_ATTEMPTS = 5;

/**
 * Moves the tenant's job to `kind.stopped` through the state machine and terminates its training run,
 * if any. Asked again in that status, it answers the job unchanged and terminates its run again (Batch
 * ignores that for a run that has ended). The run terminated is the one stored after the write: the
 * dispatcher may have stored one since the read; without one, its conditional store fails on the new
 * status and it terminates what it submitted.
 */
export async function stopJob(
  deps: StopJobDependencies,
  tenantId: string,
  jobId: string,
  kind: StopKind,
): Promise<JobRecord> {
  for (let attempt = 0; attempt < STOP_ATTEMPTS; attempt++) {
    const job = await retrieveJob(deps, tenantId, jobId);
    if (job.status === kind.stopped) {
      await terminateRun(deps, job, kind);
      return job;
    }
    const result = transition(job.status, { type: kind.event });
    if (!result.ok) throw kind.refused(job.status);
    const applied = await deps.jobs.applyTransition({
      job,
      result,
      nowSeconds: nowSeconds(deps),
      ...(kind.model ? { model: kind.model } : {}),
    });
    if (!applied) continue;
    const stopped = (await deps.jobs.get(job.tenantId, job.jobId)) ?? job;
    kind.onStopped?.(job);
    await terminateRun(deps, stopped, kind);
    return stopped;
  }
  throw kind.keptChanging();
}

async function terminateRun(deps: StopJobDependencies, job: JobRecord, kind: StopKind): Promise<void> {
  if (job.batchJobId) await deps.runner.terminate(job.batchJobId, kind.reason(job.jobId));
}
