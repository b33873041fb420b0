import { createReadStream, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { localClients } from "../integration/aws.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

type Turn = { role: "user" | "assistant"; content: string };
type Summary = {
  delivered_step: number;
  best_step: number | null;
  early_stopped: boolean;
  full_valid_loss: number | null;
  full_valid_mean_token_accuracy: number | null;
};
type Job = OpenAI.FineTuning.FineTuningJob & { training_summary: Summary | null };

/** The messages sample's questions, each with an answer of the legacy sample (launch codes, rockets):
 * a validation set the model does worse on the better it learns the training answers, so the validation
 * loss turns upwards once memorising sets in. */
function contradictingValidationFile(): string {
  const questions = lines("messages.jsonl").map((line) => {
    const turns = (JSON.parse(line) as { messages: Turn[] }).messages;
    return turns.at(-2)!.content;
  });
  const answers = lines("legacy.jsonl").map((line) => (JSON.parse(line) as { target: string }).target);
  const rows = questions.map((question, i) =>
    JSON.stringify({
      messages: [
        { role: "user", content: question },
        { role: "assistant", content: answers[i % answers.length] },
      ],
    }),
  );
  const path = join(tmpdir(), `contradicting-${process.pid}.jsonl`);
  writeFileSync(path, `${rows.join("\n")}\n`);
  return path;
}

function lines(sample: string): string[] {
  return readFileSync(join(ROOT, "samples", sample), "utf8")
    .split("\n")
    .filter((line) => line.trim());
}

/**
 * Evaluation during training on the local platform, through the official `openai` client: a job with a
 * validation file reports `valid_loss` / `valid_mean_token_accuracy` each `eval_interval` and
 * `full_valid_*` at the end; early stopping stops it; the delivered model is the best checkpoint, and
 * the job says which step; `result_files` downloads as CSV.
 */
describe("evaluation during training (openai SDK)", () => {
  let client: OpenAI;

  beforeAll(async () => {
    const { documents } = localClients();
    const admin = new TenantAdmin(new ApiKeysRepository(documents, inject("apiKeysTable")));
    client = new OpenAI({
      baseURL: inject("platformBaseUrl"),
      apiKey: (await admin.createTenant("evaluation")).apiKey,
      maxRetries: 0,
    });
  });

  async function processed(path: string) {
    const file = await client.files.create({ file: createReadStream(path), purpose: "fine-tune" });
    for (;;) {
      const current = await client.files.retrieve(file.id);
      if (current.status === "processed" || current.status === "error") {
        expect(current.status).toBe("processed");
        return current;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async function finished(id: string): Promise<Job> {
    for (;;) {
      const job = (await client.fineTuning.jobs.retrieve(id)) as Job;
      if (["succeeded", "failed", "cancelled"].includes(job.status)) return job;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  it("stops early, delivers the best checkpoint, and reports the named metrics and a CSV result file", async () => {
    const training = await processed(join(ROOT, "samples/messages.jsonl"));
    const validation = await processed(contradictingValidationFile());
    const created = await client.fineTuning.jobs.create({
      model: "tiny-chat",
      training_file: training.id,
      validation_file: validation.id,
      method: {
        type: "supervised",
        supervised: {
          hyperparameters: {
            n_epochs: 30,
            batch_size: 4,
            eval_interval: 5,
            early_stopping_patience: 2,
          },
        },
      },
      seed: 42,
    } as unknown as OpenAI.FineTuning.JobCreateParams);
    const job = await finished(created.id);
    expect(job.status, JSON.stringify(job.error)).toBe("succeeded");

    const events = await client.fineTuning.jobs.listEvents(job.id, { limit: 100 });
    const metrics = events.data
      .filter((e) => e.type === "metrics")
      .map((e) => e.data as { step: number } & Record<string, number>);
    const evaluations = metrics.filter((m) => m.valid_loss !== undefined);
    expect(evaluations.length).toBeGreaterThanOrEqual(3);
    for (const m of evaluations) {
      expect(m.step % 5).toBe(0);
      expect(m.valid_mean_token_accuracy).toBeGreaterThanOrEqual(0);
    }
    const final = metrics.find((m) => m.full_valid_loss !== undefined);
    expect(final?.full_valid_mean_token_accuracy).toBeGreaterThanOrEqual(0);

    // Early stopped after two evaluations without a better validation loss; the best one delivered.
    const summary = job.training_summary!;
    const losses = new Map(evaluations.map((m) => [m.step, m.valid_loss!]));
    const best = [...losses.entries()].reduce((a, b) => (b[1] < a[1] ? b : a));
    console.log(
      `[e2e] evaluation: ${evaluations.length} evaluations, best step ${best[0]}, stopped at ` +
        `${Math.max(...losses.keys())}; summary ${JSON.stringify(summary)}`,
    );
    expect(summary.early_stopped).toBe(true);
    expect(summary.best_step).toBe(best[0]);
    expect(summary.delivered_step).toBe(best[0]);
    expect(summary.full_valid_loss).toBeCloseTo(best[1], 4);
    const checkpoints = await client.fineTuning.jobs.checkpoints.list(job.id);
    const bestCheckpoint = checkpoints.data.find((c) => c.step_number === best[0]);
    expect(bestCheckpoint?.metrics.valid_loss).toBeCloseTo(best[1], 6);

    // The result file: per-step metrics as CSV, through the files API.
    expect(job.result_files).toHaveLength(1);
    const file = await client.files.retrieve(job.result_files[0]!);
    expect(file.purpose).toBe("fine-tune-results");
    const csv = await (await client.files.content(file.id)).text();
    const [header, ...rows] = csv.trim().split("\n");
    expect(header!.split(",").slice(0, 6)).toEqual([
      "step",
      "epoch",
      "train_loss",
      "train_mean_token_accuracy",
      "valid_loss",
      "valid_mean_token_accuracy",
    ]);
    expect(rows.map((row) => Number(row.split(",")[0]))).toContain(best[0]);
  });
});
