import { describe, expect, it } from "vitest";
import { buildCatalog } from "../../../lambdas/core/catalog/base-models.ts";
import {
  type CreateJobRequest,
  type FineTunedModelCandidate,
  parseCreateJobRequest,
  planJob,
} from "../../../lambdas/core/jobs/create-request.ts";
import { deriveSeed } from "../../../lambdas/core/jobs/hyperparameters.ts";
import { rejection } from "../../fixtures/errors.ts";

const base = { model: "qwen2.5-7b-instruct", training_file: "file-abc" };

const parseError = (body: unknown) => rejection(() => parseCreateJobRequest(body));

describe("parseCreateJobRequest", () => {
  it("accepts the minimal request and fills the defaults", () => {
    expect(parseCreateJobRequest(base)).toEqual<CreateJobRequest>({
      model: "qwen2.5-7b-instruct",
      trainingFile: "file-abc",
      validationFile: null,
      objective: "supervised",
      method: null,
      methodParam: "method.type",
      hyperparameters: {},
      hyperparametersParam: "hyperparameters",
      modelCode: null,
      name: null,
      suffix: null,
      seed: null,
      metadata: null,
      dryRun: false,
      requestId: null,
    });
  });

  it.each(["客服助手 v2", "Support bot (staging)", "a".repeat(128), "模".repeat(128), "🙂 bot"])(
    "accepts the display name %j",
    (name) => {
      expect(parseCreateJobRequest({ ...base, name }).name).toBe(name);
    },
  );

  it.each([
    ["", "empty"],
    ["   ", "blank"],
    ["a".repeat(129), "at most 128"],
    ["模".repeat(129), "at most 128"],
    ["two\nlines", "control characters"],
    [42, "string"],
  ])("rejects the display name %j (%s)", (name, message) => {
    const error = parseError({ ...base, name });
    expect(error.param).toBe("name");
    expect(error.message).toContain(message);
  });

  it("reads a null display name as none", () => {
    expect(parseCreateJobRequest({ ...base, name: null }).name).toBeNull();
  });

  it("accepts a full request", () => {
    const parsed = parseCreateJobRequest({
      ...base,
      validation_file: "file-val",
      method: { type: "lora", hyperparameters: { n_epochs: 2, lora_r: 16, batch_size: "auto" } },
      model_code: "acme-support",
      seed: 123,
      metadata: { team: "support", ticket: "" },
      dry_run: true,
    });
    expect(parsed).toMatchObject({
      validationFile: "file-val",
      method: "lora",
      hyperparameters: { n_epochs: 2, lora_r: 16, batch_size: "auto" },
      hyperparametersParam: "method.hyperparameters",
      modelCode: "acme-support",
      seed: 123,
      metadata: { team: "support", ticket: "" },
      dryRun: true,
    });
  });

  it("accepts full with no hyperparameters", () => {
    expect(parseCreateJobRequest({ ...base, method: { type: "full" } })).toMatchObject({
      method: "full",
      hyperparameters: {},
    });
  });

  it("maps OpenAI's supervised method to the base model's default method", () => {
    const parsed = parseCreateJobRequest({
      ...base,
      method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 4 } } },
    });
    expect(parsed.method).toBeNull();
    expect(parsed.hyperparameters).toEqual({ n_epochs: 4 });
    expect(parsed.hyperparametersParam).toBe("method.supervised.hyperparameters");
    expect(parseCreateJobRequest({ ...base, method: { type: "supervised" } }).hyperparameters).toEqual({});
  });

  it("accepts the legacy top-level hyperparameters (OpenAI's deprecated field, zhipuai's)", () => {
    const parsed = parseCreateJobRequest({
      ...base,
      hyperparameters: { n_epochs: "auto", learning_rate_multiplier: 2 },
    });
    expect(parsed.method).toBeNull();
    expect(parsed.hyperparameters).toEqual({ n_epochs: "auto", learning_rate_multiplier: 2 });
    expect(parsed.hyperparametersParam).toBe("hyperparameters");
  });

  it("accepts nulls where the SDKs send them for absent values", () => {
    const parsed = parseCreateJobRequest({
      ...base,
      validation_file: null,
      hyperparameters: null,
      model_code: null,
      suffix: null,
      seed: null,
      metadata: null,
      integrations: null,
      request_id: null,
    });
    expect(parsed).toMatchObject({ validationFile: null, modelCode: null, seed: null, metadata: null });
  });

  it("keeps the zhipuai SDK's request_id", () => {
    expect(parseCreateJobRequest({ ...base, request_id: "req-1" }).requestId).toBe("req-1");
  });

  it("accepts a suffix", () => {
    expect(parseCreateJobRequest({ ...base, suffix: "my_bot-2" }).suffix).toBe("my_bot-2");
  });

  it("accepts an empty integrations list", () => {
    expect(() => parseCreateJobRequest({ ...base, integrations: [] })).not.toThrow();
  });

  it.each([null, [], "text", 3])("rejects a body that is not an object: %j", (body) => {
    expect(parseError(body).message).toContain("JSON object");
  });

  it.each([
    [{ training_file: "file-abc" }, "model"],
    [{ model: "qwen2.5-7b-instruct" }, "training_file"],
  ])("rejects a request missing %j's required field %s", (body, param) => {
    const error = parseError(body);
    expect(error.param).toBe(param);
    expect(error.code).toBe("missing_required_parameter");
  });

  it.each([
    [{ ...base, learning_rate: 1 }, "learning_rate"],
    [{ ...base, n_epochs: 3 }, "n_epochs"],
    [{ ...base, method: { type: "lora", hyperparameters: { epochs: 3 } } }, "method.hyperparameters.epochs"],
    [{ ...base, method: { type: "lora", lora: {} } }, "method.lora"],
    [
      { ...base, method: { type: "supervised", supervised: { hyperparameters: {}, x: 1 } } },
      "method.supervised.x",
    ],
    [{ ...base, hyperparameters: { n_epoch: 3 } }, "hyperparameters.n_epoch"],
    [{ trainingFile: "file-abc", model: "m" }, "trainingFile"],
  ])("rejects an unknown field, naming it: %j", (body, param) => {
    const error = parseError(body);
    expect(error.param).toBe(param);
    expect(error.code).toBe("unknown_parameter");
    expect(error.message).toContain(param);
  });

  it.each([
    [{ lora_r: 0 }, "method.hyperparameters.lora_r"],
    [{ lora_r: 65 }, "method.hyperparameters.lora_r"],
    [{ n_epochs: 51 }, "method.hyperparameters.n_epochs"],
    [{ batch_size: 1.5 }, "method.hyperparameters.batch_size"],
    [{ learning_rate_multiplier: 0 }, "method.hyperparameters.learning_rate_multiplier"],
    [{ lora_dropout: 0.6 }, "method.hyperparameters.lora_dropout"],
    [{ lora_alpha: 2000 }, "method.hyperparameters.lora_alpha"],
    [{ max_seq_length: 32 }, "method.hyperparameters.max_seq_length"],
    [{ n_epochs: "three" }, "method.hyperparameters.n_epochs"],
  ])("rejects out-of-bounds hyperparameters %j, naming %s", (hyperparameters, param) => {
    const error = parseError({ ...base, method: { type: "lora", hyperparameters } });
    expect(error.param).toBe(param);
    expect(error.code).toBe("invalid_request");
    expect(error.message).toContain('"auto" or');
  });

  it("names the legacy path for a bad legacy hyperparameter", () => {
    expect(parseError({ ...base, hyperparameters: { batch_size: 0 } }).param).toBe(
      "hyperparameters.batch_size",
    );
  });

  it.each([
    [{ type: "rlhf" }, "method.type"],
    [{}, "method.type"],
    ["lora", "method"],
  ])("rejects the method %j", (method, param) => {
    expect(parseError({ ...base, method }).param).toBe(param);
  });

  it("rejects OpenAI's reinforcement method as unsupported", () => {
    const error = parseError({ ...base, method: { type: "reinforcement", reinforcement: {} } });
    expect(error.param).toBe("method.type");
    expect(error.code).toBe("unsupported_method");
    expect(error.message).toContain("'dpo'");
  });

  describe('DPO (OpenAI\'s method.type "dpo")', () => {
    it("accepts OpenAI's shape: beta, n_epochs, batch_size and learning_rate_multiplier", () => {
      const hyperparameters = { beta: 0.2, n_epochs: 2, batch_size: "auto", learning_rate_multiplier: 0.5 };
      expect(
        parseCreateJobRequest({ ...base, method: { type: "dpo", dpo: { hyperparameters } } }),
      ).toMatchObject({
        objective: "dpo",
        method: null,
        methodParam: "method.dpo.use_lora",
        hyperparameters,
        hyperparametersParam: "method.dpo.hyperparameters",
      });
    });

    it.each([
      [true, "lora"],
      [false, "full"],
      [null, null],
      [undefined, null],
    ])("reads use_lora %j as method %j (null: the default)", (useLora, method) => {
      const parsed = parseCreateJobRequest({ ...base, method: { type: "dpo", dpo: { use_lora: useLora } } });
      expect(parsed.method).toBe(method);
    });

    it("accepts a DPO method with nothing in it", () => {
      expect(parseCreateJobRequest({ ...base, method: { type: "dpo" } })).toMatchObject({
        objective: "dpo",
        hyperparameters: {},
      });
    });

    it("takes the chosen method's other hyperparameters and the evaluation ones", () => {
      const hyperparameters = {
        lora_r: 16,
        lora_alpha: 32,
        lora_dropout: 0.1,
        max_seq_length: 1024,
        eval_interval: 10,
        early_stopping_patience: 2,
        validation_split: 0.1,
      };
      const parsed = parseCreateJobRequest({
        ...base,
        method: { type: "dpo", dpo: { hyperparameters, use_lora: true } },
      });
      expect(parsed.hyperparameters).toEqual(hyperparameters);
    });

    it.each([
      [
        { type: "dpo", dpo: { hyperparameters: { beta: 0 } } },
        "method.dpo.hyperparameters.beta",
        "invalid_request",
      ],
      [
        { type: "dpo", dpo: { hyperparameters: { beta: 3 } } },
        "method.dpo.hyperparameters.beta",
        "invalid_request",
      ],
      [{ type: "dpo", dpo: { use_lora: "yes" } }, "method.dpo.use_lora", "invalid_request"],
      [{ type: "dpo", dpo: { lora: true } }, "method.dpo.lora", "unknown_parameter"],
      [{ type: "dpo", supervised: {} }, "method.supervised", "unknown_parameter"],
      [
        { type: "dpo", dpo: { hyperparameters: { reference_free: true } } },
        "method.dpo.hyperparameters.reference_free",
        "unknown_parameter",
      ],
    ])("rejects the DPO method %j, naming %s", (method, param, code) => {
      const error = parseError({ ...base, method });
      expect(error.param).toBe(param);
      expect(error.code).toBe(code);
    });

    it("rejects DPO with top-level hyperparameters too", () => {
      expect(parseError({ ...base, method: { type: "dpo" }, hyperparameters: { n_epochs: 1 } }).param).toBe(
        "hyperparameters",
      );
    });
  });

  it.each([
    [{ type: "lora", hyperparameters: { beta: 0.1 } }, "method.hyperparameters.beta"],
    [{ type: "full", hyperparameters: { beta: "auto" } }, "method.hyperparameters.beta"],
    [
      { type: "supervised", supervised: { hyperparameters: { beta: 0.1 } } },
      "method.supervised.hyperparameters.beta",
    ],
  ])("rejects beta for a supervised job %j, naming %s", (method, param) => {
    const error = parseError({ ...base, method });
    expect(error.param).toBe(param);
    expect(error.message).toContain("'dpo' only");
  });

  it("rejects beta in the legacy top-level hyperparameters (a supervised job)", () => {
    expect(parseError({ ...base, hyperparameters: { beta: 0.1 } }).param).toBe("hyperparameters.beta");
  });

  it.each([
    [{ method: { type: "lora", hyperparameters: {} as Record<string, unknown> } }, "method.hyperparameters"],
    [{ method: { type: "full", hyperparameters: {} as Record<string, unknown> } }, "method.hyperparameters"],
    [
      { method: { type: "supervised", supervised: { hyperparameters: {} as Record<string, unknown> } } },
      "method.supervised.hyperparameters",
    ],
    [
      { method: { type: "dpo", dpo: { hyperparameters: {} as Record<string, unknown> } } },
      "method.dpo.hyperparameters",
    ],
    [{ hyperparameters: {} as Record<string, unknown> }, "hyperparameters"],
  ])("accepts the evaluation hyperparameters in every method shape: %j", (shape, path) => {
    const evaluation = { eval_interval: 50, early_stopping_patience: 3, validation_split: 0.1 };
    const body = JSON.parse(JSON.stringify(shape)) as Record<string, unknown>;
    const target = path
      .split(".")
      .reduce<Record<string, unknown>>((at, key) => at[key] as Record<string, unknown>, body);
    Object.assign(target, evaluation);
    const parsed = parseCreateJobRequest({ ...base, ...body });
    expect(parsed.hyperparameters).toEqual(evaluation);
    expect(parsed.hyperparametersParam).toBe(path);
  });

  it("rejects validation_split above 0 with a validation_file, naming the split's path", () => {
    const error = parseError({
      ...base,
      validation_file: "file-val",
      method: { type: "dpo", dpo: { hyperparameters: { validation_split: 0.1 } } },
    });
    expect(error.param).toBe("method.dpo.hyperparameters.validation_split");
    expect(error.status).toBe(400);
    const legacy = parseError({
      ...base,
      validation_file: "file-val",
      hyperparameters: { validation_split: 0.05 },
    });
    expect(legacy.param).toBe("hyperparameters.validation_split");
  });

  it("accepts validation_split 0 with a validation_file", () => {
    const body = { ...base, validation_file: "file-val", hyperparameters: { validation_split: 0 } };
    expect(parseCreateJobRequest(body).validationFile).toBe("file-val");
  });

  it("rejects early_stopping_patience without validation data, naming it", () => {
    const error = parseError({
      ...base,
      method: { type: "lora", hyperparameters: { early_stopping_patience: 2 } },
    });
    expect(error.param).toBe("method.hyperparameters.early_stopping_patience");
  });

  it("rejects method and top-level hyperparameters together", () => {
    const error = parseError({ ...base, method: { type: "lora" }, hyperparameters: { n_epochs: 1 } });
    expect(error.param).toBe("hyperparameters");
  });

  it("rejects model_code and suffix together", () => {
    const error = parseError({ ...base, model_code: "acme-bot", suffix: "bot" });
    expect(error.param).toBe("suffix");
    expect(error.message).toContain("not both");
  });

  it.each(["", "UPPER", "a".repeat(41), "has space", "dot.ted", "colon:x"])(
    "rejects the suffix %j",
    (suffix) => {
      const error = parseError({ ...base, suffix });
      expect(error.param).toBe("suffix");
    },
  );

  it.each([
    ["AcmeBot", "lowercase"],
    ["ab", "3–64"],
    ["ft-acme", "the platform's own ids"],
    ["glm-4-plus", "official"],
    ["ft:gpt-4o:x:y:z", "OpenAI's fine-tuned model names"],
  ])("rejects the model code %j before any lookup (%s)", (code, message) => {
    const error = parseError({ ...base, model_code: code });
    expect(error.param).toBe("model_code");
    expect(error.code).toBe("invalid_model_code");
    expect(error.message).toContain(message);
  });

  it.each([-1, 2 ** 31, 1.5, "7", Number.NaN])("rejects the seed %j", (seed) => {
    expect(parseError({ ...base, seed }).param).toBe("seed");
  });

  it.each([0, 2 ** 31 - 1])("accepts the seed %j", (seed) => {
    expect(parseCreateJobRequest({ ...base, seed }).seed).toBe(seed);
  });

  it("accepts 16 metadata pairs and rejects 17", () => {
    const pairs = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]));
    expect(parseCreateJobRequest({ ...base, metadata: pairs(16) }).metadata).toEqual(pairs(16));
    const error = parseError({ ...base, metadata: pairs(17) });
    expect(error.param).toBe("metadata");
    expect(error.message).toContain("at most 16 pairs");
  });

  it("accepts metadata keys of 64 and values of 512 characters", () => {
    const metadata = { ["k".repeat(64)]: "v".repeat(512) };
    expect(parseCreateJobRequest({ ...base, metadata }).metadata).toEqual(metadata);
  });

  it("rejects a metadata key over 64 characters", () => {
    const key = "k".repeat(65);
    const error = parseError({ ...base, metadata: { [key]: "v" } });
    expect(error.param).toBe(`metadata.${key}`);
    expect(error.message).toContain("at most 64");
  });

  it("rejects a metadata value over 512 characters", () => {
    const error = parseError({ ...base, metadata: { team: "v".repeat(513) } });
    expect(error.param).toBe("metadata.team");
    expect(error.message).toContain("512");
  });

  it.each([1, true, null, { nested: "x" }])("rejects the metadata value %j", (value) => {
    expect(parseError({ ...base, metadata: { team: value } }).param).toBe("metadata.team");
  });

  it("rejects metadata that is not an object", () => {
    expect(parseError({ ...base, metadata: ["a"] }).param).toBe("metadata");
  });

  it.each([[[{ type: "wandb", wandb: { project: "x" } }]], [{ type: "wandb" }], ["wandb"]])(
    "rejects integrations %j",
    (integrations) => {
      const error = parseError({ ...base, integrations });
      expect(error.param).toBe("integrations");
      expect(error.code).toBe("unsupported_parameter");
    },
  );

  it.each([
    [{ ...base, dry_run: "yes" }, "dry_run"],
    [{ ...base, model: "" }, "model"],
    [{ ...base, model: 5 }, "model"],
    [{ ...base, training_file: "" }, "training_file"],
    [{ ...base, validation_file: 1 }, "validation_file"],
    [{ ...base, training_file: "f".repeat(129) }, "training_file"],
  ])("rejects a malformed field: %j names %s", (body, param) => {
    expect(parseError(body).param).toBe(param);
  });

  it("reports an unknown field before a missing one", () => {
    expect(parseError({ model: "m", trainingFile: "file-a" }).code).toBe("unknown_parameter");
  });
});

