import { describe, expect, it } from "vitest";
import type { JobStatus } from "../../../lambdas/core/jobs/state-machine.ts";
import { pauseJob } from "../../../lambdas/jobs-api/pause-job.ts";
import { resumeJob } from "../../../lambdas/jobs-api/resume-job.ts";
import { fakeDependencies, OTHER_TENANT, storedJob, TENANT } from "./fakes.ts";

describe("pauseJob", () => {
  for (const status of ["validating_files", "queued"] as const) {
    it(`holds a ${status} job without a run: paused, its model pending, nothing terminated`, async () => {
      const fakes = fakeDependencies();
      const job = await storedJob(fakes, { status });
      const paused = await pauseJob(fakes.deps, TENANT, job.jobId);
      expect(paused).toMatchObject({ jobId: job.jobId, status: "paused", finishedAt: null });
      expect(await fakes.jobs.get(TENANT, job.jobId)).toEqual(paused);
      expect(fakes.jobs.models.get(job.modelCode)?.status).toBe("pending");
      expect(fakes.jobs.eventsOf(TENANT, job.jobId).at(-1)?.message).toBe(
        "Job paused before training started.",
      );
      expect(fakes.runner.terminated).toEqual([]);
    });
  }

  it("pauses a running job and terminates its run, which makes the trainer checkpoint and stop", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running", batchJobId: "run-1" });
    expect((await pauseJob(fakes.deps, TENANT, job.jobId)).status).toBe("paused");
    expect(fakes.runner.terminated).toEqual([
      { runId: "run-1", reason: `Paused by the tenant (${job.jobId})` },
    ]);
    expect(fakes.jobs.eventsOf(TENANT, job.jobId).at(-1)?.message).toMatch(/checkpoint/);
  });

  it("terminates the run of a queued job Batch had not started yet", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "queued", batchJobId: "run-1" });
    expect((await pauseJob(fakes.deps, TENANT, job.jobId)).status).toBe("paused");
    expect(fakes.runner.terminated.map((t) => t.runId)).toEqual(["run-1"]);
  });

  it("answers a paused job unchanged, and terminates its run again", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "paused", batchJobId: "run-1" });
    const events = fakes.jobs.eventsOf(TENANT, job.jobId).length;
    expect(await pauseJob(fakes.deps, TENANT, job.jobId)).toEqual(job);
    expect(fakes.jobs.eventsOf(TENANT, job.jobId)).toHaveLength(events);
    expect(fakes.runner.terminated.map((t) => t.runId)).toEqual(["run-1"]);
  });

  for (const status of ["succeeded", "failed", "cancelled"] satisfies JobStatus[]) {
    it(`answers 409 job_not_pausable for a ${status} job and changes nothing`, async () => {
      const fakes = fakeDependencies();
      const job = await storedJob(fakes, { status, batchJobId: "run-1" });
      await expect(pauseJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({
        status: 409,
        code: "job_not_pausable",
      });
      expect((await fakes.jobs.get(TENANT, job.jobId))?.status).toBe(status);
      expect(fakes.runner.terminated).toEqual([]);
    });
  }

  it("answers 404 for another tenant's job", async () => {
    const fakes = fakeDependencies();
    const theirs = await storedJob(fakes, { status: "running", batchJobId: "run-1" }, OTHER_TENANT);
    await expect(pauseJob(fakes.deps, TENANT, theirs.jobId)).rejects.toMatchObject({
      status: 404,
      code: "job_not_found",
    });
    expect((await fakes.jobs.get(OTHER_TENANT, theirs.jobId))?.status).toBe("running");
    expect(fakes.runner.terminated).toEqual([]);
  });

  it("terminates the run a concurrent dispatch stored between the read and the write", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "queued" });
    fakes.jobs.beforeTransition = (current) => {
      fakes.jobs.beforeTransition = undefined;
      fakes.jobs.jobs.set(`${TENANT}/${job.jobId}`, { ...current, status: "running", batchJobId: "run-2" });
    };
    expect(await pauseJob(fakes.deps, TENANT, job.jobId)).toMatchObject({
      status: "paused",
      batchJobId: "run-2",
    });
    expect(fakes.runner.terminated.map((t) => t.runId)).toEqual(["run-2"]);
  });

  it("loses to a success written between the read and the write: 409, and the run is left alone", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running", batchJobId: "run-1" });
    fakes.jobs.beforeTransition = (current) => {
      fakes.jobs.jobs.set(`${TENANT}/${job.jobId}`, { ...current, status: "succeeded" });
    };
    await expect(pauseJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({ code: "job_not_pausable" });
    expect(fakes.runner.terminated).toEqual([]);
  });

  it("loses to a cancel written between the read and the write: 409, the job stays cancelled", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running", batchJobId: "run-1" });
    fakes.jobs.beforeTransition = (current) => {
      fakes.jobs.jobs.set(`${TENANT}/${job.jobId}`, { ...current, status: "cancelled" });
    };
    await expect(pauseJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({ code: "job_not_pausable" });
    expect((await fakes.jobs.get(TENANT, job.jobId))?.status).toBe("cancelled");
  });

  it("answers 503 when every attempt loses to a concurrent change", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running", batchJobId: "run-1" });
    fakes.deps.jobs.applyTransition = async () => false;
    await expect(pauseJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({
      status: 503,
      message: "The job kept changing while being paused; try again.",
    });
    expect(fakes.runner.terminated).toEqual([]);
  });
});

