import { describe, expect, it } from "vitest";
import { DEFAULT_CATALOG } from "../../../lambdas/core/catalog/base-models.ts";
import { runName, type TrainingSubmission } from "../../../lambdas/core/jobs/dispatch.ts";
import type { TransitionWrite } from "../../../lambdas/core/jobs/ports.ts";
import type { JobRecord } from "../../../lambdas/core/jobs/wire.ts";
import { type DispatchDependencies, dispatchJob } from "../../../lambdas/dispatcher/dispatch.ts";
import { JOB, jobRecord, TENANT } from "../../fixtures/jobs.ts";

const WHERE = { datasetsBucket: "ds", artifactsBucket: "art", jobsTable: "jobs", eventsTable: "events" };

/**
 * The dispatcher over a job whose status a test may change while the run is being submitted (a pause
 * or cancel that arrives between the claim and the store).
 */
function dispatcher(job: JobRecord, duringSubmit?: (job: JobRecord) => JobRecord) {
  let current = job;
  const submitted: TrainingSubmission[] = [];
  const terminated: string[] = [];
  const writes: TransitionWrite[] = [];
  const deps: DispatchDependencies = {
    jobs: {
      get: async () => current,
      claimDispatch: async () => current.status === "queued" && !current.batchJobId,
      applyTransition: async (write) => {
        if (!write.result.allowedFrom.includes(current.status)) return false;
        writes.push(write);
        current = { ...current, status: write.result.to, batchJobId: write.runId ?? current.batchJobId };
        return true;
      },
    },
    runner: {
      submit: async (submission) => {
        submitted.push(submission);
        if (duringSubmit) current = duringSubmit(current);
        return `batch-${submitted.length}`;
      },
      terminate: async (runId) => void terminated.push(runId),
    },
    catalog: DEFAULT_CATALOG,
    locations: WHERE,
    log: () => {},
  };
  return { deps, submitted, terminated, writes, job: () => current };
}

describe("run names", () => {
  it("names the first run after the job, and each resumed run after its resume", () => {
    expect(runName({ jobId: JOB })).toBe(JOB);
    expect(runName({ jobId: JOB, resumes: 0 })).toBe(JOB);
    expect(runName({ jobId: JOB, resumes: 2 })).toBe(`${JOB}-resume-2`);
    // A Batch job name: letters, numbers, hyphens and underscores, at most 128.
    expect(runName({ jobId: JOB, resumes: 99 })).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
  });
});

describe("the dispatcher and a pause", () => {
  it("submits nothing for a paused job", async () => {
    const d = dispatcher(jobRecord({ status: "paused", batchJobId: null }));
    await expect(dispatchJob({ tenantId: TENANT, jobId: JOB }, d.deps)).resolves.toBe("not_queued");
    expect(d.submitted).toEqual([]);
  });

  it("terminates the run it submitted when the pause won the race, and leaves the job paused", async () => {
    const d = dispatcher(jobRecord({ status: "queued", batchJobId: null }), (job) => ({
      ...job,
      status: "paused",
    }));
    await expect(dispatchJob({ tenantId: TENANT, jobId: JOB }, d.deps)).resolves.toBe("paused");
    expect(d.terminated).toEqual(["batch-1"]);
    expect(d.job()).toMatchObject({ status: "paused", batchJobId: null });
  });

  it("terminates the run it submitted when a cancel of the paused job won the race", async () => {
    const d = dispatcher(jobRecord({ status: "queued", batchJobId: null }), (job) => ({
      ...job,
      status: "cancelled",
    }));
    await expect(dispatchJob({ tenantId: TENANT, jobId: JOB }, d.deps)).resolves.toBe("cancelled");
    expect(d.terminated).toEqual(["batch-1"]);
  });

  it("submits a resumed job as a new run, under the resume's name, and stores its id", async () => {
    const d = dispatcher(jobRecord({ status: "queued", batchJobId: null, resumes: 1 }));
    await expect(dispatchJob({ tenantId: TENANT, jobId: JOB }, d.deps)).resolves.toBe("submitted");
    expect(d.submitted.map((s) => s.name)).toEqual([`${JOB}-resume-1`]);
    // The same output location: the trainer finds the paused run's checkpoints there and resumes.
    expect(d.submitted[0]!.environment.OUTPUT_URI).toBe(`s3://art/tenants/${TENANT}/jobs/${JOB}/`);
    expect(d.job()).toMatchObject({ status: "queued", batchJobId: "batch-1" });
  });
});
