import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import added from "../../contract/fixtures/added-model.json" with { type: "json" };
import { buildCatalog, findBaseModel } from "../../lambdas/core/catalog/base-models.ts";
import { parseCreateJobRequest, planJob } from "../../lambdas/core/jobs/create-request.ts";
import { trainerEnvironment } from "../../lambdas/core/jobs/dispatch.ts";
import type { JobRecord } from "../../lambdas/core/jobs/wire.ts";
import { TRAINER_PYTHON } from "../../local/platform/inference-server.ts";

// Across the language boundary: the environment the dispatcher builds for a job on a base model that an
// override added (contract/fixtures/added-model.json) is read by the trainer's own configuration code, in
// the trainer's environment (batch-images/trainer/.venv, which the README's test command sets up first).
const NAME = "fixture-glm-2b";
const catalog = buildCatalog({ models: added.models });

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

function environmentFor(hyperparameters: Record<string, unknown>): Record<string, string> {
  const request = parseCreateJobRequest({
    model: NAME,
    training_file: "file-001k892a2fse5r8e5481r",
    method: { type: "lora", hyperparameters },
  });
  const plan = planJob(request, {
    jobId: "ftjob-001k892a2fse5r8e5481r",
    dataset: { examples: 400 },
    catalog,
  });
  const job = {
    tenantId: "tn_a",
    jobId: "ftjob-001k892a2fse5r8e5481r",
    model: NAME,
    trainingFile: "file-001k892a2fse5r8e5481r",
    validationFile: null,
    method: plan.method,
    hyperparameters: plan.hyperparameters,
    resources: plan.resources,
  } as unknown as JobRecord;
  return trainerEnvironment(job, findBaseModel(NAME, catalog)!, {
    datasetsBucket: "ds",
    artifactsBucket: "art",
    jobsTable: "jobs",
    eventsTable: "events",
  });
}

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