describe("resumeJob", () => {
  it("queues a paused job again as a new run: run id cleared, claim released, message sent", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "paused", batchJobId: "run-1" });
    const sent = fakes.queue.sent.length;
    const resumed = await resumeJob(fakes.deps, TENANT, job.jobId);
    expect(resumed).toMatchObject({ status: "queued", batchJobId: null, resumes: 1, finishedAt: null });
    expect(resumed).toMatchObject({ dispatchClaimExpires: 0 });
    expect(await fakes.jobs.get(TENANT, job.jobId)).toEqual(resumed);
    expect(fakes.queue.sent.slice(sent)).toEqual([{ tenantId: TENANT, jobId: job.jobId }]);
    expect(fakes.jobs.eventsOf(TENANT, job.jobId).at(-1)?.message).toMatch(/resumed.*newest checkpoint/);
    expect(fakes.jobs.models.get(job.modelCode)?.status).toBe("pending");
  });

  it("counts every resume, so that each run has a name of its own", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "paused", resumes: 2 });
    expect((await resumeJob(fakes.deps, TENANT, job.jobId)).resumes).toBe(3);
  });

  for (const status of [
    "validating_files",
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
  ] satisfies JobStatus[]) {
    it(`answers 409 job_not_resumable for a ${status} job and queues nothing`, async () => {
      const fakes = fakeDependencies();
      const job = await storedJob(fakes, { status });
      const sent = fakes.queue.sent.length;
      await expect(resumeJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({
        status: 409,
        code: "job_not_resumable",
      });
      expect((await fakes.jobs.get(TENANT, job.jobId))?.status).toBe(status);
      expect(fakes.queue.sent).toHaveLength(sent);
    });
  }

  it("answers 404 for another tenant's paused job and queues nothing", async () => {
    const fakes = fakeDependencies();
    const theirs = await storedJob(fakes, { status: "paused" }, OTHER_TENANT);
    const sent = fakes.queue.sent.length;
    await expect(resumeJob(fakes.deps, TENANT, theirs.jobId)).rejects.toMatchObject({ status: 404 });
    expect(fakes.queue.sent).toHaveLength(sent);
  });

  it("loses to a cancel written between the read and the write: 409, nothing queued", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "paused" });
    const sent = fakes.queue.sent.length;
    fakes.jobs.beforeTransition = (current) => {
      fakes.jobs.jobs.set(`${TENANT}/${job.jobId}`, { ...current, status: "cancelled" });
    };
    await expect(resumeJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({
      code: "job_not_resumable",
    });
    expect(fakes.queue.sent).toHaveLength(sent);
  });

  it("pauses the job again and answers 503 when the training queue can not be reached", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "paused" });
    fakes.queue.failure = Object.assign(new Error("down"), { name: "QueueDoesNotExist" });
    await expect(resumeJob(fakes.deps, TENANT, job.jobId)).rejects.toMatchObject({
      status: 503,
      code: "queue_unavailable",
    });
    expect((await fakes.jobs.get(TENANT, job.jobId))?.status).toBe("paused");
    fakes.queue.failure = undefined;
    expect((await resumeJob(fakes.deps, TENANT, job.jobId)).status).toBe("queued");
  });
});
