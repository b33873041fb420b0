import { createReadStream, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { localClients } from "../integration/aws.ts";
import { whileDeployed } from "./deployments.ts";

const SAMPLE = fileURLToPath(new URL("../../samples/bilingual-qa.jsonl", import.meta.url));

type Turn = { role: "system" | "user" | "assistant"; content: string };

/** The sample's questions (the conversation before the answer) and the answers they were trained on. */
const examples = readFileSync(SAMPLE, "utf8")
  .split("\n")
  .filter((line) => line.trim())
  .map((line) => {
    const turns = (JSON.parse(line) as { messages: Turn[] }).messages;
    return { context: turns.slice(0, -1), answer: turns.at(-1)!.content };
  });

/**
 * `tiny-chat` learns Chinese as well as English with the platform's defaults: samples/bilingual-qa.jsonl
 * (half Chinese, half English questions with invented answers), LoRA and full-parameter jobs that set
 * only `n_epochs`, everything else `auto`; asked each question greedily by the model code, each model
 * answers at least three quarters of them. The same check without the platform, with the hyperparameters
 * `auto` resolves to, is batch-images/trainer/tests/test_bilingual.py.
 */
describe("tiny-chat learns Chinese and English with auto hyperparameters (openai SDK)", () => {
  let client: OpenAI;

  beforeAll(async () => {
    const { documents } = localClients();
    const admin = new TenantAdmin(new ApiKeysRepository(documents, inject("apiKeysTable")));
    client = new OpenAI({
      baseURL: inject("platformBaseUrl"),
      apiKey: (await admin.createTenant("bilingual")).apiKey,
      maxRetries: 0,
    });
  });

  let fileId: Promise<string> | undefined;
  /** The sample, uploaded once for both jobs and validated. */
  function trainingFile(): Promise<string> {
    fileId ??= (async () => {
      const file = await client.files.create({ file: createReadStream(SAMPLE), purpose: "fine-tune" });
      for (;;) {
        const current = await client.files.retrieve(file.id);
        if (current.status === "processed" || current.status === "error") {
          expect(current.status).toBe("processed");
          return file.id;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    return fileId;
  }

  it.each(["lora", "full"] as const)(
    "%s with only n_epochs 40 set recalls at least three quarters of the Chinese and English answers",
    async (kind) => {
      const started = performance.now();
      const code = `e2e-bilingual-${kind}`;
      // `lora`/`full` and `model_code` are this platform's extensions of the create body.
      const created = await client.fineTuning.jobs.create({
        model: "tiny-chat",
        training_file: await trainingFile(),
        method: { type: kind, hyperparameters: { n_epochs: 40 } },
        model_code: code,
      } as unknown as OpenAI.FineTuning.JobCreateParams);
      let job = created;
      while (!["succeeded", "failed", "cancelled"].includes(job.status)) {
        await new Promise((r) => setTimeout(r, 1000));
        job = await client.fineTuning.jobs.retrieve(created.id);
      }
      expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
      const trained = (performance.now() - started) / 1000;

      let recalled = 0;
      const missed: string[] = [];
      // A full-parameter model is served only while deployed; a LoRA model on its base's server.
      await whileDeployed(client, kind === "full" ? [code] : [], async () => {
        for (const { context, answer } of examples) {
          const reply = await client.chat.completions.create({
            model: code,
            messages: context,
            temperature: 0,
            max_tokens: 48,
          });
          const text = reply.choices[0]?.message.content ?? "";
          if (text.includes(answer)) recalled += 1;
          else missed.push(`${answer} → ${text}`);
        }
      });
      const recall = recalled / examples.length;
      console.log(
        `[e2e] bilingual ${kind}: recall ${(recall * 100).toFixed(0)}% (${recalled}/${examples.length}) ` +
          `with ${JSON.stringify(job.hyperparameters)}, job done in ${trained.toFixed(0)} s` +
          (missed.length ? `; missed: ${missed.join(" | ")}` : ""),
      );
      expect(recall).toBeGreaterThanOrEqual(0.75);
    },
  );
});
