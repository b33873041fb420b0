import { describe, expect, it } from "vitest";
import type { JobStatus } from "../../../lambdas/core/jobs/state-machine.ts";
import { cancelJob } from "../../../lambdas/jobs-api/cancel-job.ts";
import { fakeDependencies, OTHER_TENANT, storedJob, TENANT } from "./fakes.ts";

describe("cancelJob", () => {
  for (const status of ["validating_files", "queued"] as const) {
    it(`cancels a ${status} job without a run, fails its model, and terminates nothing`, async () => {
      const fakes = fakeDependencies();
      const job = await storedJob(fakes, { status });
      const cancelled = await cancelJob(fakes.deps, TENANT, job.jobId);
      expect(cancelled).toMatchObject({
        jobId: job.jobId,
        status: "cancelled",
        finishedAt: expect.any(Number),
      });
      expect(await fakes.jobs.get(TENANT, job.jobId)).toEqual(cancelled);
      expect(fakes.jobs.models.get(job.modelCode)?.status).toBe("failed");
      expect(fakes.jobs.eventsOf(TENANT, job.jobId).at(-1)?.message).toMatch(/cancel/i);
      expect(fakes.runner.terminated).toEqual([]);
    });
  }

  it("cancels a running job and terminates its run", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running", batchJobId: "run-1" });
    expect((await cancelJob(fakes.deps, TENANT, job.jobId)).status).toBe("cancelled");
    expect(fakes.runner.terminated).toEqual([
      { runId: "run-1", reason: `Cancelled by the tenant (${job.jobId})` },
    ]);
  });

  it("answers a cancelled job unchanged, and terminates its run again", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "cancelled", batchJobId: "run-1", finishedAt: 5 });
    const events = fakes.jobs.eventsOf(TENANT, job.jobId).length;
    expect(await cancelJob(fakes.deps, TENANT, job.jobId)).toEqual(job);
    expect(fakes.jobs.eventsOf(TENANT, job.jobId)).toHaveLength(events);
    expect(fakes.runner.terminated.map((t) => t.runId)).toEqual(["run-1"]);
  });

  for (const status of ["succeeded", "failed"] satisfies JobStatus[]) {
    it(`answers 409 job_not_cancellable for a ${status} job and changes nothing`, async () => {
      const fakes = fakeDependencies();
      const job = await storedJob(fakes, { status, batchJobId: "run-1" });
      await expect(cancelJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({
        status: 409,
        code: "job_not_cancellable",
        message: `The job has already ${status} and can not be cancelled.`,
      });
      expect((await fakes.jobs.get(TENANT, job.jobId))?.status).toBe(status);
      expect(fakes.runner.terminated).toEqual([]);
    });
  }

  it("answers 404 for another tenant's job, an unknown job and a malformed id", async () => {
    const fakes = fakeDependencies();
    const theirs = await storedJob(fakes, {}, OTHER_TENANT);
    for (const jobId of [theirs.jobId, "ftjob-000000000000000000000", "nope"]) {
      await expect(cancelJob(fakes.deps, TENANT, jobId)).rejects.toMatchObject({
        status: 404,
        code: "job_not_found",
        param: "fine_tuning_job_id",
      });
    }
    expect((await fakes.jobs.get(OTHER_TENANT, theirs.jobId))?.status).toBe("queued");
  });

  it("terminates the run a concurrent dispatch stored between the read and the write", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "queued" });
    fakes.jobs.beforeTransition = (current) => {
      fakes.jobs.beforeTransition = undefined;
      fakes.jobs.jobs.set(`${TENANT}/${job.jobId}`, { ...current, status: "running", batchJobId: "run-2" });
    };
    const cancelled = await cancelJob(fakes.deps, TENANT, job.jobId);
    expect(cancelled).toMatchObject({ status: "cancelled", batchJobId: "run-2" });
    expect(fakes.runner.terminated.map((t) => t.runId)).toEqual(["run-2"]);
  });

  it("answers 409 when the job succeeded between the read and the write", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running", batchJobId: "run-1" });
    fakes.jobs.beforeTransition = (current) => {
      fakes.jobs.jobs.set(`${TENANT}/${job.jobId}`, { ...current, status: "succeeded" });
    };
    await expect(cancelJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({
      code: "job_not_cancellable",
    });
    expect(fakes.runner.terminated).toEqual([]);
  });

  it("tries again after a lost conditional update", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running", batchJobId: "run-1" });
    const apply = fakes.jobs.applyTransition.bind(fakes.jobs);
    let attempts = 0;
    fakes.deps.jobs.applyTransition = async (write) => (++attempts === 1 ? false : apply(write));
    expect((await cancelJob(fakes.deps, TENANT, job.jobId)).status).toBe("cancelled");
    expect(attempts).toBe(2);
    expect(fakes.runner.terminated.map((t) => t.runId)).toEqual(["run-1"]);
  });

  it("answers 503 when every attempt loses to a concurrent change", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running", batchJobId: "run-1" });
    let attempts = 0;
    fakes.deps.jobs.applyTransition = async () => {
      attempts++;
      return false;
    };
    await expect(cancelJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({
      status: 503,
      message: "The job kept changing while being cancelled; try again.",
    });
    expect(attempts).toBe(5);
    expect(fakes.runner.terminated).toEqual([]);
  });
});
