import { describe, expect, it } from "vitest";
import { deleteJob } from "../../../lambdas/jobs-api/delete-job.ts";
import { fakeDependencies, OTHER_TENANT, storedJob, TENANT } from "./fakes.ts";

describe("deleteJob", () => {
  for (const status of ["succeeded", "failed", "cancelled"] as const) {
    it(`deletes a ${status} job with its events and keeps its model`, async () => {
      const fakes = fakeDependencies();
      const job = await storedJob(fakes, { status });
      expect(await deleteJob(fakes.deps, TENANT, job.jobId)).toEqual(job);
      expect(await fakes.jobs.get(TENANT, job.jobId)).toBeUndefined();
      expect(fakes.jobs.eventsOf(TENANT, job.jobId)).toEqual([]);
      expect(fakes.jobs.models.get(job.modelCode)).toBeDefined();
    });
  }

  for (const status of ["validating_files", "queued", "running"] as const) {
    it(`answers 409 job_not_finished for a ${status} job and deletes nothing`, async () => {
      const fakes = fakeDependencies();
      const job = await storedJob(fakes, { status });
      await expect(deleteJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({
        status: 409,
        code: "job_not_finished",
        message: expect.stringContaining("cancel it first"),
      });
      expect(await fakes.jobs.get(TENANT, job.jobId)).toEqual(job);
    });
  }

  it("answers 404 when tenant B deletes tenant A's job", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "succeeded" });
    await expect(deleteJob(fakes.deps, OTHER_TENANT, job.jobId)).rejects.toMatchObject({
      status: 404,
      code: "job_not_found",
    });
    expect(await fakes.jobs.get(TENANT, job.jobId)).toBeDefined();
  });

  it("answers 404 when the job is deleted between the read and the delete", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "succeeded" });
    fakes.deps.jobs.deleteJob = async () => ({ outcome: "not_found" });
    await expect(deleteJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({
      status: 404,
      code: "job_not_found",
    });
  });
});
