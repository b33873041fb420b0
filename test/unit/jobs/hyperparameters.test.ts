import { describe, expect, it } from "vitest";
import { type BaseModel, findBaseModel } from "../../../lambdas/core/catalog/base-models.ts";
import { CATALOG_FILE } from "../../../lambdas/core/catalog/catalog-file.ts";
import { parseCreateJobRequest } from "../../../lambdas/core/jobs/create-request.ts";
import {
  autoBatchSize,
  autoEpochs,
  autoLearningRateMultiplier,
  autoMaxSeqLength,
  checkMethod,
  checkObjective,
  checkValidationData,
  deriveSeed,
  hyperparametersEnv,
  hyperparametersSchema,
  OTHER_OBJECTIVES_ONLY,
  resolveHyperparameters,
  SEED_MAX,
  trainingExamples,
} from "../../../lambdas/core/jobs/hyperparameters.ts";
import { rejection } from "../../fixtures/errors.ts";

const model = (name: string): BaseModel => findBaseModel(name)!;
const qwen = model("qwen2.5-7b-instruct");

describe("hyperparameter bounds", () => {
  it.each([
    ["n_epochs", 1],
    ["n_epochs", 50],
    ["batch_size", 1],
    ["batch_size", 256],
    ["learning_rate_multiplier", 0.0001],
    ["learning_rate_multiplier", 10],
    ["lora_r", 1],
    ["lora_r", 64],
    ["lora_alpha", 1],
    ["lora_alpha", 1024],
    ["lora_dropout", 0],
    ["lora_dropout", 0.5],
    ["max_seq_length", 64],
    ["max_seq_length", 8192],
    ["beta", 0.0001],
    ["beta", 2],
    ["eval_interval", 1],
    ["eval_interval", 10_000_000],
    ["early_stopping_patience", 1],
    ["early_stopping_patience", 1000],
    ["validation_split", 0],
    ["validation_split", 0.2],
  ])("accepts %s = %s", (name, value) => {
    expect(hyperparametersSchema.safeParse({ [name]: value }).success).toBe(true);
  });

  it.each([
    ["n_epochs", 0],
    ["n_epochs", 51],
    ["n_epochs", 2.5],
    ["batch_size", 0],
    ["batch_size", 257],
    ["batch_size", 8.5],
    ["learning_rate_multiplier", 0],
    ["learning_rate_multiplier", -1],
    ["learning_rate_multiplier", 10.01],
    ["lora_r", 0],
    ["lora_r", 65],
    ["lora_r", 8.5],
    ["lora_alpha", 0],
    ["lora_alpha", 1025],
    ["lora_alpha", 16.5],
    ["lora_dropout", -0.01],
    ["lora_dropout", 0.51],
    ["max_seq_length", 63],
    ["max_seq_length", 100.5],
    ["n_epochs", "3"],
    ["n_epochs", "AUTO"],
    ["n_epochs", null],
    ["n_epochs", true],
    ["batch_size", Number.NaN],
    ["batch_size", Number.POSITIVE_INFINITY],
    ["beta", 0],
    ["beta", -0.1],
    ["beta", 2.01],
    ["eval_interval", 0],
    ["eval_interval", 10_000_001],
    ["eval_interval", 2.5],
    ["early_stopping_patience", 0],
    ["early_stopping_patience", 1001],
    ["early_stopping_patience", 1.5],
    ["validation_split", -0.01],
    ["validation_split", 0.21],
    ["validation_split", null],
  ])("rejects %s = %j with a message giving the bounds", (name, value) => {
    const result = hyperparametersSchema.safeParse({ [name]: value });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual([name]);
    expect(result.error?.issues[0]?.message).toMatch(
      new RegExp(`^${name} must be "auto" or an? (integer|number)`),
    );
  });

  it.each([
    "n_epochs",
    "batch_size",
    "learning_rate_multiplier",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "max_seq_length",
    "beta",
    "eval_interval",
    "early_stopping_patience",
    "validation_split",
  ])('accepts "auto" for %s', (name) => {
    expect(hyperparametersSchema.safeParse({ [name]: "auto" }).success).toBe(true);
  });

  it("refuses a create-job lora_r of 65 with a 400 naming 64, the largest rank the LoRA server loads", () => {
    const error = rejection(() =>
      parseCreateJobRequest({
        model: "qwen2.5-7b-instruct",
        training_file: "file-abc",
        method: { type: "lora", hyperparameters: { lora_r: 65 } },
      }),
    );
    expect(error.status).toBe(400);
    expect(error.param).toBe("method.hyperparameters.lora_r");
    expect(error.message).toContain('lora_r must be "auto" or an integer from 1 to 64');
  });

  it("rejects unknown hyperparameters", () => {
    const result = hyperparametersSchema.safeParse({ learning_rate: 0.1 });
    expect(result.error?.issues[0]?.code).toBe("unrecognized_keys");
  });
});

