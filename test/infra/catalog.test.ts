import { describe, expect, it } from "vitest";
import { CONFIG_ENV } from "../../infra/resources/definitions.ts";
import {
  buildCatalog,
  type CatalogOverride,
  contextLimits,
  DEFAULT_CATALOG,
  findBaseModel,
} from "../../lambdas/core/catalog/base-models.ts";
import { synthPlatform } from "./synth.ts";

/** An operator's override: a new model with its weights outside `base-models/`, and a longer context. */
const OVERRIDE: CatalogOverride = {
  models: {
    "acme-13b": {
      family: "chatml",
      methods: {
        lora: { gpus: 1, minGpuMemoryGiB: 48, instanceType: "g6e.2xlarge", pricePer1kTokensUsd: 0.002 },
      },
      weightsPrefix: "shared/acme-13b/",
      maxSeqLength: 4096,
      parameters: 13_000_000_000,
      ownedBy: "acme",
    },
    "qwen2.5-7b-instruct": { maxSeqLength: 16_384 },
  },
};

const ECR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-inference:1";

type Synthesized = ReturnType<typeof synthPlatform>;
type Statement = { Action: string | string[]; Resource: unknown };

function functionEnv({ template }: Synthesized, prefix: string): Record<string, unknown> {
  const found = Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) =>
    id.startsWith(prefix),
  );
  expect(found, prefix).toBeDefined();
  return found![1].Properties.Environment.Variables;
}

/** The catalog a function builds from its environment, as `catalogFromEnv` does at cold start. */
function catalogOf(synthesized: Synthesized, prefix: string) {
  const override = functionEnv(synthesized, prefix)[CONFIG_ENV.catalogOverride];
  return buildCatalog(override === undefined ? undefined : JSON.parse(override as string));
}

function statementsOf({ template }: Synthesized, prefix: string): Statement[] {
  return Object.entries(template.findResources("AWS::IAM::Policy"))
    .filter(([id]) => id.startsWith(prefix))
    .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Statement[]);
}

describe("the base-model catalog override", () => {
  const synthesized = synthPlatform({
    env: { account: "123456789012", region: "us-east-1" },
    catalogOverride: OVERRIDE,
    inference: { servers: ["acme-13b", "qwen2.5-7b-instruct"], imageUri: ECR_IMAGE },
  });

  it("reaches the jobs API: the new model can be trained", () => {
    const catalog = catalogOf(synthesized, "ApiJobsApi");
    expect(findBaseModel("acme-13b", catalog)?.methods.lora?.instanceType).toBe("g6e.2xlarge");
  });

  it("reaches chat: the new model is a base model a request may name", () => {
    expect(findBaseModel("acme-13b", catalogOf(synthesized, "ChatChatFunction"))?.family).toBe("chatml");
  });

  it("reaches the dispatcher: the trainer gets the new model's weights location", () => {
    expect(findBaseModel("acme-13b", catalogOf(synthesized, "TrainingDispatcher"))?.weightsPrefix).toBe(
      "shared/acme-13b/",
    );
  });

  it("reaches the validator: its context limits follow the override", () => {
    const limits = contextLimits(catalogOf(synthesized, "ValidationValidator"));
    expect(limits["qwen2.5-7b-instruct"]).toBe(16_384);
    expect(limits["acme-13b"]).toBe(4096);
    expect(functionEnv(synthesized, "ValidationValidator").CONTEXT_LIMITS).toBeUndefined();
  });

  it("is passed as given, and only to the functions that read the catalog", () => {
    for (const prefix of ["ApiJobsApi", "ChatChatFunction", "TrainingDispatcher", "ValidationValidator"]) {
      expect(JSON.parse(functionEnv(synthesized, prefix)[CONFIG_ENV.catalogOverride] as string)).toEqual(
        OVERRIDE,
      );
    }
    for (const prefix of ["ApiAuthorizer", "ApiFilesApi", "TrainingJobStatus"]) {
      expect(functionEnv(synthesized, prefix)[CONFIG_ENV.catalogOverride]).toBeUndefined();
    }
  });

  it("gives each inference server its catalog entry's family and weights", () => {
    const containers = Object.values(synthesized.template.findResources("AWS::ECS::TaskDefinition")).map(
      (t) =>
        Object.fromEntries(
          (t.Properties.ContainerDefinitions[0].Environment as { Name: string; Value: unknown }[]).map(
            (e) => [e.Name, e.Value],
          ),
        ),
    );
    const server = (name: string) => containers.find((env) => env.BASE_MODEL === name)!;
    const weights = (prefix: string) => ({
      "Fn::Join": ["", ["s3://", { Ref: expect.stringMatching(/^StorageArtifacts/) }, `/${prefix}`]],
    });
    expect(server("acme-13b")).toMatchObject({
      [CONFIG_ENV.modelFamily]: "chatml",
      [CONFIG_ENV.baseModelUri]: weights("shared/acme-13b/"),
    });
    expect(server("qwen2.5-7b-instruct")).toMatchObject({
      [CONFIG_ENV.modelFamily]: "chatml",
      [CONFIG_ENV.baseModelUri]: weights("base-models/qwen2.5-7b-instruct/"),
    });
  });

  it("lets the servers read the served models' weights, wherever the catalog puts them, and no others", () => {
    const text = JSON.stringify(statementsOf(synthesized, "ChatInferenceTaskRole"));
    expect(text).toContain('"/shared/acme-13b/*"');
    expect(text).toContain('"/base-models/qwen2.5-7b-instruct/*"');
    expect(text).not.toContain('"/base-models/*"');
    expect(text).not.toContain("chatglm3-6b");
  });

  it("lets the trainer read every catalog model's weights, the new location included", () => {
    const text = JSON.stringify(statementsOf(synthesized, "TrainingTenantScopedTrainerRole"));
    expect(text).toContain('"/shared/acme-13b/*"');
    for (const model of DEFAULT_CATALOG) expect(text).toContain(`"/${model.weightsPrefix}*"`);
  });

  it("keeps cdk-nag clean with the new key patterns", () => {
    expect(synthesized.violations).toEqual([]);
  });
});

describe("the catalog at synth", () => {
  it("passes no override without one: the functions use the built-in catalog", () => {
    const synthesized = synthPlatform();
    for (const prefix of ["ApiJobsApi", "ChatChatFunction", "TrainingDispatcher", "ValidationValidator"]) {
      expect(functionEnv(synthesized, prefix)[CONFIG_ENV.catalogOverride]).toBeUndefined();
    }
  });

  it("fails on an invalid override, naming the offending path", () => {
    expect(() =>
      synthPlatform({ catalogOverride: { models: { "acme-13b": { family: "chatml" } } } }),
    ).toThrow(/Invalid base model catalog override at models\.acme-13b/);
  });

  it("fails on an inference server for a model the catalog does not have", () => {
    expect(() =>
      synthPlatform({
        catalogOverride: { models: { "glm-4-9b-chat": null } },
        inference: { servers: ["glm-4-9b-chat"], imageUri: ECR_IMAGE },
      }),
    ).toThrow(/Base model glm-4-9b-chat is not in the catalog/);
  });
});
