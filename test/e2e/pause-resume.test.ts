import { createReadStream, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { localClients } from "../integration/aws.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

type Event = { id: string; type?: string; message: string; data?: unknown };
type Job = { id: string; status: string; error: unknown };

/** The trainer processes of a job on this machine: the local runner starts them with its JOB_ID. */
function trainerProcesses(jobId: string): number[] {
  const marker = `JOB_ID=${jobId}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, "latin1").includes(marker)) pids.push(Number(entry));
    } catch {
      // Ended meanwhile, or not ours to read.
    }
  }
  return pids;
}

/** 54 examples (samples/messages.jsonl), 2 per step, 4 epochs. */
const TOTAL_STEPS = 108;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Pause and resume on the local platform, driven by the `openai` client: a LoRA job on `tiny-chat` is
 * paused while it trains → `paused`, the trainer wrote a checkpoint on SIGTERM and its process is gone;
 * resumed → `queued` → `running` → `succeeded`, and the new run's steps continue from the checkpoint.
 */
describe("pause and resume (local platform)", () => {
  let client: OpenAI;

  beforeAll(async () => {
    const { documents } = localClients();
    const admin = new TenantAdmin(new ApiKeysRepository(documents, inject("apiKeysTable")));
    const apiKey = (await admin.createTenant("pause resume")).apiKey;
    client = new OpenAI({ baseURL: inject("platformBaseUrl"), apiKey, maxRetries: 0 });
  });

  /** Every event of the job so far, oldest first. */
  async function events(jobId: string): Promise<Event[]> {
    const all: Event[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await client.fineTuning.jobs.listEvents(jobId, {
        limit: 100,
        ...(after ? { after } : {}),
      });
      all.push(...(page.data as Event[]));
      if (!page.has_more || page.data.length === 0) return all.reverse();
      after = page.data.at(-1)!.id;
    }
  }

  const stepOf = (event: Event) => (event.data as { step?: number } | null)?.step;

  async function until<T>(what: string, check: () => Promise<T | undefined>, seconds = 300): Promise<T> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(300);
    }
  }

  it("pauses a training job with a checkpoint, resumes it from that step, and it succeeds", async () => {
    const file = await client.files.create({
      file: createReadStream(join(ROOT, "samples", "messages.jsonl")),
      purpose: "fine-tune",
    });
    await until("the file to be processed", async () => {
      const current = await client.files.retrieve(file.id);
      expect(current.status).not.toBe("error");
      return current.status === "processed" ? current : undefined;
    });
    // 54 examples, 2 per step, 4 epochs: 108 steps, long enough to be caught while training.
    const job = await client.fineTuning.jobs.create({
      model: "tiny-chat",
      training_file: file.id,
      method: { type: "lora", hyperparameters: { n_epochs: 4, batch_size: 2 } },
      model_code: "e2e-pause-resume",
      seed: 7,
    } as unknown as OpenAI.FineTuning.JobCreateParams);
    expect(job.status).toBe("queued");

    // Training: the trainer reports its first step (metrics events), then the pause.
    await until("the first metrics event", async () =>
      (await events(job.id)).find((e) => e.type === "metrics" && (stepOf(e) ?? 0) >= 1),
    );
    const paused = (await client.post(`/fine_tuning/jobs/${job.id}/pause`)) as Job;
    expect(paused.status).toBe("paused");

    // The trainer stopped after its current step, with a checkpoint of it, and its process ended.
    const stopped = await until("the trainer's stop message", async () =>
      (await events(job.id)).find((e) => /^Training stopped at step \d+ on request/.test(e.message)),
    );
    const checkpointStep = Number(/step (\d+)/.exec(stopped.message)![1]);
    expect(checkpointStep).toBeGreaterThan(0);
    expect(checkpointStep).toBeLessThan(TOTAL_STEPS);
    await until("the trainer process to end", async () =>
      trainerProcesses(job.id).length ? undefined : true,
    );
    const checkpoints = await client.fineTuning.jobs.checkpoints.list(job.id);
    expect(checkpoints.data.map((c) => c.step_number)).toContain(checkpointStep);
    // The terminated run's FAILED is delivered after its process ends; the job stays paused.
    for (let i = 0; i < 5; i++) {
      expect(((await client.fineTuning.jobs.retrieve(job.id)) as Job).status).toBe("paused");
      await sleep(400);
    }
    const before = await events(job.id);
    const stepsBefore = before.filter((e) => e.type === "metrics").map(stepOf);
    expect(Math.max(...(stepsBefore as number[]))).toBeLessThanOrEqual(checkpointStep);
    await expect(client.post(`/fine_tuning/jobs/${job.id}/pause`)).resolves.toMatchObject({
      status: "paused",
    });

    // Resumed: queued, then a new run that continues from the checkpoint to the end.
    const resumed = (await client.post(`/fine_tuning/jobs/${job.id}/resume`)) as Job;
    expect(resumed.status).toBe("queued");
    const seenStatuses = new Set<string>();
    const done = await until("the resumed job to finish", async () => {
      const current = (await client.fineTuning.jobs.retrieve(job.id)) as Job;
      seenStatuses.add(current.status);
      return ["succeeded", "failed", "cancelled"].includes(current.status) ? current : undefined;
    });
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(seenStatuses.has("running")).toBe(true);

    const seen = new Set(before.map((e) => e.id));
    const after = (await events(job.id)).filter((e) => !seen.has(e.id));
    expect(after.map((e) => e.message)).toContain(`Resumed from checkpoint at step ${checkpointStep}`);
    const stepsAfter = after.filter((e) => e.type === "metrics").map(stepOf) as number[];
    // No restart at step 1: the first step the new run reports is the one after the checkpoint.
    expect(stepsAfter[0]).toBe(checkpointStep + 1);
    expect(Math.min(...stepsAfter)).toBe(checkpointStep + 1);
    expect(Math.max(...stepsAfter)).toBe(TOTAL_STEPS);
    await expect(client.post(`/fine_tuning/jobs/${job.id}/pause`)).rejects.toMatchObject({
      status: 409,
      code: "job_not_pausable",
    });
  });
});
