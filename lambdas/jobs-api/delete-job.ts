import type { JobsStore } from "../core/jobs/ports.ts";
import { jobNotDeletable } from "../core/jobs/state-machine.ts";
import type { JobRecord } from "../core/jobs/wire.ts";
import { jobNotFound } from "./errors.ts";
import { retrieveJob } from "./read-jobs.ts";

/**
 * Deletes the tenant's job once it has ended, with its events; its model and artifacts stay. 409
 * `job_not_finished` while it has not ended. The job as it was, for the answer.
 */
export async function deleteJob(
  deps: { readonly jobs: Pick<JobsStore, "get" | "deleteJob"> },
  tenantId: string,
  jobId: string,
): Promise<JobRecord> {
  const job = await retrieveJob(deps, tenantId, jobId);
  const result = await deps.jobs.deleteJob(job.tenantId, job.jobId);
  switch (result.outcome) {
    case "deleted":
      return job;
    case "not_found":
      throw jobNotFound(job.jobId);
    case "not_finished":
      throw jobNotDeletable(job.jobId, result.job.status);
  }
}
