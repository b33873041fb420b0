import { describe, expect, it } from "vitest";
import { DEFAULT_CATALOG } from "../../../lambdas/core/catalog/base-models.ts";
import {
  deleteModel,
  fineTunedCode,
  listModels,
  parseModelName,
  renameModel,
  retrieveModel,
} from "../../../lambdas/jobs-api/models.ts";
import { fakeDependencies, OTHER_TENANT, storedJob, TENANT } from "./fakes.ts";

/** A job of TENANT whose model is `status`. */
async function withModel(status: "pending" | "ready" | "failed") {
  const fakes = fakeDependencies();
  const job = await storedJob(fakes, { status: status === "pending" ? "running" : "succeeded" });
  fakes.jobs.models.set(job.modelCode, { ...fakes.jobs.models.get(job.modelCode)!, status });
  return { fakes, job };
}

describe("listModels and retrieveModel", () => {
  it("lists every base model, then only the tenant's fine-tuned models", async () => {
    const { fakes, job } = await withModel("ready");
    await storedJob(fakes, {}, OTHER_TENANT);
    const { base, fineTuned } = await listModels(fakes.deps, TENANT);
    expect(base).toEqual(DEFAULT_CATALOG);
    expect(fineTuned.map((m) => m.modelCode)).toEqual([job.modelCode]);
  });

  it("retrieves a base model by name and the tenant's model by code; 404 for another tenant's", async () => {
    const { fakes, job } = await withModel("ready");
    expect(await retrieveModel(fakes.deps, OTHER_TENANT, "tiny-chat")).toMatchObject({
      kind: "base",
      model: { name: "tiny-chat" },
    });
    expect(await retrieveModel(fakes.deps, TENANT, job.modelCode)).toMatchObject({
      kind: "fine_tuned",
      record: { modelCode: job.modelCode },
    });
    await expect(retrieveModel(fakes.deps, OTHER_TENANT, job.modelCode)).rejects.toMatchObject({
      status: 404,
      code: "model_not_found",
      param: "model",
    });
  });
});

describe("deleteModel", () => {
  it("deletes the tenant's ended model, which frees its code", async () => {
    const { fakes, job } = await withModel("ready");
    expect(await deleteModel(fakes.deps, TENANT, job.modelCode)).toBe(job.modelCode);
    expect(fakes.jobs.models.has(job.modelCode)).toBe(false);
  });

  it("answers 409 model_not_ready while its job is training, naming the job", async () => {
    const { fakes, job } = await withModel("pending");
    await expect(deleteModel(fakes.deps, TENANT, job.modelCode)).rejects.toMatchObject({
      status: 409,
      code: "model_not_ready",
      message: `The model '${job.modelCode}' is still training; cancel its job ${job.jobId} first.`,
    });
  });

  it("answers 404 when tenant B deletes tenant A's model, and 400 model_not_deletable for a base model", async () => {
    const { fakes, job } = await withModel("failed");
    await expect(deleteModel(fakes.deps, OTHER_TENANT, job.modelCode)).rejects.toMatchObject({ status: 404 });
    expect(fakes.jobs.models.has(job.modelCode)).toBe(true);
    await expect(deleteModel(fakes.deps, TENANT, "tiny-chat")).rejects.toMatchObject({
      status: 400,
      code: "model_not_deletable",
      param: "model",
    });
  });
});

describe("renameModel", () => {
  it("sets the display name on the model and its job; null clears it", async () => {
    const { fakes, job } = await withModel("ready");
    expect(await renameModel(fakes.deps, TENANT, job.modelCode, "客服助手")).toMatchObject({
      name: "客服助手",
    });
    expect((await fakes.jobs.get(TENANT, job.jobId))?.name).toBe("客服助手");
    expect((await renameModel(fakes.deps, TENANT, job.modelCode, null)).name).toBeNull();
  });

  it("answers 404 for another tenant's model and 400 model_not_editable for a base model", async () => {
    const { fakes, job } = await withModel("ready");
    await expect(renameModel(fakes.deps, OTHER_TENANT, job.modelCode, "x")).rejects.toMatchObject({
      status: 404,
    });
    expect(() => fineTunedCode(fakes.deps.catalog, "tiny-chat", "changed")).toThrow(
      expect.objectContaining({ code: "model_not_editable" }),
    );
  });

  it("reads the body's name, and answers 400 for unknown fields or a bad name", () => {
    expect(parseModelName({ name: "Support" })).toBe("Support");
    expect(parseModelName({ name: null })).toBeNull();
    expect(() => parseModelName({ name: "x", extra: 1 })).toThrow(
      expect.objectContaining({ code: "unknown_parameter" }),
    );
    expect(() => parseModelName({ name: "" })).toThrow(
      expect.objectContaining({ status: 400, param: "name" }),
    );
  });
});