describe("checkMethod", () => {
  it("rejects a method the base model does not allow, naming method.type", () => {
    const error = rejection(() => checkMethod("full", {}, model("chatglm3-6b")));
    expect(error.param).toBe("method.type");
    expect(error.code).toBe("unsupported_method");
    expect(error.message).toContain("allowed: lora");
  });

  it("rejects LoRA for a full-only model", () => {
    expect(rejection(() => checkMethod("lora", {}, model("chatglm_130b"))).param).toBe("method.type");
  });

  it.each(["lora_r", "lora_alpha", "lora_dropout"] as const)(
    "rejects %s for a full job, naming the param",
    (name) => {
      const error = rejection(() => checkMethod("full", { [name]: "auto" }, qwen));
      expect(error.param).toBe(`method.hyperparameters.${name}`);
      expect(error.status).toBe(400);
    },
  );

  it("names the legacy path when the hyperparameters came from the top level", () => {
    expect(rejection(() => checkMethod("full", { lora_r: 8 }, qwen, "hyperparameters")).param).toBe(
      "hyperparameters.lora_r",
    );
  });

  it("accepts the LoRA hyperparameters for a LoRA job", () => {
    expect(() => checkMethod("lora", { lora_r: 16, lora_alpha: 32, lora_dropout: 0.1 }, qwen)).not.toThrow();
  });

  it("rejects max_seq_length above the base model's maximum", () => {
    const error = rejection(() => checkMethod("lora", { max_seq_length: 1024 }, model("tiny-chat")));
    expect(error.param).toBe("method.hyperparameters.max_seq_length");
    expect(error.message).toContain("at most 512");
  });

  it("accepts max_seq_length equal to the base model's maximum", () => {
    expect(() => checkMethod("lora", { max_seq_length: 512 }, model("tiny-chat"))).not.toThrow();
  });
});

describe("checkObjective", () => {
  it("takes beta, from the catalog's objectives, away from supervised jobs only", () => {
    expect(OTHER_OBJECTIVES_ONLY).toEqual({ supervised: ["beta"], dpo: [] });
  });

  it.each([
    ["method.hyperparameters", "method.hyperparameters.beta"],
    ["method.supervised.hyperparameters", "method.supervised.hyperparameters.beta"],
    ["hyperparameters", "hyperparameters.beta"],
  ])("rejects beta for a supervised job, naming %s.beta", (param, expected) => {
    const error = rejection(() => checkObjective("supervised", { beta: 0.1 }, param));
    expect(error.param).toBe(expected);
    expect(error.status).toBe(400);
    expect(error.message).toContain("'dpo' only");
  });

  it('rejects beta "auto" for a supervised job too: the field itself is wrong there', () => {
    expect(rejection(() => checkObjective("supervised", { beta: "auto" })).param).toBe(
      "method.hyperparameters.beta",
    );
  });

  it("accepts beta for a DPO job, and every other hyperparameter for both objectives", () => {
    const common = { n_epochs: 2, eval_interval: 5, early_stopping_patience: 2, validation_split: 0.1 };
    expect(() => checkObjective("dpo", { ...common, beta: 0.5 })).not.toThrow();
    expect(() => checkObjective("supervised", common)).not.toThrow();
  });
});

