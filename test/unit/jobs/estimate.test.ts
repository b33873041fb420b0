import { describe, expect, it } from "vitest";
import { type BaseModel, buildCatalog, findBaseModel } from "../../../lambdas/core/catalog/base-models.ts";
import {
  CPU_CLASS,
  DEVICE_CLASSES,
  deviceClass,
  estimateJob,
  MFU,
  outputTokensOf,
  REFERENCE_PASS_SHARE,
  S3_READ_BYTES_PER_SECOND,
  STARTUP_SECONDS,
  trainingTokensPerSecond,
} from "../../../lambdas/core/jobs/estimate.ts";
import {
  type ResolvedHyperparameters,
  resolveHyperparameters,
} from "../../../lambdas/core/jobs/hyperparameters.ts";
import { planResources } from "../../../lambdas/core/jobs/resources.ts";

const model = (name: string): BaseModel => findBaseModel(name)!;
const hp = (overrides: Partial<ResolvedHyperparameters> = {}): ResolvedHyperparameters => ({
  n_epochs: 3,
  batch_size: 4,
  learning_rate_multiplier: 1,
  lora_r: 8,
  lora_alpha: 16,
  lora_dropout: 0.05,
  max_seq_length: 2048,
  beta: null,
  eval_interval: null,
  early_stopping_patience: null,
  validation_split: 0,
  seed: 1,
  ...overrides,
});

describe("deviceClass", () => {
  it.each([
    ["g5.2xlarge", 1, "A10G"],
    ["g6e.2xlarge", 1, "L40S"],
    ["p4d.24xlarge", 8, "A100-40GB"],
    ["p4de.24xlarge", 8, "A100-80GB"],
    ["p5.48xlarge", 8, "H100"],
    ["p5e.48xlarge", 8, "H200"],
    ["m7i.large", 0, "CPU"],
    ["g5.2xlarge", 0, "CPU"],
    ["x99.huge", 1, "CPU"],
  ])("classes %s with %i GPUs as %s", (instance, gpus, name) => {
    expect(deviceClass(instance, gpus).name).toBe(name);
  });
});

describe("trainingTokensPerSecond", () => {
  it("follows the FLOPs model for a large model: 4 × parameters per token for LoRA", () => {
    const qwen = model("qwen2.5-7b-instruct");
    const expected = (70e12 * MFU) / (4 * qwen.parameters);
    expect(trainingTokensPerSecond(qwen, "lora")).toBeCloseTo(expected, 6);
  });

  it("uses 6 × parameters per token and every GPU for full training", () => {
    const big = model("chatglm_130b");
    const expected = (32 * 989e12 * MFU) / (6 * big.parameters);
    expect(trainingTokensPerSecond(big, "full")).toBeCloseTo(expected, 6);
  });

  it("caps small models at the device's tokens per second", () => {
    expect(trainingTokensPerSecond(model("tiny-chat"), "lora")).toBe(CPU_CLASS.maxTokensPerSecond);
    const fast = buildCatalog({
      models: { "qwen2.5-0.5b-instruct": { methods: { lora: { instanceType: "p5.48xlarge" } } } },
    });
    const small = findBaseModel("qwen2.5-0.5b-instruct", fast)!;
    expect(trainingTokensPerSecond(small, "lora")).toBe(DEVICE_CLASSES.p5!.maxTokensPerSecond);
  });

  it("refuses a method the model does not have", () => {
    expect(() => trainingTokensPerSecond(model("chatglm3-6b"), "full")).toThrow();
  });
});

