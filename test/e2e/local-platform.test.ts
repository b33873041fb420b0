import { createReadStream, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { localClients } from "../integration/aws.ts";
import { type DeploymentObject, deploy, undeploy } from "./deployments.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const sample = (name: string) => join(ROOT, "samples", name);

type Turn = { role: "system" | "user" | "assistant"; content: string };
type UsageRow = {
  date: string;
  model: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
};

/** Every example of a sample file as (the conversation before the answer, the answer it was trained on). */
function examples(name: string): { context: Turn[]; answer: string }[] {
  return readFileSync(sample(name), "utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => {
      const example = JSON.parse(line) as { messages?: Turn[]; input?: string; target?: string };
      if (example.input !== undefined) {
        return { context: [{ role: "user", content: example.input }], answer: example.target! };
      }
      const turns = example.messages!;
      return { context: turns.slice(0, -1), answer: turns.at(-1)!.content };
    });
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
 * by the real trainer → the full model deployed (409 `model_not_deployed` before and after) → streamed
 * chat with the model codes returns the trained answers, billed in the tenant's usage; a second tenant
 * can neither see, deploy nor call them; a malformed file ends `error` with its line numbers.
 */
describe("the local platform end to end (openai SDK)", () => {
  let a: OpenAI;
  let b: OpenAI;

  beforeAll(async () => {
    // The e2e suite's one platform (platform-setup.ts); this file's own tenants.
    const { documents } = localClients();
    const admin = new TenantAdmin(new ApiKeysRepository(documents, inject("apiKeysTable")));
    const baseURL = inject("platformBaseUrl");
    a = new OpenAI({ baseURL, apiKey: (await admin.createTenant("app a")).apiKey, maxRetries: 0 });
    b = new OpenAI({ baseURL, apiKey: (await admin.createTenant("app b")).apiKey, maxRetries: 0 });
  });

  afterAll(() => {
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

  async function trainAndChat(kind: "lora" | "full", dataset: string, code: string, minimumExact: number) {
    const file = await phase(`${kind}: upload + validate ${dataset}`, () => uploaded(dataset));
    expect(file.status).toBe("processed");
    const hyperparameters =
      kind === "lora"
        ? // A wide adapter on all projections: the tiny model has 2.4 M parameters, and the answers are
          // free text to be recalled byte for byte (52–54 of 54 exact across seeds, measured).
          { n_epochs: 50, batch_size: 2, lora_r: 64, lora_alpha: 128, lora_dropout: 0 }
        : { n_epochs: 30, batch_size: 4 };
    // `lora`/`full` and `model_code` are this platform's extensions of the create body.
    const job = await a.fineTuning.jobs.create({
      model: "tiny-chat",
      training_file: file.id,
      method: { type: kind, hyperparameters },
      model_code: code,
      // A fixed seed makes the CPU run repeatable (the trainer's own tests check that).
      seed: 42,
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

    if (kind === "full") {
      // A full-parameter model is new weights with a server of its own: none until it is deployed.
      const hi = [{ role: "user" as const, content: "hi" }];
      await expect(a.chat.completions.create({ model: code, messages: hi })).rejects.toMatchObject({
        status: 409,
        code: "model_not_deployed",
      });
      await expect(b.post(`/models/${code}/deploy`)).rejects.toMatchObject({ status: 404 });
      const seen = await phase("full: deploy", () => deploy(a, code));
      expect(seen).toEqual(["deploying", "deployed"]);
      const model = (await a.models.retrieve(code)) as OpenAI.Models.Model & {
        deployment?: DeploymentObject;
      };
      expect(model.deployment).toMatchObject({ status: "deployed", tensor_parallel_size: 1 });
      expect(model.deployment?.deployed_at).toBeGreaterThan(0);
    }

    // Greedy, streamed, every training prompt: how many come back exactly as trained, against the base
    // model (which knows none of these invented facts) as the control.
    const ask = async (model: string) => {
      const replies: string[] = [];
      for (const { context } of examples(dataset)) {
        const stream = await a.chat.completions.create({
          model,
          messages: context,
          stream: true,
          temperature: 0,
          max_tokens: 48,
          stream_options: { include_usage: true },
        });
        let text = "";
        for await (const chunk of stream) {
          if (chunk.choices.length) expect(chunk.model).toBe(model);
          text += chunk.choices[0]?.delta?.content ?? "";
        }
        replies.push(text.trim());
      }
      return replies;
    };
    const answers = examples(dataset).map((example) => example.answer);
    const exact = (replies: string[]) => replies.filter((reply, i) => reply === answers[i]).length;
    const trained = await phase(
      `${kind}: streamed chat with ${code} on ${answers.length} training prompts`,
      () => ask(code),
    );
    const base = await phase(`${kind}: the same prompts to the base model`, () => ask("tiny-chat"));
    const changed = trained.filter((reply, i) => reply !== base[i]).length;
    console.log(
      `[e2e] ${kind}: ${exact(trained)}/${answers.length} trained answers exact, ${changed} replies differ ` +
        `from the base model's (base model: ${exact(base)} exact)`,
    );
    expect(exact(base)).toBe(0);
    // The trained weights are what answers: the adapter or the full weights were loaded and applied.
    expect(changed).toBeGreaterThan(answers.length / 2);
    expect(exact(trained)).toBeGreaterThanOrEqual(minimumExact);

    // Every chat's tokens are billed to the tenant, per day and model.
    const today = new Date().toISOString().slice(0, 10);
    const usage = await a.get<{ data: UsageRow[] }>(`/usage?start=${today}&end=${today}`);
    const row = usage.data.find((r) => r.model === code);
    expect(row?.requests).toBe(answers.length);
    expect(row?.prompt_tokens).toBeGreaterThan(0);
    expect(row?.total_tokens).toBe((row?.prompt_tokens ?? 0) + (row?.completion_tokens ?? 0));
    const other = await b.get<{ data: UsageRow[] }>(`/usage?start=${today}&end=${today}`);
    expect(other.data.map((r) => r.model)).not.toContain(code);

    if (kind === "full") {
      const undeployed = await undeploy(a, code);
      expect(undeployed.deployment?.status).toBe("undeployed");
      await expect(
        a.chat.completions.create({ model: code, messages: [{ role: "user", content: "hi" }] }),
      ).rejects.toMatchObject({ status: 409, code: "model_not_deployed" });
    }
  }

  it("trains a LoRA adapter on the messages sample; chat by its model code returns the trained answers", async () => {
    await trainAndChat("lora", "messages.jsonl", "e2e-lora-zorbia", 45);
  });

  it("trains full parameters on the legacy sample; deployed, chat by its model code returns the trained answers", async () => {
    await trainAndChat("full", "legacy.jsonl", "e2e-full-ketch", 40);
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
