import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { TRAINER_PYTHON } from "../../local/platform/inference-server.ts";
import { ADDED_MODEL, catalogWithAddedModel, plannedJob } from "../fixtures/catalog.ts";

// Across the language boundary: the environment the dispatcher builds for a job on a base model that an
// override added (contract/fixtures/added-model.json) is read by the trainer's own configuration code, in
// the trainer's environment (batch-images/trainer/.venv, which the README's test command sets up first).
const catalog = catalogWithAddedModel();

function trainerView(env: Record<string, string>): Record<string, unknown> {
  const script = [
    "import json",
    "from ft_trainer.config import CATALOG, ConfigError, from_environment",
    "try:",
    "    c = from_environment()",
    "    print(json.dumps({'family': c.family, 'lr': c.hyperparameters.learning_rate_for(c.method),",
    "        'max_seq_length': c.hyperparameters.max_seq_length, 'limit': c.base_model.max_seq_length,",
    "        'lora_targets': CATALOG.lora_targets(c.family)}))",
    "except ConfigError as error:",
    "    print(json.dumps({'error': str(error)}))",
  ].join("\n");
  const out = execFileSync(TRAINER_PYTHON, ["-c", script], { env: { PATH: process.env.PATH ?? "", ...env } });
  return JSON.parse(out.toString()) as Record<string, unknown>;
}

const environmentFor = (hyperparameters: Record<string, unknown>) =>
  plannedJob(catalog, { model: ADDED_MODEL, method: { type: "lora", hyperparameters } }).env;

describe("a base model added by an override, as the trainer sees it", () => {
  it("trains with the entry's family, LoRA targets, base learning rate and limit", () => {
    const view = trainerView(environmentFor({ learning_rate_multiplier: 2, max_seq_length: 3072 }));
    expect(view).toEqual({
      family: "glm4",
      lr: expect.closeTo(0.001, 12),
      max_seq_length: 3072,
      limit: 3072,
      lora_targets: "all-linear",
    });
  });

  it("refuses what the entry does not allow, with the trainer's own message", () => {
    const env = environmentFor({});
    const spec = JSON.parse(env.BASE_MODEL_SPEC!);
    const view = trainerView({ ...env, BASE_MODEL_SPEC: JSON.stringify({ ...spec, maxSeqLength: 256 }) });
    expect(view.error).toMatch(/max_seq_length may be at most 256/);
  });
});
