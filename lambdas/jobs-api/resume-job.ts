import type { JobsStore, TrainingQueue } from "../core/jobs/ports.ts";
import { jobNotResumable, transition } from "../core/jobs/state-machine.ts";
import type { JobRecord } from "../core/jobs/wire.ts";
import { type Clock, nowSeconds } from "./dependencies.ts";
import { jobKeptChanging, resumeQueueUnavailable } from "./errors.ts";
import { retrieveJob } from "./read-jobs.ts";

export interface ResumeJobDependencies extends Clock {
  readonly jobs: Pick<JobsStore, "get" | "applyTransition">;
  readonly queue: Pick<TrainingQueue, "send">;
}

const RESUME_ATTEMPTS = 5;

/**
 * Resumes the tenant's `paused` job: it becomes `queued` again and its message goes to the training
 * queue, the path of a new job, so the dispatcher submits a new run. The run is a new one (`resumes`
 * counts it: its name differs from the paused run's, see dispatch.ts `runName`), its id is cleared so
 * that the dispatcher may store the new one, and a dispatch claim left by the paused run is released.
 * The trainer finds its newest checkpoint under the job's output and continues from its step. Any
 * other status is a 409 `job_not_resumable`. When the queue can not be reached the job is paused again
 * and the answer is a 503: resuming it again is safe.
 */
export async function resumeJob(
  deps: ResumeJobDependencies,
  tenantId: string,
  jobId: string,
): Promise<JobRecord> {
  for (let attempt = 0; attempt < RESUME_ATTEMPTS; attempt++) {
    const job = await retrieveJob(deps, tenantId, jobId);
    const result = transition(job.status, { type: "resume_requested" });
    if (!result.ok) throw jobNotResumable(job.status);
    const applied = await deps.jobs.applyTransition({
      job,
      result,
      nowSeconds: nowSeconds(deps),
      fields: {
        batchJobId: null,
        resumes: (job.resumes ?? 0) + 1,
        dispatchClaimExpires: 0,
        estimatedFinish: null,
      },
    });
    if (!applied) continue;
    try {
      await deps.queue.send({ tenantId: job.tenantId, jobId: job.jobId });
    } catch (error) {
      await pauseAgain(deps, job);
      throw resumeQueueUnavailable(error);
    }
    return (await deps.jobs.get(job.tenantId, job.jobId)) ?? job;
  }
  throw jobKeptChanging("resumed");
}

/** Back to `paused` (nothing was submitted: the message never left); best effort, as the answer is a 503. */
async function pauseAgain(deps: ResumeJobDependencies, job: JobRecord): Promise<void> {
  const result = transition("queued", { type: "pause_requested" });
  if (!result.ok) return;
  await deps.jobs.applyTransition({ job, result, nowSeconds: nowSeconds(deps) }).catch(() => false);
}