describe("checkValidationData", () => {
  it("rejects validation_split above 0 beside a validation_file, naming the split", () => {
    const error = rejection(() =>
      checkValidationData({ validation_split: 0.1 }, true, "method.dpo.hyperparameters"),
    );
    expect(error.param).toBe("method.dpo.hyperparameters.validation_split");
    expect(error.message).toContain("not both");
  });

  it("accepts a split of 0 (or auto) beside a validation_file, and a split without one", () => {
    expect(() => checkValidationData({ validation_split: 0 }, true)).not.toThrow();
    expect(() => checkValidationData({ validation_split: "auto" }, true)).not.toThrow();
    expect(() => checkValidationData({ validation_split: 0.2 }, false)).not.toThrow();
  });

  it("rejects early_stopping_patience without validation data, which it could never stop on", () => {
    const error = rejection(() =>
      checkValidationData({ early_stopping_patience: 3 }, false, "hyperparameters"),
    );
    expect(error.param).toBe("hyperparameters.early_stopping_patience");
    expect(error.message).toContain("needs validation data");
  });

  it("accepts early_stopping_patience with a validation_file or a split", () => {
    expect(() => checkValidationData({ early_stopping_patience: 3 }, true)).not.toThrow();
    expect(() =>
      checkValidationData({ early_stopping_patience: 3, validation_split: 0.1 }, false),
    ).not.toThrow();
    expect(() => checkValidationData({ early_stopping_patience: "auto" }, false)).not.toThrow();
  });
});

describe("trainingExamples (what validation_split leaves, as the trainer splits)", () => {
  it.each([
    [100, 0, 100],
    [100, 0.1, 90],
    [10, 0.2, 8],
    [10, 0.01, 9], // at least one held out
    [2, 0.2, 1], // at least one left
    [1, 0.2, 1], // no split below two examples
    [25, 0.1, 23], // round(2.5) = 2, Python's half to even
    [35, 0.1, 31], // round(3.5) = 4
    [0, 0.1, 1],
  ])("%i examples with a split of %s train on %i", (examples, split, expected) => {
    expect(trainingExamples(examples, split)).toBe(expected);
  });
});

describe("auto n_epochs (OpenAI's rule)", () => {
  it.each([
    [1, 25],
    [4, 25],
    [10, 10],
    [20, 5],
    [33, 4],
    [34, 3],
    [100, 3],
    [8333, 3],
    [8334, 2],
    [12_500, 2],
    [12_501, 1],
    [1_000_000, 1],
  ])("trains %i examples for %i epochs", (examples, epochs) => {
    expect(autoEpochs(examples)).toBe(epochs);
  });
});

describe("auto batch_size (about 0.2% of examples, 1–32)", () => {
  it.each([
    [1, 1],
    [10, 1],
    [749, 1],
    [750, 2],
    [5000, 10],
    [16_000, 32],
    [1_000_000, 32],
  ])("uses batches of %i for %i examples", (examples, size) => {
    expect(autoBatchSize(examples)).toBe(size);
  });
});

describe("auto learning_rate_multiplier (square-root scaling from batches of 8)", () => {
  it.each([
    [1, 0.5],
    [2, 0.5],
    [8, 1],
    [18, 1.5],
    [12, 1.225],
    [32, 2],
    [256, 2],
  ])("uses %s for batches of %s", (batch, multiplier) => {
    expect(autoLearningRateMultiplier(batch)).toBe(multiplier);
  });
});

