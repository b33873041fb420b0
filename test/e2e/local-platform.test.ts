import { createReadStream, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import {
  ensureTinyModel,
  type InferenceServer,
  startInferenceServer,
} from "../../local/platform/inference-server.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { localClients, uniquePrefix } from "../integration/aws.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const sample = (name: string) => join(ROOT, "samples", name);

/** The first example of a sample file: its prompt and the answer training should make the model give. */
function firstExample(name: string): { prompt: string; answer: string } {
  const first = JSON.parse(readFileSync(sample(name), "utf8").split("\n")[0]!) as {
    messages?: { role: string; content: string }[];
    input?: string;
    target?: string;
  };
  if (first.input !== undefined) return { prompt: first.input, answer: first.target! };
  const turns = first.messages!;
  return { prompt: turns.at(-2)!.content, answer: turns.at(-1)!.content };
}

const phases: [string, number][] = [];
async function phase<T>(name: string, run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await run();
  } finally {
    const seconds = (performance.now() - start) / 1000;
    phases.push([name, seconds]);
    console.log(`[e2e] ${name}: ${seconds.toFixed(1)} s`);
  }
}

/**
 * The whole local platform, driven only by the official `openai` npm client, as a tenant app would:
 * upload the shipped samples → validated → LoRA and full-parameter jobs on `tiny-chat` trained on CPU
 * by the real trainer → streamed chat with the model codes returns the trained answers; a second tenant
 * can neither see nor call them; a malformed file ends `error` with its line numbers.
 */
describe("the local platform end to end (openai SDK)", () => {
  let platform: LocalPlatform;
  let inference: InferenceServer;
  let a: OpenAI;
  let b: OpenAI;

  beforeAll(async () => {
    const { documents } = localClients();
    await phase("start (tiny model, inference server, platform)", async () => {
      const baseModelsDir = join(ROOT, ".cache/base-models");
      ensureTinyModel(baseModelsDir);
      const prefix = uniquePrefix("e2e");
      inference = await startInferenceServer({
        baseModelsDir,
        cacheDir: join(ROOT, ".cache/e2e", prefix, "inference"),
        logFile: join(ROOT, ".cache/e2e", prefix, "inference.log"),
      });
      platform = await startPlatform({ prefix, port: 0, baseModelsDir, inferenceUrl: inference.url });
    });
    const admin = new TenantAdmin(new ApiKeysRepository(documents, platform.resources.tables["api-keys"]));
    a = new OpenAI({
      baseURL: platform.baseUrl,
      apiKey: (await admin.createTenant("app a")).apiKey,
      maxRetries: 0,
    });
    b = new OpenAI({
      baseURL: platform.baseUrl,
      apiKey: (await admin.createTenant("app b")).apiKey,
      maxRetries: 0,
    });
  });

  afterAll(async () => {
    await platform?.stop();
    await inference?.stop();
    console.log(
      `[e2e] phases:\n${phases.map(([name, s]) => `  ${s.toFixed(1).padStart(7)} s  ${name}`).join("\n")}`,
    );
  });

  async function uploaded(name: string) {
    const file = await a.files.create({ file: createReadStream(sample(name)), purpose: "fine-tune" });
    for (;;) {
      const current = (await a.files.retrieve(file.id)) as OpenAI.FileObject & { validation?: unknown };
      if (current.status === "processed" || current.status === "error") return current;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async function trainAndChat(kind: "lora" | "full", dataset: string, code: string) {
    const file = await phase(`${kind}: upload + validate ${dataset}`, () => uploaded(dataset));
    expect(file.status).toBe("processed");
    const hyperparameters =
      kind === "lora"
        ? { n_epochs: 30, batch_size: 4, lora_r: 64, lora_alpha: 128, lora_dropout: 0 }
        : { n_epochs: 30, batch_size: 4 };
    // `lora`/`full` and `model_code` are this platform's extensions of the create body.
    const job = await a.fineTuning.jobs.create({
      model: "tiny-chat",
      training_file: file.id,
      method: { type: kind, hyperparameters },
      model_code: code,
    } as unknown as OpenAI.FineTuning.JobCreateParams);
    expect(job.status).toBe("queued");

    const done = await phase(`${kind}: train on CPU to succeeded`, async () => {
      const seen = new Set<string>();
      for (;;) {
        const events = await a.fineTuning.jobs.listEvents(job.id, { limit: 100 });
        for (const event of [...events.data].reverse()) {
          if (seen.has(event.id)) continue;
          seen.add(event.id);
          if (event.type === "message") console.log(`[e2e] ${kind} event: ${event.message}`);
        }
        const current = await a.fineTuning.jobs.retrieve(job.id);
        if (["succeeded", "failed", "cancelled"].includes(current.status)) return current;
        await new Promise((r) => setTimeout(r, 1000));
      }
    });
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.fine_tuned_model).toBe(code);

    const { prompt, answer } = firstExample(dataset);
    const reply = await phase(`${kind}: streamed chat with ${code}`, async () => {
      const stream = await a.chat.completions.create({
        model: code,
        messages: [{ role: "user", content: prompt }],
        stream: true,
        temperature: 0,
        max_tokens: 64,
        stream_options: { include_usage: true },
      });
      let text = "";
      let chunks = 0;
      for await (const chunk of stream) {
        if (chunk.choices.length) expect(chunk.model).toBe(code);
        text += chunk.choices[0]?.delta?.content ?? "";
        chunks++;
      }
      return { text, chunks };
    });
    expect(reply.text.trim()).toBe(answer);
    expect(reply.chunks).toBeGreaterThan(2);
  }

  it("trains a LoRA adapter on the messages sample and chats with it by its model code", async () => {
    await trainAndChat("lora", "messages.jsonl", "e2e-lora-zorbia");
  });

  it("trains full parameters on the legacy sample and chats with it by its model code", async () => {
    await trainAndChat("full", "legacy.jsonl", "e2e-full-ketch");
  });

  it("keeps a tenant's model from another tenant: not listed, not readable, not callable", async () => {
    const listed = await b.models.list();
    expect(listed.data.map((m) => m.id)).not.toContain("e2e-lora-zorbia");
    await expect(b.models.retrieve("e2e-lora-zorbia")).rejects.toMatchObject({ status: 404 });
    await expect(
      b.chat.completions.create({ model: "e2e-lora-zorbia", messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("ends a malformed file in error with the line numbers of its errors", async () => {
    const file = (await phase("malformed: upload + validate", () => uploaded("malformed.jsonl"))) as {
      status: string;
      validation?: { errors: { line: number; code: string }[] };
    };
    expect(file.status).toBe("error");
    expect(file.validation?.errors.map((e) => e.line)).toEqual([4, 7, 11, 14]);
  });
});
