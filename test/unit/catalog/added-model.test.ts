import { describe, expect, it } from "vitest";
import added from "../../../contract/fixtures/added-model.json" with { type: "json" };
import { CONFIG_ENV } from "../../../infra/resources/definitions.ts";
import { chatDependenciesFromEnv } from "../../../lambdas/chat/service.ts";
import {
  catalogFromEnv,
  findBaseModel,
  listBaseModels,
  toBaseModelObject,
} from "../../../lambdas/core/catalog/base-models.ts";
import { resolveModel, upstreamTarget } from "../../../lambdas/core/chat/models.ts";
import { parseCreateJobRequest, planJob } from "../../../lambdas/core/jobs/create-request.ts";
import type { ModelRecord } from "../../../lambdas/core/jobs/wire.ts";
import { ADDED_MODEL, catalogWithAddedModel, plannedJob } from "../../fixtures/catalog.ts";

// A base model added through an override (contract/fixtures/added-model.json) reaches every TypeScript
// consumer (API, model list, dispatcher, chat); batch-images/trainer/tests/test_config.py and test/integration/catalog-reach.test.ts take the
// same entry through the trainer, test/unit/validator/dependencies.test.ts through the validator.
const catalog = catalogWithAddedModel();
const JOB = "ftjob-001k892a2fse5r8e5481r";
const FILE = "file-001k892a2fse5r8e5481r";

describe("a base model added by an override", () => {
  it("is listed by GET /v4/models with its facts", () => {
    const model = findBaseModel(ADDED_MODEL, catalog)!;
    expect(listBaseModels(catalog).map((m) => m.name)).toContain(ADDED_MODEL);
    expect(toBaseModelObject(model)).toMatchObject({
      id: ADDED_MODEL,
      family: "glm4",
      fine_tuning_methods: ["lora"],
      max_seq_length: 3072,
      owned_by: "fixture",
    });
    expect(model.weightsPrefix).toBe(`base-models/${ADDED_MODEL}/`);
  });

  it("is accepted by the jobs API with its own limits", () => {
    expect(plannedJob(catalog, { model: ADDED_MODEL }).plan).toMatchObject({
      method: "lora",
      hyperparameters: { max_seq_length: 1024 },
    });
    const tooLong = {
      model: ADDED_MODEL,
      method: { type: "lora", hyperparameters: { max_seq_length: 4096 } },
    };
    expect(() => plannedJob(catalog, tooLong)).toThrow(/at most 3072/);
    expect(() => plannedJob(catalog, { model: ADDED_MODEL, method: { type: "full" } })).toThrow(
      /allowed: lora/,
    );
  });

  it("is unknown without the override", () => {
    const request = parseCreateJobRequest({ model: ADDED_MODEL, training_file: FILE });
    expect(() => planJob(request, { jobId: JOB, dataset: { examples: 200 } })).toThrow(/not a base model/);
  });

  it("reaches the handlers through the environment variable, as CDK and the local platform set it", () => {
    const fromEnv = catalogFromEnv(JSON.stringify({ models: added.models }));
    expect(findBaseModel(ADDED_MODEL, fromEnv)).toEqual(findBaseModel(ADDED_MODEL, catalog));
  });

  it("travels to the trainer as BASE_MODEL_SPEC, with its family and its own base learning rate", () => {
    const { env } = plannedJob(catalog, { model: ADDED_MODEL });
    expect(env.BASE_MODEL_URI).toBe(`s3://art/base-models/${ADDED_MODEL}/`);
    expect(JSON.parse(env.BASE_MODEL_SPEC!)).toMatchObject({
      name: ADDED_MODEL,
      family: "glm4",
      maxSeqLength: 3072,
      methods: { lora: { baseLearningRate: 0.0005 } },
    });
  });
});

describe("a base model added by an override, in chat", () => {
  it("is served by name and its fine-tuned models carry it to the inference server", async () => {
    const chat = chatDependenciesFromEnv(
      async (): Promise<ModelRecord> => ({
        modelCode: "glm-bot",
        tenantId: "tn_a",
        jobId: JOB,
        baseModel: ADDED_MODEL,
        method: "lora",
        status: "ready",
        artifactUri: "s3://art/tenants/tn_a/jobs/j/adapter/",
        createdAt: 0,
      }),
      {
        [CONFIG_ENV.catalogOverride]: JSON.stringify({ models: added.models }),
        [CONFIG_ENV.inferenceEndpoints]: JSON.stringify({ "*": "http://inference:8000/v1" }),
      },
    );
    expect((await resolveModel(ADDED_MODEL, "tn_a", chat)).base.maxSeqLength).toBe(3072);
    const tuned = await resolveModel("glm-bot", "tn_a", chat);
    expect(upstreamTarget(tuned).headers).toMatchObject({ "x-ft-base-model": ADDED_MODEL });
    const without = chatDependenciesFromEnv(async () => undefined, {});
    await expect(resolveModel(ADDED_MODEL, "tn_a", without)).rejects.toThrow(/does not exist/);
  });
});
