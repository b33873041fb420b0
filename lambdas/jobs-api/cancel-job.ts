import type { JobsStore, TrainingCanceller } from "../core/jobs/ports.ts";
import { jobNotCancellable } from "../core/jobs/state-machine.ts";
import type { JobRecord } from "../core/jobs/wire.ts";
import type { Clock, JobsMetricsHooks } from "./dependencies.ts";
import { cancelKeptLosing } from "./errors.ts";
import { stopJob } from "./stop-job.ts";

export interface CancelJobDependencies extends Clock {
  readonly jobs: Pick<JobsStore, "get" | "applyTransition">;
  readonly runner: TrainingCanceller;
  readonly record?: Pick<JobsMetricsHooks, "cancelled">;
}

/**
 * Cancels the tenant's job: `validating_files`, `queued`, `running` and `paused` become `cancelled` (the
 * model `failed`) and the training run, if any, is terminated. Cancelling a `cancelled` job answers it
 * unchanged and terminates its run again; a succeeded or failed job is a 409 `job_not_cancellable`.
 */
export function cancelJob(deps: CancelJobDependencies, tenantId: string, jobId: string): Promise<JobRecord> {
  return stopJob(deps, tenantId, jobId, {
    event: "cancel_requested",
    stopped: "cancelled",
    model: { status: "failed" },
    refused: jobNotCancellable,
    keptChanging: cancelKeptLosing,
    reason: (id) => `Cancelled by the tenant (${id})`,
    onStopped: (job) => deps.record?.cancelled({ method: job.method }),
  });
}
