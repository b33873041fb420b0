import { describe, expect, it } from "vitest";
import { jobArtifactKeys, newJobEventItem } from "../../../lambdas/core/jobs/wire.ts";
import {
  listCheckpoints,
  listJobEvents,
  listJobs,
  retrieveJob,
} from "../../../lambdas/jobs-api/read-jobs.ts";
import { fakeDependencies, NOW, OTHER_TENANT, storedJob, TENANT } from "./fakes.ts";

describe("retrieveJob", () => {
  it("returns the tenant's job", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes);
    expect(await retrieveJob(fakes.deps, TENANT, job.jobId)).toEqual(job);
  });

  it("returns 404 when tenant B reads tenant A's job, as for an unknown or malformed id", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes);
    for (const jobId of [job.jobId, "ftjob-000000000000000000000", "../x"]) {
      await expect(retrieveJob(fakes.deps, OTHER_TENANT, jobId)).rejects.toMatchObject({
        status: 404,
        code: "job_not_found",
        message: `No such fine-tuning job: ${jobId}`,
      });
    }
  });
});

describe("listJobs", () => {
  it("pages the tenant's jobs newest first, after the last id of the previous page", async () => {
    const fakes = fakeDependencies();
    const jobs = [await storedJob(fakes), await storedJob(fakes), await storedJob(fakes)];
    await storedJob(fakes, {}, OTHER_TENANT);
    const newestFirst = jobs
      .map((j) => j.jobId)
      .sort()
      .reverse();
    const first = await listJobs(fakes.deps, TENANT, { limit: 2 });
    expect(first.items.map((j) => j.jobId)).toEqual(newestFirst.slice(0, 2));
    expect(first.hasMore).toBe(true);
    const second = await listJobs(fakes.deps, TENANT, { limit: 2, after: newestFirst[1]! });
    expect(second).toEqual({ items: [expect.objectContaining({ jobId: newestFirst[2] })], hasMore: false });
  });

  it("answers 400 for an `after` that is not a job id", async () => {
    const fakes = fakeDependencies();
    await expect(
      listJobs(fakes.deps, TENANT, { limit: 2, after: "file-000000000000000000000" }),
    ).rejects.toMatchObject({
      status: 400,
      param: "after",
      message: "after must be the id of a job from a previous page.",
    });
  });
});

describe("listJobEvents", () => {
  it("pages a job's events newest first", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes);
    fakes.jobs.appendEvent(newJobEventItem(TENANT, job.jobId, { level: "info", message: "third" }, NOW + 5));
    const first = await listJobEvents(fakes.deps, job, { limit: 2 });
    expect(first.items.map((e) => e.message)).toEqual(["third", expect.any(String)]);
    expect(first.hasMore).toBe(true);
    const rest = await listJobEvents(fakes.deps, job, { limit: 2, after: first.items[1]!.id });
    expect(rest).toEqual({
      items: [expect.objectContaining({ message: `Created fine-tuning job: ${job.jobId}` })],
      hasMore: false,
    });
  });

  it("answers 400 for an `after` that is no event of the job, with the store's error as its cause", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes);
    const error = await listJobEvents(fakes.deps, job, { limit: 2, after: "ftevent-x" }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      status: 400,
      param: "after",
      message: "after must be the id of an event of this job.",
      cause: expect.objectContaining({ name: "EventCursorNotFoundError", after: "ftevent-x" }),
    });
  });
});

describe("listCheckpoints", () => {
  async function withCheckpoints() {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running" });
    const root = jobArtifactKeys(TENANT, job.jobId, job.method).checkpoints;
    for (const step of [10, 20, 30]) {
      fakes.artifacts.objects.set(`${root}step-${step}/checkpoint.json`, {
        step,
        metrics: { train_loss: 1 / step },
      });
      fakes.artifacts.objects.set(`${root}step-${step}/adapter_model.safetensors`, "…");
    }
    // Being written: the manifest comes last.
    fakes.artifacts.objects.set(`${root}step-40/adapter_model.safetensors`, "…");
    // Not a step folder, and a manifest of another step.
    fakes.artifacts.objects.set(`${root}tmp/checkpoint.json`, { step: 1 });
    fakes.artifacts.objects.set(`${root}step-50/checkpoint.json`, { step: 5 });
    return { fakes, job };
  }

  it("lists complete checkpoints newest first, leaving out folders without their manifest", async () => {
    const { fakes, job } = await withCheckpoints();
    const page = await listCheckpoints(fakes.deps, job, { limit: 10 });
    expect(page.items.map((c) => c.stepNumber)).toEqual([30, 20, 10]);
    expect(page.items[0]).toMatchObject({
      jobId: job.jobId,
      modelCode: job.modelCode,
      metrics: { step: 30, train_loss: 1 / 30 },
    });
    expect(page.hasMore).toBe(false);
  });

  it("pages after a checkpoint id, and answers 400 for an id that is not one of the job's", async () => {
    const { fakes, job } = await withCheckpoints();
    const first = await listCheckpoints(fakes.deps, job, { limit: 1 });
    expect(first.hasMore).toBe(true);
    const next = await listCheckpoints(fakes.deps, job, { limit: 5, after: first.items[0]!.checkpointId });
    expect(next.items.map((c) => c.stepNumber)).toEqual([20, 10]);
    await expect(listCheckpoints(fakes.deps, job, { limit: 5, after: "ftckpt-nope" })).rejects.toMatchObject({
      status: 400,
      param: "after",
      message: "after must be the id of a checkpoint of this job.",
    });
  });
});
