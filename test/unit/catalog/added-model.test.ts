import { describe, expect, it } from "vitest";
import added from "../../../contract/fixtures/added-model.json" with { type: "json" };
import {
  buildCatalog,
  catalogFromEnv,
  findBaseModel,
  listBaseModels,
  toBaseModelObject,
} from "../../../lambdas/core/catalog/base-models.ts";
import { parseCreateJobRequest, planJob } from "../../../lambdas/core/jobs/create-request.ts";
import { trainerEnvironment } from "../../../lambdas/core/jobs/dispatch.ts";
import type { JobRecord } from "../../../lambdas/core/jobs/wire.ts";

// A base model added through an override (contract/fixtures/added-model.json) reaches every TypeScript
// consumer; batch-images/trainer/tests/test_config.py and test/integration/catalog-reach.test.ts take the
// same entry through the trainer.
const override = { models: added.models };
const catalog = buildCatalog(override);
const NAME = "fixture-glm-2b";
const JOB = "ftjob-001k892a2fse5r8e5481r";

describe("a base model added by an override", () => {
  it("is listed by GET /v4/models with its facts", () => {
    const model = findBaseModel(NAME, catalog)!;
    expect(listBaseModels(catalog).map((m) => m.name)).toContain(NAME);
    expect(toBaseModelObject(model)).toMatchObject({
      id: NAME,
      family: "glm4",
      fine_tuning_methods: ["lora"],
      max_seq_length: 3072,
      owned_by: "fixture",
    });
    expect(model.weightsPrefix).toBe(`base-models/${NAME}/`);
  });

  it("is accepted by the jobs API with its own limits", () => {
    const request = parseCreateJobRequest({ model: NAME, training_file: "file-001k892a2fse5r8e5481r" });
    const plan = planJob(request, { jobId: JOB, dataset: { examples: 200, maxExampleTokens: 900 }, catalog });
    expect(plan.method).toBe("lora");
    expect(plan.hyperparameters.max_seq_length).toBe(1024);
    const tooLong = parseCreateJobRequest({
      model: NAME,
      training_file: "file-001k892a2fse5r8e5481r",
      method: { type: "lora", hyperparameters: { max_seq_length: 4096 } },
    });
    expect(() => planJob(tooLong, { jobId: JOB, dataset: { examples: 200 }, catalog })).toThrow(
      /at most 3072/,
    );
    const full = parseCreateJobRequest({
      model: NAME,
      training_file: "file-001k892a2fse5r8e5481r",
      method: { type: "full" },
    });
    expect(() => planJob(full, { jobId: JOB, dataset: { examples: 200 }, catalog })).toThrow(/allowed: lora/);
  });

  it("is unknown without the override", () => {
    const request = parseCreateJobRequest({ model: NAME, training_file: "file-001k892a2fse5r8e5481r" });
    expect(() => planJob(request, { jobId: JOB, dataset: { examples: 200 } })).toThrow(/not a base model/);
  });

  it("reaches the handlers through the environment variable, as CDK and the local platform set it", () => {
    expect(findBaseModel(NAME, catalogFromEnv(JSON.stringify(override)))).toEqual(
      findBaseModel(NAME, catalog),
    );
  });

  it("travels to the trainer as BASE_MODEL_SPEC, with its family and its own base learning rate", () => {
    const model = findBaseModel(NAME, catalog)!;
    const request = parseCreateJobRequest({ model: NAME, training_file: "file-001k892a2fse5r8e5481r" });
    const plan = planJob(request, { jobId: JOB, dataset: { examples: 200 }, catalog });
    const job = {
      tenantId: "tn_a",
      jobId: JOB,
      model: NAME,
      trainingFile: "file-001k892a2fse5r8e5481r",
      validationFile: null,
      method: plan.method,
      hyperparameters: plan.hyperparameters,
      resources: plan.resources,
    } as unknown as JobRecord;
    const env = trainerEnvironment(job, model, {
      datasetsBucket: "ds",
      artifactsBucket: "art",
      jobsTable: "jobs",
      eventsTable: "events",
    });
    expect(env.BASE_MODEL_URI).toBe(`s3://art/base-models/${NAME}/`);
    expect(JSON.parse(env.BASE_MODEL_SPEC!)).toMatchObject({
      name: NAME,
      family: "glm4",
      maxSeqLength: 3072,
      methods: { lora: { baseLearningRate: 0.0005 } },
    });
  });
});