describe("auto max_seq_length", () => {
  it.each([
    [8192, undefined, 2048],
    [512, undefined, 512],
    [8192, 10, 64],
    [8192, 64, 64],
    [8192, 65, 128],
    [8192, 1000, 1024],
    [8192, 1024, 1024],
    [8192, 5000, 8192],
    [8192, 100_000, 8192],
    [512, 600, 512],
    [8192, 0, 2048],
    [8192, Number.NaN, 2048],
  ])("with a model max of %i and a longest example of %s, is %i", (max, longest, expected) => {
    expect(autoMaxSeqLength(max, longest)).toBe(expected);
  });
});

describe("resolveHyperparameters", () => {
  it("resolves every auto for a LoRA job", () => {
    expect(resolveHyperparameters("lora", {}, qwen, { examples: 5000, maxExampleTokens: 900 }, 42)).toEqual({
      n_epochs: 3,
      batch_size: 10,
      learning_rate_multiplier: 1.118,
      lora_r: 8,
      lora_alpha: 16,
      lora_dropout: 0.05,
      max_seq_length: 1024,
      beta: null,
      eval_interval: null,
      early_stopping_patience: null,
      validation_split: 0,
      seed: 42,
    });
  });

  it("sets the LoRA keys to null for a full job", () => {
    const resolved = resolveHyperparameters("full", {}, qwen, { examples: 50 }, 7);
    expect(resolved).toEqual({
      n_epochs: 3,
      batch_size: 1,
      learning_rate_multiplier: 0.5,
      lora_r: null,
      lora_alpha: null,
      lora_dropout: null,
      max_seq_length: 2048,
      beta: null,
      eval_interval: null,
      early_stopping_patience: null,
      validation_split: 0,
      seed: 7,
    });
  });

  it("keeps explicit numbers and treats 'auto' like an absent field", () => {
    const resolved = resolveHyperparameters(
      "lora",
      {
        n_epochs: 7,
        batch_size: "auto",
        learning_rate_multiplier: 0.3,
        lora_r: 64,
        lora_alpha: "auto",
        lora_dropout: 0,
        max_seq_length: 4096,
      },
      qwen,
      { examples: 1000 },
      1,
    );
    expect(resolved).toEqual({
      n_epochs: 7,
      batch_size: 2,
      learning_rate_multiplier: 0.3,
      lora_r: 64,
      lora_alpha: 128,
      lora_dropout: 0,
      max_seq_length: 4096,
      beta: null,
      eval_interval: null,
      early_stopping_patience: null,
      validation_split: 0,
      seed: 1,
    });
  });

  it("resolves beta for a DPO job: the catalog's 0.1 for auto, else as given", () => {
    const dpo = (input: Parameters<typeof resolveHyperparameters>[1]) =>
      resolveHyperparameters("lora", input, qwen, { examples: 100 }, 1, "method.dpo.hyperparameters", "dpo");
    expect(dpo({}).beta).toBe(0.1);
    expect(dpo({ beta: "auto" }).beta).toBe(0.1);
    expect(dpo({ beta: 0.5 }).beta).toBe(0.5);
  });

  it("keeps the evaluation hyperparameters as given; auto evaluates about ten times, stops never, splits nothing", () => {
    const given = { eval_interval: 25, early_stopping_patience: 4, validation_split: 0.1 };
    expect(resolveHyperparameters("full", given, qwen, { examples: 100 }, 1)).toMatchObject(given);
    const auto = {
      eval_interval: "auto",
      early_stopping_patience: "auto",
      validation_split: "auto",
    } as const;
    expect(resolveHyperparameters("full", auto, qwen, { examples: 100 }, 1)).toMatchObject({
      eval_interval: null,
      early_stopping_patience: null,
      validation_split: 0,
    });
  });

  it("plans on the examples validation_split leaves: auto batch and epochs, and the batch size check", () => {
    // 5000 examples, 0.2 held out: 4000 train, so auto batch_size is 8 (0.2%), not 10.
    const split = resolveHyperparameters("lora", { validation_split: 0.2 }, qwen, { examples: 5000 }, 1);
    expect(split.batch_size).toBe(8);
    const error = rejection(() =>
      resolveHyperparameters("lora", { batch_size: 10, validation_split: 0.2 }, qwen, { examples: 10 }, 1),
    );
    expect(error.param).toBe("method.hyperparameters.batch_size");
    expect(error.message).toContain("8 training examples left after validation_split");
  });

  it("derives auto lora_alpha as twice the largest lora_r, within lora_alpha's bound", () => {
    expect(resolveHyperparameters("lora", { lora_r: 64 }, qwen, { examples: 100 }, 1).lora_alpha).toBe(128);
  });

  it("rejects an explicit batch size larger than the number of examples", () => {
    const error = rejection(() =>
      resolveHyperparameters("lora", { batch_size: 16 }, qwen, { examples: 10 }, 1),
    );
    expect(error.param).toBe("method.hyperparameters.batch_size");
    expect(error.message).toContain("10 training examples");
  });

  it("accepts a batch size equal to the number of examples", () => {
    expect(resolveHyperparameters("lora", { batch_size: 10 }, qwen, { examples: 10 }, 1).batch_size).toBe(10);
  });

  it("treats an empty dataset like one example rather than dividing by zero", () => {
    const resolved = resolveHyperparameters("lora", {}, qwen, { examples: 0 }, 1);
    expect(resolved.batch_size).toBe(1);
    expect(resolved.n_epochs).toBe(25);
  });

  it("resolves the tiny model's max_seq_length within its 512 tokens", () => {
    expect(resolveHyperparameters("full", {}, model("tiny-chat"), { examples: 20 }, 1).max_seq_length).toBe(
      512,
    );
  });
});

