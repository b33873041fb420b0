import { describe, expect, it } from "vitest";
import added from "../../../contract/fixtures/added-model.json" with { type: "json" };
import { CONFIG_ENV } from "../../../infra/resources/definitions.ts";
import { validatorDependenciesFromEnv } from "../../../lambdas/validator/dependencies.ts";
import { ADDED_MODEL, operatorModel } from "../../fixtures/catalog.ts";

const ENV = { FILES_TABLE: "ft-files", DATASETS_BUCKET: "ft-datasets" };

/** One example of a few hundred tokens (too few examples to train on; the counts are what matter here). */
function longExample(repeats = 40): ReadableStream<Uint8Array> {
  const answer = "The quick brown fox jumps over the lazy dog. ".repeat(repeats);
  const line = JSON.stringify({
    messages: [
      { role: "user", content: "Tell me about foxes." },
      { role: "assistant", content: answer },
    ],
  });
  return new Blob([`${line}\n`]).stream() as ReadableStream<Uint8Array>;
}

describe("the validator's dependencies from the environment", () => {
  it("counts over-length examples against a model the catalog override adds", async () => {
    // Prepare
    const override = { models: { "acme-short": operatorModel(1e9, { maxSeqLength: 64 }) } };
    const deps = validatorDependenciesFromEnv({
      ...ENV,
      [CONFIG_ENV.catalogOverride]: JSON.stringify(override),
    });

    // Act
    const report = await deps.validate(longExample());

    // Assess
    expect(report.statistics.overLength["acme-short"]).toBe(1);
    expect(report.statistics.overLength["tiny-chat"]).toBeDefined();
  });

  it("knows the limit of the model contract/fixtures/added-model.json adds (3,072 tokens)", async () => {
    const deps = validatorDependenciesFromEnv({
      ...ENV,
      [CONFIG_ENV.catalogOverride]: JSON.stringify({ models: added.models }),
    });
    const report = await deps.validate(longExample(350));
    expect(report.statistics.overLength[ADDED_MODEL]).toBe(1);
    expect(report.statistics.overLength["glm-4-9b-chat"]).toBe(0);
  });

  it("checks the built-in catalog only, without an override", async () => {
    const report = await validatorDependenciesFromEnv(ENV).validate(longExample());
    expect(report.statistics.overLength).not.toHaveProperty("acme-short");
    expect(Object.keys(report.statistics.overLength).length).toBeGreaterThan(1);
  });

  it("fails at cold start on a broken override or a missing table name", () => {
    expect(() => validatorDependenciesFromEnv({ ...ENV, [CONFIG_ENV.catalogOverride]: "{" })).toThrow(
      /not valid JSON/,
    );
    expect(() => validatorDependenciesFromEnv({ DATASETS_BUCKET: "b" })).toThrow(/FILES_TABLE is not set/);
  });
});
