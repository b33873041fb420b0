import { describe, expect, it } from "vitest";
import {
  allowedMethods,
  type BaseModel,
  buildCatalog,
  CATALOG_OVERRIDE_ENV,
  catalogFromEnv,
  DEFAULT_CATALOG,
  defaultMethod,
  findBaseModel,
  listBaseModels,
  toBaseModelObject,
} from "../../../lambdas/core/catalog/base-models.ts";

const model = (name: string): BaseModel => {
  const found = findBaseModel(name);
  if (!found) throw new Error(`missing ${name}`);
  return found;
};

describe("the default base model catalog", () => {
  it("lists the original platform's names, the open models and the tiny model, in that order", () => {
    expect(listBaseModels().map((m) => m.name)).toEqual([
      "chatglm3-6b",
      "chatglm_12b",
      "chatglm_32b",
      "chatglm_66b",
      "chatglm_130b",
      "glm-4-9b-chat",
      "qwen2.5-0.5b-instruct",
      "qwen2.5-7b-instruct",
      "tiny-chat",
    ]);
  });

  it.each([
    ["chatglm3-6b", ["lora"]],
    ["chatglm_12b", ["full"]],
    ["chatglm_32b", ["full"]],
    ["chatglm_66b", ["full"]],
    ["chatglm_130b", ["full"]],
    ["glm-4-9b-chat", ["lora", "full"]],
    ["qwen2.5-0.5b-instruct", ["lora", "full"]],
    ["qwen2.5-7b-instruct", ["lora", "full"]],
    ["tiny-chat", ["lora", "full"]],
  ])("allows %s to be trained with %j", (name, methods) => {
    expect(allowedMethods(model(name))).toEqual(methods);
  });

  it.each([
    ["chatglm3-6b", "chatglm3"],
    ["chatglm_130b", "chatglm3"],
    ["glm-4-9b-chat", "glm4"],
    ["qwen2.5-7b-instruct", "chatml"],
    ["tiny-chat", "tiny"],
  ])("gives %s the %s chat format", (name, family) => {
    expect(model(name).family).toBe(family);
  });

  it("keeps every model's weights under base-models/{name}/", () => {
    for (const entry of DEFAULT_CATALOG) expect(entry.weightsPrefix).toBe(`base-models/${entry.name}/`);
  });

  it("has unique names and sane numbers for every entry and method", () => {
    expect(new Set(DEFAULT_CATALOG.map((m) => m.name)).size).toBe(DEFAULT_CATALOG.length);
    for (const entry of DEFAULT_CATALOG) {
      expect(entry.maxSeqLength).toBeGreaterThanOrEqual(64);
      expect(entry.parameters).toBeGreaterThan(0);
      expect(entry.created).toBeGreaterThan(1.6e9);
      for (const spec of Object.values(entry.methods)) {
        expect(spec.pricePer1kTokensUsd).toBeGreaterThan(0);
        expect(spec.instanceType).toMatch(/^[a-z0-9]+\.[a-z0-9]+$/);
        expect(spec.gpus === 0).toBe(spec.minGpuMemoryGiB === 0);
      }
    }
  });

  it("prices full training above LoRA for every model that offers both", () => {
    for (const entry of DEFAULT_CATALOG) {
      const { lora, full } = entry.methods;
      if (lora && full && entry.name !== "tiny-chat") {
        expect(full.pricePer1kTokensUsd).toBeGreaterThan(lora.pricePer1kTokensUsd);
      }
    }
  });

  it("runs the tiny model on CPU with a 512-token limit and a tiny price", () => {
    const tiny = model("tiny-chat");
    expect(tiny.maxSeqLength).toBe(512);
    expect(tiny.methods.lora?.gpus).toBe(0);
    expect(tiny.methods.full?.gpus).toBe(0);
    expect(tiny.methods.lora?.pricePer1kTokensUsd).toBeLessThan(0.0001);
  });

  it("needs more GPUs for full training of larger models", () => {
    const gpus = ["chatglm_12b", "chatglm_32b", "chatglm_66b", "chatglm_130b"].map(
      (name) => (model(name).methods.full?.gpus ?? 0) * (model(name).methods.full?.minGpuMemoryGiB ?? 0),
    );
    expect([...gpus].sort((a, b) => a - b)).toEqual(gpus);
    // About 16 bytes per parameter of training state must fit in GPU memory.
    for (const name of ["chatglm_12b", "chatglm_32b", "chatglm_66b", "chatglm_130b", "qwen2.5-7b-instruct"]) {
      const m = model(name);
      const spec = m.methods.full!;
      expect(spec.gpus * spec.minGpuMemoryGiB * 2 ** 30).toBeGreaterThan(m.parameters * 16);
    }
  });

  it("is frozen", () => {
    expect(Object.isFrozen(DEFAULT_CATALOG)).toBe(true);
  });
});