describe("planJob", () => {
  const context = {
    jobId: "ftjob-0000000000000000000000",
    dataset: { examples: 500, maxExampleTokens: 300 },
  };
  const plan = (body: Record<string, unknown>, extra: Partial<Parameters<typeof planJob>[1]> = {}) =>
    planJob(parseCreateJobRequest({ ...base, ...body }), { ...context, ...extra });

  it("plans the job's GPUs: one node for a 7B LoRA, several 8-GPU nodes for chatglm_130b full", () => {
    expect(plan({}).resources).toMatchObject({ nodes: 1, gpusPerNode: 1 });
    const big = plan({ model: "chatglm_130b", method: { type: "full" } });
    expect(big.resources.nodes).toBeGreaterThan(1);
    expect(big.resources.gpusPerNode).toBe(8);
  });

  it("chooses only among the deployment's instance types: each method's compute, then multi-node", () => {
    const instanceTypes = { lora: ["g5.2xlarge"], full: ["p4d.24xlarge"], multiNode: ["p4de.24xlarge"] };
    expect(plan({}, { instanceTypes }).resources).toMatchObject({ nodes: 1, instanceType: "g5.2xlarge" });
    const big = plan({ model: "chatglm_130b", method: { type: "full" } }, { instanceTypes });
    expect(big.resources).toMatchObject({ instanceType: "p4de.24xlarge", gpusPerNode: 8 });
    expect(big.resources.nodes).toBeGreaterThan(1);
  });

  it("refuses with a 400 a job that fits no configured GPU, naming what to change", () => {
    const error = rejection(() =>
      plan(
        { model: "chatglm_130b", method: { type: "full" } },
        { instanceTypes: { lora: [], full: ["g5.2xlarge"], multiNode: [] } },
      ),
    );
    expect(error.code).toBe("insufficient_gpu_memory");
    expect(error.status).toBe(400);
    expect(error.message).toContain("chatglm_130b");
  });

  it("resolves a LoRA job with every default", () => {
    const result = plan({ suffix: "bot" }, { tag: "abc123" });
    expect(result.baseModel.name).toBe("qwen2.5-7b-instruct");
    expect(result.method).toBe("lora");
    expect(result.modelCode).toBe("qwen2.5-7b-bot-abc123");
    expect(result.userProvidedSuffix).toBe("bot");
    expect(result.hyperparameters).toEqual({
      n_epochs: 3,
      batch_size: 1,
      learning_rate_multiplier: 0.5,
      lora_r: 8,
      lora_alpha: 16,
      lora_dropout: 0.05,
      max_seq_length: 512,
      beta: null,
      eval_interval: null,
      early_stopping_patience: null,
      validation_split: 0,
      seed: deriveSeed(context.jobId),
    });
    expect(result.objective).toBe("supervised");
    expect(result.initModel).toBeNull();
  });

  it("keeps the tenant's model code and seed", () => {
    const result = plan({ model_code: "acme-support", seed: 9 });
    expect(result.modelCode).toBe("acme-support");
    expect(result.userProvidedSuffix).toBeNull();
    expect(result.hyperparameters.seed).toBe(9);
  });

  it("generates a code without suffix", () => {
    expect(plan({}, { tag: "zzzzzz" }).modelCode).toBe("qwen2.5-7b-zzzzzz");
  });

  it("trains full-only models with full when no method is named", () => {
    const result = plan({ model: "chatglm_12b", hyperparameters: { n_epochs: 2 } });
    expect(result.method).toBe("full");
    expect(result.hyperparameters.lora_r).toBeNull();
    expect(result.hyperparameters.n_epochs).toBe(2);
  });

  it("rejects an unknown base model as 400 model_not_found on model", () => {
    const error = rejection(() => plan({ model: "gpt-4o-mini" }));
    expect(error.param).toBe("model");
    expect(error.code).toBe("model_not_found");
  });

  it("rejects a model code equal to a base model name", () => {
    const catalog = buildCatalog({
      models: {
        "acme-base": {
          family: "chatml",
          methods: {
            lora: { gpus: 1, minGpuMemoryGiB: 24, instanceType: "g5.2xlarge", pricePer1kTokensUsd: 0.001 },
          },
          maxSeqLength: 4096,
          parameters: 1e9,
          ownedBy: "acme",
        },
      },
    });
    const error = rejection(() => plan({ model_code: "acme-base" }, { catalog }));
    expect(error.code).toBe("invalid_model_code");
    expect(error.param).toBe("model_code");
  });

  it("rejects a method the base model does not allow, naming method.type", () => {
    const error = rejection(() => plan({ model: "chatglm3-6b", method: { type: "full" } }));
    expect(error.param).toBe("method.type");
  });

  it("rejects legacy LoRA hyperparameters for a full-only model, naming the legacy path", () => {
    const error = rejection(() => plan({ model: "chatglm_32b", hyperparameters: { lora_r: 8 } }));
    expect(error.param).toBe("hyperparameters.lora_r");
  });

  it("rejects LoRA hyperparameters for a full job, naming the supervised path", () => {
    const error = rejection(() =>
      plan({
        model: "chatglm_32b",
        method: { type: "supervised", supervised: { hyperparameters: { lora_alpha: 8 } } },
      }),
    );
    expect(error.param).toBe("method.supervised.hyperparameters.lora_alpha");
  });

  it("rejects max_seq_length above the base model's", () => {
    const error = rejection(() =>
      plan({ model: "tiny-chat", method: { type: "lora", hyperparameters: { max_seq_length: 1024 } } }),
    );
    expect(error.param).toBe("method.hyperparameters.max_seq_length");
  });

  it("rejects a batch size larger than the training file", () => {
    const error = rejection(() =>
      plan({ method: { type: "lora", hyperparameters: { batch_size: 64 } } }, { dataset: { examples: 20 } }),
    );
    expect(error.param).toBe("method.hyperparameters.batch_size");
  });

  describe("DPO", () => {
    const dpo = (dpoMethod: Record<string, unknown> = {}, body: Record<string, unknown> = {}) => ({
      method: { type: "dpo", dpo: dpoMethod },
      ...body,
    });
    /** The tenant's succeeded supervised LoRA model of qwen2.5-7b-instruct, as the models table has it. */
    const sft = (extra: Partial<FineTunedModelCandidate> = {}): FineTunedModelCandidate => ({
      modelCode: "acme-sft",
      jobId: "ftjob-sft",
      baseModel: "qwen2.5-7b-instruct",
      method: "lora",
      status: "ready",
      objective: "supervised",
      ...extra,
    });

    it("trains a base model with the default method and beta 0.1, from its own weights", () => {
      const result = plan(dpo());
      expect(result).toMatchObject({ objective: "dpo", method: "lora", initModel: null });
      expect(result.hyperparameters.beta).toBe(0.1);
      expect(plan(dpo({ hyperparameters: { beta: 0.3 } })).hyperparameters.beta).toBe(0.3);
    });

    it("chooses LoRA or full with use_lora, and full by default where LoRA is not offered", () => {
      expect(plan(dpo({ use_lora: false })).method).toBe("full");
      expect(plan(dpo({ use_lora: true })).method).toBe("lora");
      expect(plan(dpo({}, { model: "chatglm_12b" })).method).toBe("full");
    });

    it("rejects use_lora the base model does not offer, naming method.dpo.use_lora", () => {
      const error = rejection(() => plan(dpo({ use_lora: false }, { model: "chatglm3-6b" })));
      expect(error.param).toBe("method.dpo.use_lora");
      expect(error.code).toBe("unsupported_method");
    });

    it("rejects LoRA hyperparameters for a full DPO job, naming the DPO path", () => {
      const error = rejection(() => plan(dpo({ use_lora: false, hyperparameters: { lora_r: 8 } })));
      expect(error.param).toBe("method.dpo.hyperparameters.lora_r");
    });

    it("sizes the GPUs for two sequences per pair: a DPO batch as a supervised batch twice its size", () => {
      const pairs = plan(dpo({ hyperparameters: { batch_size: 4 } }));
      const doubled = plan({ method: { type: "lora", hyperparameters: { batch_size: 8 } } });
      expect(pairs.resources.bytesPerGpu).toEqual(doubled.resources.bytesPerGpu);
    });

    it("starts from the tenant's succeeded supervised model: its base, its method, recorded as the parent", () => {
      const result = plan(dpo({}, { model: "acme-sft" }), { fineTunedModel: sft() });
      expect(result.baseModel.name).toBe("qwen2.5-7b-instruct");
      expect(result.method).toBe("lora");
      expect(result.initModel).toEqual({ modelCode: "acme-sft", jobId: "ftjob-sft", method: "lora" });
      expect(result.modelCode).toMatch(/^qwen2\.5-7b-/);
    });

    it("takes a full model's method when use_lora is absent, and a record older than objectives as supervised", () => {
      const { objective: _objective, ...older } = sft({ method: "full" });
      const result = plan(dpo({}, { model: "acme-sft" }), { fineTunedModel: older });
      expect(result.method).toBe("full");
      expect(result.initModel?.method).toBe("full");
    });

    it.each([
      ["lora", false, "use_lora must be true"],
      ["full", true, "use_lora must be false"],
    ] as const)("rejects a %s model with use_lora %j, explaining why", (method, useLora, message) => {
      const error = rejection(() =>
        plan(dpo({ use_lora: useLora }, { model: "acme-sft" }), { fineTunedModel: sft({ method }) }),
      );
      expect(error.param).toBe("method.dpo.use_lora");
      expect(error.code).toBe("unsupported_method");
      expect(error.message).toContain(message);
    });

    it.each([
      ["an unknown code (no model passed)", undefined],
      ["a model of another code", sft({ modelCode: "other-sft" })],
    ])("answers model_not_found for %s, as for an unknown base model", (_case, fineTunedModel) => {
      const error = rejection(() =>
        plan(dpo({}, { model: "acme-sft" }), fineTunedModel ? { fineTunedModel } : {}),
      );
      expect(error).toMatchObject({ param: "model", code: "model_not_found", status: 400 });
      expect(error.message).toBe(
        "'acme-sft' is not a base model that can be fine-tuned; GET /v4/models lists them.",
      );
    });

    it("keeps a supervised job from starting from a fine-tuned model: the same model_not_found", () => {
      const error = rejection(() => plan({ model: "acme-sft" }, { fineTunedModel: sft() }));
      expect(error).toMatchObject({ param: "model", code: "model_not_found" });
    });

    it("rejects a model whose job has not succeeded", () => {
      for (const status of ["pending", "failed"] as const) {
        const error = rejection(() =>
          plan(dpo({}, { model: "acme-sft" }), { fineTunedModel: sft({ status }) }),
        );
        expect(error).toMatchObject({ param: "model", code: "model_not_ready" });
      }
    });

    it("rejects a DPO model as the starting point", () => {
      const error = rejection(() =>
        plan(dpo({}, { model: "acme-sft" }), { fineTunedModel: sft({ objective: "dpo" }) }),
      );
      expect(error).toMatchObject({ param: "model", code: "invalid_model" });
      expect(error.message).toContain("supervised fine-tuned model");
    });

    it("rejects a model whose base model is no longer offered", () => {
      const error = rejection(() =>
        plan(dpo({}, { model: "acme-sft" }), { fineTunedModel: sft({ baseModel: "retired-7b" }) }),
      );
      expect(error).toMatchObject({ param: "model", code: "model_not_found" });
      expect(error.message).toContain("retired-7b");
    });

    it("checks the hyperparameters against the parent's base model", () => {
      const error = rejection(() =>
        plan(dpo({ hyperparameters: { max_seq_length: 1024 } }, { model: "acme-sft" }), {
          fineTunedModel: sft({ baseModel: "tiny-chat" }),
        }),
      );
      expect(error.param).toBe("method.dpo.hyperparameters.max_seq_length");
    });
  });
});