describe("estimateJob", () => {
  it("estimates tokens × epochs, price and time for a LoRA job", () => {
    const qwen = model("qwen2.5-7b-instruct");
    const estimate = estimateJob({
      baseModel: qwen,
      method: "lora",
      hyperparameters: hp(),
      dataset: { examples: 1000, totalTokens: 500_000 },
      jobsAhead: 2,
    });
    const tps = trainingTokensPerSecond(qwen, "lora");
    const duration = Math.ceil(
      STARTUP_SECONDS + (qwen.parameters * 2) / S3_READ_BYTES_PER_SECOND + 1_500_000 / tps,
    );
    expect(estimate).toEqual({
      object: "fine_tuning.job.estimate",
      model: "qwen2.5-7b-instruct",
      objective: "supervised",
      method: "lora",
      trained_tokens: 1_500_000,
      estimated_cost_usd: 1.2,
      estimated_duration_seconds: duration,
      estimated_gpu_hours: Math.round((duration / 3600) * 1000) / 1000,
      queue_position: 3,
      hyperparameters: hp(),
      assumptions: {
        tokens_per_second: Math.round(tps),
        device: "A10G",
        gpus: 1,
        instance_type: "g5.2xlarge",
        price_per_1k_tokens_usd: 0.0008,
        sequences_per_example: 1,
      },
    });
  });

  it("shows the resource plan, and sizes speed and GPU-hours by its GPUs", () => {
    const glm = model("chatglm_130b");
    const resources = planResources({ model: glm, method: "full", maxSeqLength: 2048, microBatchSize: 1 });
    const estimate = estimateJob({
      baseModel: glm,
      method: "full",
      hyperparameters: hp({ max_seq_length: 2048 }),
      dataset: { examples: 1000, totalTokens: 1_000_000 },
      jobsAhead: 0,
      resources,
    });
    expect(estimate.resources).toEqual({
      nodes: resources.nodes,
      gpus_per_node: 8,
      instance_type: resources.instanceType,
    });
    expect(resources.nodes).toBeGreaterThan(1);
    const gpus = resources.nodes * resources.gpusPerNode;
    expect(estimate.assumptions.gpus).toBe(gpus);
    expect(estimate.estimated_gpu_hours).toBeCloseTo((gpus * estimate.estimated_duration_seconds) / 3600, 2);
    const device = DEVICE_CLASSES[resources.instanceType.split(".")[0]!]!;
    expect(trainingTokensPerSecond(glm, "full", resources)).toBeCloseTo(
      Math.min(
        (gpus * device.peakTflops * 1e12 * MFU) / (6 * glm.parameters),
        gpus * device.maxTokensPerSecond,
      ),
    );
  });

  it("does not count tokens past max_seq_length, which are truncated", () => {
    const estimate = estimateJob({
      baseModel: model("tiny-chat"),
      method: "full",
      hyperparameters: hp({ max_seq_length: 512, n_epochs: 2 }),
      dataset: { examples: 10, totalTokens: 100_000 },
      jobsAhead: 0,
    });
    expect(estimate.trained_tokens).toBe(10 * 512 * 2);
  });

  it("puts a job with nothing ahead first in the queue", () => {
    const estimate = estimateJob({
      baseModel: model("tiny-chat"),
      method: "lora",
      hyperparameters: hp({ max_seq_length: 512 }),
      dataset: { examples: 10, totalTokens: 1000 },
      jobsAhead: 0,
    });
    expect(estimate.queue_position).toBe(1);
    expect(estimate.assumptions.device).toBe("CPU");
    expect(estimate.estimated_cost_usd).toBe(0.000003);
  });

  it("takes longer and costs more for full training than LoRA of the same model", () => {
    const args = {
      baseModel: model("glm-4-9b-chat"),
      hyperparameters: hp(),
      dataset: { examples: 2000, totalTokens: 2_000_000 },
      jobsAhead: 0,
    };
    const lora = estimateJob({ ...args, method: "lora" });
    const full = estimateJob({ ...args, method: "full" });
    expect(full.estimated_cost_usd).toBeGreaterThan(lora.estimated_cost_usd);
    expect(full.trained_tokens).toBe(lora.trained_tokens);
  });

  it("grows with epochs and dataset size", () => {
    const at = (n_epochs: number, totalTokens: number) =>
      estimateJob({
        baseModel: model("chatglm3-6b"),
        method: "lora",
        hyperparameters: hp({ n_epochs }),
        dataset: { examples: 1000, totalTokens },
        jobsAhead: 0,
      });
    expect(at(2, 1e6).estimated_duration_seconds).toBeGreaterThan(at(1, 1e6).estimated_duration_seconds);
    expect(at(1, 2e6).estimated_cost_usd).toBeCloseTo(2 * at(1, 1e6).estimated_cost_usd, 6);
  });

  it("works with hyperparameters resolved for the job and a catalog override's prices", () => {
    const catalog = buildCatalog({
      models: { "chatglm3-6b": { methods: { lora: { pricePer1kTokensUsd: 0.01 } } } },
    });
    const glm = findBaseModel("chatglm3-6b", catalog)!;
    const resolved = resolveHyperparameters("lora", {}, glm, { examples: 100 }, 5);
    const estimate = estimateJob({
      baseModel: glm,
      method: "lora",
      hyperparameters: resolved,
      dataset: { examples: 100, totalTokens: 10_000 },
      jobsAhead: 0,
    });
    expect(estimate.trained_tokens).toBe(30_000);
    expect(estimate.estimated_cost_usd).toBe(0.3);
  });

  it("treats negative inputs as zero", () => {
    const estimate = estimateJob({
      baseModel: model("tiny-chat"),
      method: "lora",
      hyperparameters: hp({ max_seq_length: 512 }),
      dataset: { examples: -1, totalTokens: -5 },
      jobsAhead: -3,
    });
    expect(estimate.trained_tokens).toBe(0);
    expect(estimate.queue_position).toBe(1);
    expect(estimate.estimated_duration_seconds).toBeGreaterThanOrEqual(STARTUP_SECONDS);
  });

  describe("DPO", () => {
    const qwen = model("qwen2.5-7b-instruct");
    const dpo = (dataset: { examples: number; totalTokens: number; outputTokens?: number }, max = 2048) =>
      estimateJob({
        baseModel: qwen,
        objective: "dpo",
        method: "lora",
        hyperparameters: hp({ n_epochs: 1, beta: 0.1, max_seq_length: max }),
        dataset,
        jobsAhead: 0,
      });

    it("trains two sequences per pair: the prompt with each output, so the prompt twice", () => {
      // 100 pairs of 300 counted tokens (100 prompt + 2 × 100 outputs): 2 × 30,000 − 20,000 = 40,000.
      const estimate = dpo({ examples: 100, totalTokens: 30_000, outputTokens: 20_000 });
      expect(estimate.trained_tokens).toBe(40_000);
      expect(estimate).toMatchObject({ objective: "dpo", assumptions: { sequences_per_example: 2 } });
    });

    it("counts the prompt with both outputs twice when the outputs were not measured: an upper bound", () => {
      expect(dpo({ examples: 100, totalTokens: 30_000 }).trained_tokens).toBe(60_000);
    });

    it("caps each of the two sequences at max_seq_length", () => {
      expect(dpo({ examples: 10, totalTokens: 100_000, outputTokens: 50_000 }, 512).trained_tokens).toBe(
        2 * 10 * 512,
      );
    });

    it("adds one reference pass over an epoch's tokens, a forward pass: half a LoRA token's time each", () => {
      const dataset = { examples: 1000, totalTokens: 1_000_000, outputTokens: 1_000_000 };
      const args = { baseModel: qwen, method: "lora" as const, dataset, jobsAhead: 0 };
      const tps = trainingTokensPerSecond(qwen, "lora");
      const startup = STARTUP_SECONDS + (qwen.parameters * 2) / S3_READ_BYTES_PER_SECOND;
      for (const n_epochs of [1, 3]) {
        const preference = estimateJob({
          ...args,
          objective: "dpo",
          hyperparameters: hp({ n_epochs, beta: 0.1 }),
        });
        const supervised = estimateJob({ ...args, hyperparameters: hp({ n_epochs }) });
        expect(preference.trained_tokens).toBe(supervised.trained_tokens);
        expect(preference.estimated_duration_seconds).toBe(
          Math.ceil(startup + (n_epochs * 1_000_000 + REFERENCE_PASS_SHARE.lora * 1_000_000) / tps),
        );
      }
      expect(REFERENCE_PASS_SHARE).toEqual({ lora: 0.5, full: 1 / 3 });
    });
  });

  it("trains on the share of the tokens validation_split leaves", () => {
    const estimate = estimateJob({
      baseModel: model("qwen2.5-7b-instruct"),
      method: "lora",
      hyperparameters: hp({ n_epochs: 1, validation_split: 0.2 }),
      dataset: { examples: 1000, totalTokens: 500_000 },
      jobsAhead: 0,
    });
    expect(estimate.trained_tokens).toBe(400_000);
  });

  it.each([
    [{ tokens: { total: 10, assistant: 4 } }, 4],
    [{ tokens: { total: 10 } }, undefined],
    [{ tokens: { assistant: "many" } }, undefined],
    [undefined, undefined],
    ["garbage", undefined],
  ])("reads the assistant tokens of the statistics %j as %s", (statistics, expected) => {
    expect(outputTokensOf(statistics)).toBe(expected);
  });

  it("refuses a method the model does not have", () => {
    expect(() =>
      estimateJob({
        baseModel: model("chatglm_12b"),
        method: "lora",
        hyperparameters: hp(),
        dataset: { examples: 1, totalTokens: 1 },
        jobsAhead: 0,
      }),
    ).toThrow();
  });
});
