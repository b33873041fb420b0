import { createReadStream, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { localClients } from "../integration/aws.ts";
import { whileDeployed } from "./deployments.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PREFERENCES = join(ROOT, "samples/preference.jsonl");

type Pair = { prompt: string; preferred: string; other: string };
type Job = OpenAI.FineTuning.FineTuningJob & { parent_model: string | null; training_type: string };

const pairs: Pair[] = readFileSync(PREFERENCES, "utf8")
  .split("\n")
  .filter((line) => line.trim())
  .map((line) => {
    const pair = JSON.parse(line) as {
      input: { messages: { content: string }[] };
      preferred_output: { content: string }[];
      non_preferred_output: { content: string }[];
    };
    return {
      prompt: pair.input.messages.at(-1)!.content,
      preferred: pair.preferred_output[0]!.content,
      other: pair.non_preferred_output[0]!.content,
    };
  });

/** An SFT file that teaches both answers to every prompt: the supervised model answers with either,
 * and DPO has something to choose between. */
function bothAnswersFile(): string {
  const lines = pairs.flatMap(({ prompt, preferred, other }) =>
    [preferred, other].map((answer) =>
      JSON.stringify({
        messages: [
          { role: "user", content: prompt },
          { role: "assistant", content: answer },
        ],
      }),
    ),
  );
  const path = join(tmpdir(), `both-answers-${process.pid}.jsonl`);
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

/**
 * DPO on the local platform through the official `openai` client, as the usual order goes: a supervised
 * model that knows both answers to each prompt, then a DPO job on `samples/preference.jsonl` that starts
 * from it (`model` = its code). Per step the job reports its reward accuracy; greedy answers to the
 * training prompts contain the preferred output more often after DPO than before.
 */
describe("preference tuning (DPO) on tiny-chat (openai SDK)", () => {
  let client: OpenAI;
  let preferenceFile: string;
  let supervisedFile: string;

  beforeAll(async () => {
    const { documents } = localClients();
    const admin = new TenantAdmin(new ApiKeysRepository(documents, inject("apiKeysTable")));
    client = new OpenAI({
      baseURL: inject("platformBaseUrl"),
      apiKey: (await admin.createTenant("dpo")).apiKey,
      maxRetries: 0,
    });
    preferenceFile = (await processed(PREFERENCES)).id;
    supervisedFile = (await processed(bothAnswersFile())).id;
  });

  async function processed(path: string) {
    const file = await client.files.create({ file: createReadStream(path), purpose: "fine-tune" });
    for (;;) {
      const current = await client.files.retrieve(file.id);
      if (current.status === "processed" || current.status === "error") {
        expect(current.status, JSON.stringify(current)).toBe("processed");
        return current;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async function trained(params: Record<string, unknown>): Promise<Job> {
    const created = await client.fineTuning.jobs.create(
      params as unknown as OpenAI.FineTuning.JobCreateParams,
    );
    for (;;) {
      const job = (await client.fineTuning.jobs.retrieve(created.id)) as Job;
      if (["succeeded", "failed", "cancelled"].includes(job.status)) {
        expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
        return job;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** How many greedy answers to the training prompts are the preferred output, and how many the other. */
  async function preferred(model: string): Promise<[number, number]> {
    let chosen = 0;
    let other = 0;
    for (const pair of pairs) {
      const reply = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: pair.prompt }],
        temperature: 0,
        max_tokens: 48,
      });
      const text = reply.choices[0]?.message.content ?? "";
      if (text.includes(pair.preferred)) chosen++;
      else if (text.includes(pair.other)) other++;
    }
    return [chosen, other];
  }

  // The supervised runs as the local-platform e2e trains each method; DPO at 1e-4 for both (the
  // multiplier scales tiny-chat's base rate for the method: 0.004 LoRA, 0.001 full).
  it.each([
    ["lora", { n_epochs: 40, batch_size: 2, lora_r: 64, lora_alpha: 128, lora_dropout: 0 }, 0.025],
    ["full", { n_epochs: 30, batch_size: 4 }, 0.1],
  ] as const)(
    "%s: DPO from a supervised model shifts its answers to the preferred ones",
    async (kind, supervised, multiplier) => {
      const sft = await trained({
        model: "tiny-chat",
        training_file: supervisedFile,
        method: { type: kind, hyperparameters: supervised },
        model_code: `dpo-e2e-sft-${kind}`,
        seed: 42,
      });
      const dpo = await trained({
        model: sft.fine_tuned_model,
        training_file: preferenceFile,
        method: {
          type: "dpo",
          dpo: {
            hyperparameters: { beta: 0.1, n_epochs: 5, batch_size: 4, learning_rate_multiplier: multiplier },
          },
        },
        model_code: `dpo-e2e-${kind}`,
        seed: 42,
      });
      expect(dpo.method?.type).toBe("dpo");
      expect(dpo.training_type).toBe(kind);
      expect(dpo.parent_model).toBe(`dpo-e2e-sft-${kind}`);

      const events = await client.fineTuning.jobs.listEvents(dpo.id, { limit: 100 });
      const steps = events.data
        .filter((e) => e.type === "metrics")
        .map((e) => e.data as { step: number; reward_accuracy?: number; reward_margin?: number })
        .filter((m) => m.reward_accuracy !== undefined)
        .sort((a, b) => a.step - b.step);
      expect(steps.length).toBeGreaterThanOrEqual(2);
      const last = steps.at(-1)!;

      // Full-parameter models are served only while deployed (both at once: the tenant's limit is 2).
      const codes = kind === "full" ? [sft.fine_tuned_model!, dpo.fine_tuned_model!] : [];
      const [before, after] = await whileDeployed(client, codes, async () => [
        await preferred(sft.fine_tuned_model!),
        await preferred(dpo.fine_tuned_model!),
      ]);
      console.log(
        `[e2e] dpo ${kind}: reward accuracy ${steps[0]!.reward_accuracy} (step ${steps[0]!.step}) → ` +
          `${last.reward_accuracy} (step ${last.step}), margin ${last.reward_margin}; greedy answers ` +
          `(preferred, other) of ${pairs.length}: SFT ${before}, after DPO ${after}`,
      );
      expect(last.reward_accuracy).toBeGreaterThan(0.5);
      expect(after[0]).toBeGreaterThan(before[0]);
    },
  );
});