describe("hyperparametersEnv", () => {
  it("is the JSON the trainer receives, every key present, in a fixed order", () => {
    const resolved = resolveHyperparameters("full", {}, qwen, { examples: 50 }, 7);
    expect(hyperparametersEnv(resolved)).toBe(
      '{"n_epochs":3,"batch_size":1,"learning_rate_multiplier":0.5,"lora_r":null,"lora_alpha":null,"lora_dropout":null,"max_seq_length":2048,"beta":null,"eval_interval":null,"early_stopping_patience":null,"validation_split":0,"seed":7}',
    );
  });

  it("names only hyperparameters the catalog has (the trainer rejects any other key)", () => {
    const resolved = resolveHyperparameters("lora", {}, qwen, { examples: 50 }, 7, undefined, "dpo");
    const keys = Object.keys(JSON.parse(hyperparametersEnv(resolved)));
    expect(keys.filter((key) => !(key in CATALOG_FILE.hyperparameters))).toEqual([]);
    expect(JSON.parse(hyperparametersEnv(resolved)).beta).toBe(0.1);
  });

  it("sends a record stored before the evaluation keys with them as their absence meant", () => {
    const { beta, eval_interval, early_stopping_patience, validation_split, ...older } =
      resolveHyperparameters("lora", {}, qwen, { examples: 50 }, 7);
    expect(JSON.parse(hyperparametersEnv(older))).toMatchObject({
      beta: null,
      eval_interval: null,
      early_stopping_patience: null,
      validation_split: 0,
    });
  });
});

describe("deriveSeed", () => {
  it("is stable for a job id and within 0..2^31-1", () => {
    const seed = deriveSeed("ftjob-01234567890abcdefghij");
    expect(seed).toBe(deriveSeed("ftjob-01234567890abcdefghij"));
    expect(Number.isInteger(seed)).toBe(true);
    expect(seed).toBeGreaterThanOrEqual(0);
    expect(seed).toBeLessThanOrEqual(SEED_MAX);
  });

  it("differs between job ids", () => {
    const seeds = new Set(Array.from({ length: 50 }, (_, i) => deriveSeed(`ftjob-${i}`)));
    expect(seeds.size).toBe(50);
  });
});