describe("findBaseModel", () => {
  it("finds a model by its exact name", () => {
    expect(findBaseModel("glm-4-9b-chat")?.family).toBe("glm4");
  });

  it.each(["GLM-4-9B-CHAT", "glm-4-9b", "", " tiny-chat", "ft:tiny-chat"])("does not find %j", (name) => {
    expect(findBaseModel(name)).toBeUndefined();
  });

  it("looks in the catalog it is given", () => {
    const catalog = buildCatalog({ models: { "tiny-chat": null } });
    expect(findBaseModel("tiny-chat", catalog)).toBeUndefined();
    expect(findBaseModel("chatglm3-6b", catalog)).toBeDefined();
  });
});

describe("defaultMethod", () => {
  it.each([
    ["chatglm3-6b", "lora"],
    ["chatglm_12b", "full"],
    ["glm-4-9b-chat", "lora"],
    ["tiny-chat", "lora"],
  ])("trains %s with %s when the request names no method", (name, method) => {
    expect(defaultMethod(model(name))).toBe(method);
  });
});

describe("toBaseModelObject", () => {
  it("is the OpenAI model object with the catalog facts beside it", () => {
    expect(toBaseModelObject(model("qwen2.5-7b-instruct"))).toEqual({
      id: "qwen2.5-7b-instruct",
      object: "model",
      created: 1726704000,
      owned_by: "qwen",
      family: "chatml",
      fine_tuning_methods: ["lora", "full"],
      max_seq_length: 8192,
    });
  });
});

describe("buildCatalog", () => {
  it("returns the base catalog when there is no override", () => {
    expect(buildCatalog(undefined)).toBe(DEFAULT_CATALOG);
    expect(buildCatalog(null)).toBe(DEFAULT_CATALOG);
  });

  it("changes only the fields an override names", () => {
    const catalog = buildCatalog({ models: { "chatglm3-6b": { maxSeqLength: 4096 } } });
    const entry = findBaseModel("chatglm3-6b", catalog);
    expect(entry).toEqual({ ...model("chatglm3-6b"), maxSeqLength: 4096 });
    expect(model("chatglm3-6b").maxSeqLength).toBe(8192);
  });

  it("merges a method's fields into the existing spec", () => {
    const catalog = buildCatalog({
      models: { "qwen2.5-7b-instruct": { methods: { lora: { pricePer1kTokensUsd: 0.5 } } } },
    });
    const entry = findBaseModel("qwen2.5-7b-instruct", catalog)!;
    expect(entry.methods.lora).toEqual({
      ...model("qwen2.5-7b-instruct").methods.lora,
      pricePer1kTokensUsd: 0.5,
    });
    expect(entry.methods.full).toEqual(model("qwen2.5-7b-instruct").methods.full);
  });

  it("adds a method to an existing model when the spec is complete", () => {
    const spec = { gpus: 8, minGpuMemoryGiB: 80, instanceType: "p4de.24xlarge", pricePer1kTokensUsd: 0.004 };
    const catalog = buildCatalog({ models: { "chatglm3-6b": { methods: { full: spec } } } });
    expect(allowedMethods(findBaseModel("chatglm3-6b", catalog)!)).toEqual(["lora", "full"]);
  });

  it("rejects a new method whose spec is incomplete", () => {
    expect(() => buildCatalog({ models: { "chatglm3-6b": { methods: { full: { gpus: 8 } } } } })).toThrow(
      /models\.chatglm3-6b\.methods\.full/,
    );
  });

  it("removes a method with null", () => {
    const catalog = buildCatalog({ models: { "glm-4-9b-chat": { methods: { full: null } } } });
    expect(allowedMethods(findBaseModel("glm-4-9b-chat", catalog)!)).toEqual(["lora"]);
  });

  it("rejects removing a model's last method", () => {
    expect(() => buildCatalog({ models: { "chatglm3-6b": { methods: { lora: null } } } })).toThrow(
      /chatglm3-6b\.methods: needs at least one of lora, full/,
    );
  });

  it("removes a model with null", () => {
    const catalog = buildCatalog({ models: { chatglm_130b: null, chatglm_66b: null } });
    expect(catalog.map((m) => m.name)).not.toContain("chatglm_130b");
    expect(catalog).toHaveLength(DEFAULT_CATALOG.length - 2);
  });

  it("adds a complete new model at the end, with the default weights prefix", () => {
    const catalog = buildCatalog({
      models: {
        "llama-3.1-8b-instruct": {
          family: "chatml",
          methods: {
            lora: { gpus: 1, minGpuMemoryGiB: 24, instanceType: "g5.2xlarge", pricePer1kTokensUsd: 0.001 },
          },
          maxSeqLength: 8192,
          parameters: 8_030_000_000,
          ownedBy: "meta",
        },
      },
    });
    expect(catalog.at(-1)).toEqual({
      name: "llama-3.1-8b-instruct",
      family: "chatml",
      methods: {
        lora: { gpus: 1, minGpuMemoryGiB: 24, instanceType: "g5.2xlarge", pricePer1kTokensUsd: 0.001 },
      },
      weightsPrefix: "base-models/llama-3.1-8b-instruct/",
      maxSeqLength: 8192,
      parameters: 8_030_000_000,
      created: 0,
      ownedBy: "meta",
    });
  });

  it("rejects a new model missing required fields, naming the field", () => {
    expect(() => buildCatalog({ models: { "new-model": { family: "chatml" } } })).toThrow(
      /models\.new-model\.methods/,
    );
  });

  it.each([
    [{ models: { "tiny-chat": { family: "llama" } } }, /models\.tiny-chat\.family/],
    [{ models: { "tiny-chat": { maxSeqLength: 32 } } }, /models\.tiny-chat\.maxSeqLength/],
    [{ models: { "tiny-chat": { parameters: -1 } } }, /models\.tiny-chat\.parameters/],
    [{ models: { "tiny-chat": { weightsPrefix: "/etc/" } } }, /weightsPrefix/],
    [{ models: { "tiny-chat": { weightsPrefix: "base-models/../x/" } } }, /weightsPrefix/],
    [{ models: { "tiny-chat": { weightsPrefix: "base-models/x" } } }, /weightsPrefix/],
    [{ models: { "tiny-chat": { methods: { lora: { instanceType: "big" } } } } }, /instanceType/],
    [{ models: { "tiny-chat": { methods: { lora: { gpus: 1.5 } } } } }, /gpus/],
    [{ models: { "tiny-chat": { methods: { dpo: null } } } }, /unknown field 'dpo'/],
    [{ models: { "tiny-chat": { colour: "red" } } }, /unknown field 'colour'/],
    [{ models: { "tiny-chat": { name: "other" } } }, /unknown field 'name'/],
    [{ models: { "bad name": null } }, /bad name/],
    [{ models: { "/x": null } }, /models/],
    [{ entries: {} }, /unknown field 'entries'/],
    [{}, /models/],
    ["tiny-chat", /root/],
  ])("rejects the override %j", (override, message) => {
    expect(() => buildCatalog(override)).toThrow(message);
  });

  it("returns a frozen catalog", () => {
    const catalog = buildCatalog({ models: { "tiny-chat": { maxSeqLength: 256 } } });
    expect(Object.isFrozen(catalog)).toBe(true);
    expect(Object.isFrozen(catalog[0])).toBe(true);
  });
});

describe("catalogFromEnv", () => {
  it("uses the default catalog when the variable is unset or blank", () => {
    expect(catalogFromEnv(undefined)).toBe(DEFAULT_CATALOG);
    expect(catalogFromEnv("  ")).toBe(DEFAULT_CATALOG);
  });

  it("merges a JSON override", () => {
    const catalog = catalogFromEnv(JSON.stringify({ models: { "tiny-chat": { maxSeqLength: 256 } } }));
    expect(findBaseModel("tiny-chat", catalog)?.maxSeqLength).toBe(256);
  });

  it("names the variable when its value is not JSON", () => {
    expect(() => catalogFromEnv("{models:")).toThrow(`${CATALOG_OVERRIDE_ENV} is not valid JSON.`);
  });
});
