import { describe, expect, it } from "vitest";
import {
  allowedMethods,
  type BaseModel,
  buildCatalog,
  DEFAULT_CATALOG,
  deriveArchitecture,
  findBaseModel,
  modelArchitecture,
  type TrainingMethod,
} from "../../../lambdas/core/catalog/base-models.ts";
import { InvalidRequestError } from "../../../lambdas/core/errors.ts";
import { autoMaxSeqLength } from "../../../lambdas/core/jobs/hyperparameters.ts";
import {
  architectureParameters,
  blockParameters,
  bytesPerGpu,
  type GpuInstanceType,
  INSTANCE_TYPES,
  loraParameters,
  PLANNER,
  type PlanInput,
  planResources,
  type ResourcePlan,
  rootParameters,
  selectInstanceTypes,
  toResourcesObject,
} from "../../../lambdas/core/jobs/resources.ts";
import { operatorModel } from "../../fixtures/catalog.ts";
import { rejection } from "../../fixtures/errors.ts";

const GIB = 2 ** 30;
const model = (name: string): BaseModel => findBaseModel(name)!;
const usable = (plan: ResourcePlan) => plan.gpuMemoryBytes * PLANNER.usableFraction;
const typeNamed = (name: string): GpuInstanceType => INSTANCE_TYPES.find((type) => type.name === name)!;

/** The plan at the "auto" max_seq_length without statistics (2048, or the model's max) and micro-batch 1. */
const plan = (name: string, method: TrainingMethod, extra: Partial<PlanInput> = {}) =>
  planResources({
    model: model(name),
    method,
    maxSeqLength: autoMaxSeqLength(model(name).maxSeqLength),
    microBatchSize: 1,
    ...extra,
  });

/** Every catalog model × allowed method at its default max_seq_length, micro-batch 1 (the README's table). */
const TABLE: [string, TrainingMethod, number, number, string, boolean, string][] = [
  // model, method, nodes, GPUs per node, instance type, sharded, GiB per GPU
  ["chatglm3-6b", "lora", 1, 1, "g6.2xlarge", false, "17.0"],
  ["chatglm_12b", "full", 1, 8, "p4d.24xlarge", true, "33.6"],
  ["chatglm_32b", "full", 2, 8, "p4de.24xlarge", true, "45.8"],
  ["chatglm_66b", "full", 3, 8, "p4de.24xlarge", true, "60.4"],
  ["chatglm_130b", "full", 3, 8, "p5e.48xlarge", true, "114.3"],
  ["glm-4-9b-chat", "lora", 1, 1, "g6e.2xlarge", false, "24.1"],
  ["glm-4-9b-chat", "full", 1, 8, "p4d.24xlarge", true, "31.9"],
  ["qwen2.5-0.5b-instruct", "lora", 1, 1, "g6.2xlarge", false, "6.1"],
  ["qwen2.5-0.5b-instruct", "full", 1, 1, "g6.2xlarge", false, "13.2"],
  ["qwen2.5-7b-instruct", "lora", 1, 1, "g6e.2xlarge", false, "20.7"],
  ["qwen2.5-7b-instruct", "full", 1, 8, "p4d.24xlarge", true, "27.9"],
  ["tiny-chat", "lora", 1, 1, "g6.2xlarge", false, "3.0"],
  ["tiny-chat", "full", 1, 1, "g6.2xlarge", false, "3.1"],
];

describe("planResources over the catalog", () => {
  it("has a row for every catalog model × allowed method", () => {
    const pairs = DEFAULT_CATALOG.flatMap((m) => allowedMethods(m).map((method) => `${m.name}/${method}`));
    expect(TABLE.map(([name, method]) => `${name}/${method}`).sort()).toEqual(pairs.sort());
  });

  it.each(TABLE)(
    "plans %s %s as %i × %i GPUs of %s (sharded %s, %s GiB per GPU)",
    (name, method, nodes, gpus, type, sharded, gib) => {
      const result = plan(name, method);
      expect((result.bytesPerGpu.total / GIB).toFixed(1)).toBe(gib);
      expect(toResourcesObject(result)).toEqual({ nodes, gpus_per_node: gpus, instance_type: type });
      expect(result.sharded).toBe(sharded);
      expect(result.gpu).toBe(typeNamed(type).gpu);
      expect(result.usdPerHour).toBeCloseTo(typeNamed(type).usdPerHour * nodes, 2);
      expect(result.gpuMemoryBytes).toBe(Math.round(typeNamed(type).gpuMemoryGiB * GIB));
    },
  );

  it.each(TABLE)("fits %s %s into the usable memory with the parts adding up", (name, method) => {
    const result = plan(name, method);
    const bytes = result.bytesPerGpu;
    expect(bytes.total).toBeLessThanOrEqual(usable(result));
    expect(bytes.total).toBe(
      bytes.weights + bytes.gradients + bytes.optimizer + bytes.activations + bytes.overhead,
    );
    expect(bytes.overhead).toBe(PLANNER.overheadBytes);
    for (const part of Object.values(bytes)) expect(Number.isInteger(part) && part >= 0).toBe(true);
  });

  it.each(TABLE)("finds no cheaper configuration for %s %s that fits", (name, method) => {
    const chosen = plan(name, method);
    const m = model(name);
    const maxSeqLength = autoMaxSeqLength(m.maxSeqLength);
    for (const type of INSTANCE_TYPES) {
      for (let nodes = 1; nodes <= (type.multiNode ? PLANNER.maxNodes : 1); nodes++) {
        if (type.usdPerHour * nodes >= chosen.usdPerHour - 0.005) continue;
        const limit = type.gpuMemoryGiB * GIB * PLANNER.usableFraction;
        const need = bytesPerGpu({
          model: m,
          method,
          maxSeqLength,
          microBatchSize: 1,
          worldSize: nodes * type.gpus,
        });
        expect(need.total, `${nodes} × ${type.name}`).toBeGreaterThan(limit);
      }
    }
  });

  it("sizes the training state as the formula says: 16 bytes per parameter over the GPUs for full", () => {
    const m = model("chatglm_66b");
    const result = plan("chatglm_66b", "full");
    const n = result.nodes * result.gpusPerNode;
    const arch = modelArchitecture(m);
    const root = rootParameters(arch);
    const block = blockParameters(arch);
    expect(root).toBe(2 * 65_024 * 8192); // untied: embedding and output head
    expect(result.bytesPerGpu.optimizer).toBe(Math.ceil((8 * m.parameters) / n));
    expect(result.bytesPerGpu.weights).toBe(Math.ceil((4 * m.parameters) / n + 2 * (root + 2 * block)));
    expect(result.bytesPerGpu.gradients).toBe(Math.ceil((4 * m.parameters) / n + 4 * (root + block)));
  });

  it("keeps a one-GPU LoRA base in bf16 with fp32 adapters and their AdamW state", () => {
    const m = model("chatglm3-6b");
    const t = loraParameters(modelArchitecture(m), 8);
    const result = plan("chatglm3-6b", "lora");
    expect(result.bytesPerGpu.weights).toBe(Math.ceil(2 * m.parameters + 4 * t));
    expect(result.bytesPerGpu.gradients).toBe(Math.ceil(4 * t));
    expect(result.bytesPerGpu.optimizer).toBe(Math.ceil(8 * t));
    // r 8 on every linear layer of 28 blocks: about 0.3% of the model.
    expect(t / m.parameters).toBeGreaterThan(0.002);
    expect(t / m.parameters).toBeLessThan(0.004);
    expect(plan("chatglm3-6b", "lora", { loraRank: 64 }).bytesPerGpu.optimizer).toBe(Math.ceil(8 * 8 * t));
  });

  it("keeps a LoRA base in fp32 shards with sharded adapters on several GPUs, as the trainer's FSDP2 group does", () => {
    const m = model("chatglm3-6b");
    const arch = modelArchitecture(m);
    const t = loraParameters(arch, 8);
    const bytes = bytesPerGpu({
      model: m,
      method: "lora",
      maxSeqLength: 2048,
      microBatchSize: 1,
      worldSize: 8,
    });
    const gathered = 2 * (rootParameters(arch) + 2 * blockParameters(arch));
    expect(bytes.weights).toBe(Math.ceil((4 * (m.parameters + t)) / 8 + gathered));
    expect(bytes.gradients).toBe(Math.ceil((4 * t) / 8));
    expect(bytes.optimizer).toBe(Math.ceil((8 * t) / 8));
  });

  it.each([
    ["chatglm3-6b", "lora", 1, 1, "g6e.2xlarge", "23.2"],
    ["chatglm_12b", "full", 1, 8, "p4de.24xlarge", "40.1"],
    ["chatglm_32b", "full", 2, 8, "p4de.24xlarge", "55.2"],
    ["chatglm_66b", "full", 4, 8, "p4de.24xlarge", "63.4"],
    ["chatglm_130b", "full", 4, 8, "p5e.48xlarge", "114.4"],
    ["glm-4-9b-chat", "lora", 1, 1, "g6e.2xlarge", "33.9"],
    ["glm-4-9b-chat", "full", 1, 8, "p4de.24xlarge", "40.8"],
    ["qwen2.5-0.5b-instruct", "lora", 1, 1, "g6.2xlarge", "12.3"],
    ["qwen2.5-0.5b-instruct", "full", 1, 1, "g6.2xlarge", "19.3"],
    ["qwen2.5-7b-instruct", "lora", 1, 1, "g6e.2xlarge", "30.2"],
    ["qwen2.5-7b-instruct", "full", 1, 8, "p4de.24xlarge", "36.5"],
  ] as const)(
    "plans %s %s at max_seq_length 8192 as %i × %i %s (%s GiB per GPU)",
    (name, method, nodes, gpus, type, gib) => {
      const result = plan(name, method, { maxSeqLength: 8192 });
      expect(toResourcesObject(result)).toEqual({ nodes, gpus_per_node: gpus, instance_type: type });
      expect((result.bytesPerGpu.total / GIB).toFixed(1)).toBe(gib);
    },
  );

  it("does not read the GPUs or the instance type from the catalog's method specs", () => {
    const catalog = buildCatalog({
      models: {
        "chatglm3-6b": { methods: { lora: { gpus: 64, minGpuMemoryGiB: 80, instanceType: "p5.48xlarge" } } },
        chatglm_130b: { methods: { full: { gpus: 1, minGpuMemoryGiB: 24, instanceType: "g5.2xlarge" } } },
      },
    });
    for (const [name, method] of [
      ["chatglm3-6b", "lora"],
      ["chatglm_130b", "full"],
    ] as const) {
      const overridden = planResources({
        model: findBaseModel(name, catalog)!,
        method,
        maxSeqLength: 2048,
        microBatchSize: 1,
      });
      expect(overridden).toEqual(plan(name, method));
    }
  });

  it("refuses a method the model does not allow (a caller bug, not a 400)", () => {
    expect(() => plan("chatglm3-6b", "full")).toThrow(/chatglm3-6b can not be trained with full/);
    expect(() => plan("chatglm3-6b", "full")).not.toThrow(InvalidRequestError);
  });

  it.each([
    [{ maxSeqLength: 0 }, /maxSeqLength/],
    [{ maxSeqLength: 1.5 }, /maxSeqLength/],
    [{ microBatchSize: 0 }, /microBatchSize/],
    [{ maxNodes: 0 }, /maxNodes/],
    [{ instanceTypes: [] }, /No GPU instance types/],
  ])("rejects the programming error %j", (extra, message) => {
    expect(() => plan("chatglm3-6b", "lora", extra as Partial<PlanInput>)).toThrow(message);
  });
});

describe("monotonicity", () => {
  const pairs = DEFAULT_CATALOG.flatMap((m) => allowedMethods(m).map((method) => [m, method] as const));
  const lengths = [64, 100, 512, 1000, 2048, 4096, 8192, 32_768];

  it("never needs fewer bytes per GPU for a longer sequence or a bigger micro-batch", () => {
    for (const [m, method] of pairs) {
      for (const worldSize of [1, 8, 32]) {
        let previous = 0;
        for (const maxSeqLength of lengths) {
          const at = (microBatchSize: number) =>
            bytesPerGpu({ model: m, method, maxSeqLength, microBatchSize, worldSize }).total;
          expect(at(1), `${m.name} ${method} ${maxSeqLength}`).toBeGreaterThanOrEqual(previous);
          previous = at(1);
          for (let mbs = 1; mbs < 8; mbs++) expect(at(mbs + 1)).toBeGreaterThanOrEqual(at(mbs));
        }
      }
    }
  });

  it("never needs more bytes per GPU on more GPUs, for full training and for LoRA in an FSDP2 group", () => {
    // LoRA on one GPU keeps the base in bf16; from two GPUs on it is sharded in fp32, so 1 → 2 is no step down.
    for (const [m, method] of pairs) {
      let previous = Number.POSITIVE_INFINITY;
      for (let worldSize = method === "full" ? 1 : 2; worldSize <= 128; worldSize++) {
        const bytes = bytesPerGpu({ model: m, method, maxSeqLength: 2048, microBatchSize: 1, worldSize });
        expect(bytes.total, `${m.name} ${method} on ${worldSize}`).toBeLessThanOrEqual(previous);
        previous = bytes.total;
      }
    }
  });

  it("needs no more bytes per GPU for LoRA than for full training of the same model and GPUs", () => {
    for (const name of ["glm-4-9b-chat", "qwen2.5-0.5b-instruct", "qwen2.5-7b-instruct"]) {
      for (const worldSize of [1, 8]) {
        const at = (method: TrainingMethod) =>
          bytesPerGpu({ model: model(name), method, maxSeqLength: 2048, microBatchSize: 1, worldSize }).total;
        expect(at("lora")).toBeLessThan(at("full"));
      }
    }
  });

  it("never plans a cheaper configuration for a longer sequence or a bigger micro-batch", () => {
    // A job that fits nothing costs infinitely much (activations are not sharded, so a long sequence
    // can outgrow every GPU however many there are).
    const cost = (m: BaseModel, method: TrainingMethod, maxSeqLength: number, microBatchSize: number) => {
      try {
        return planResources({ model: m, method, maxSeqLength, microBatchSize }).usdPerHour;
      } catch (error) {
        if (error instanceof InvalidRequestError) return Number.POSITIVE_INFINITY;
        throw error;
      }
    };
    for (const [m, method] of pairs) {
      for (const microBatchSize of [1, 2, 4]) {
        let previous = 0;
        for (const maxSeqLength of [64, 512, 2048, 4096, 8192]) {
          const at = cost(m, method, maxSeqLength, microBatchSize);
          expect(at, `${m.name} ${method} ${maxSeqLength} × ${microBatchSize}`).toBeGreaterThanOrEqual(
            previous,
          );
          expect(cost(m, method, maxSeqLength, microBatchSize + 1)).toBeGreaterThanOrEqual(at);
          previous = at;
        }
      }
    }
    expect(cost(model("chatglm_130b"), "full", 8192, 4)).toBe(Number.POSITIVE_INFINITY);
  });

  it("plans more total GPU memory for bigger models in full training", () => {
    const memory = ["chatglm_12b", "chatglm_32b", "chatglm_66b", "chatglm_130b"].map((name) => {
      const result = plan(name, "full");
      return result.nodes * result.gpusPerNode * result.gpuMemoryBytes;
    });
    expect([...memory].sort((a, b) => a - b)).toEqual(memory);
  });
});

describe("jobs that fit nothing", () => {
  const huge = buildCatalog({
    models: {
      "huge-2t": {
        family: "chatml",
        methods: {
          full: { gpus: 8, minGpuMemoryGiB: 80, instanceType: "p5.48xlarge", pricePer1kTokensUsd: 1 },
        },
        maxSeqLength: 8192,
        parameters: 2_000_000_000_000,
        ownedBy: "acme",
      },
    },
  });

  it("is a 400 insufficient_gpu_memory naming the model, the method, the bytes and the largest GPU", () => {
    const error = rejection(() =>
      planResources({
        model: findBaseModel("huge-2t", huge)!,
        method: "full",
        maxSeqLength: 2048,
        microBatchSize: 1,
        maxNodes: 2,
      }),
    );
    expect(error.status).toBe(400);
    expect(error.code).toBe("insufficient_gpu_memory");
    expect(error.param).toBe("model");
    expect(error.message).toContain("'huge-2t'");
    expect(error.message).toContain("'full'");
    // 2e12 × 16 bytes over 2 × 8 GPUs: about 1,863 GiB of training state per GPU.
    expect(error.message).toMatch(
      /needs (\d+\.\d) GiB per GPU even on the largest configuration tried, 2 × p5e\.48xlarge \(16 GPUs\)/,
    );
    const needed = Number(/needs (\d+\.\d) GiB/.exec(error.message)![1]);
    expect(needed).toBeGreaterThan((2e12 * 16) / 16 / GIB);
    expect(error.message).toContain("H200 (p5e.48xlarge), has 126.4 GiB usable of 140.4 GiB");
  });

  it("names max_seq_length when a shorter sequence would fit, under the path the client used", () => {
    const only = selectInstanceTypes(["g5.2xlarge"]);
    const error = rejection(() => plan("chatglm3-6b", "lora", { maxSeqLength: 8192, instanceTypes: only }));
    expect(error.param).toBe("method.hyperparameters.max_seq_length");
    expect(error.message).toMatch(/Lower max_seq_length/);
    const legacy = rejection(() =>
      plan("chatglm3-6b", "lora", {
        maxSeqLength: 8192,
        instanceTypes: only,
        hyperparametersParam: "hyperparameters",
      }),
    );
    expect(legacy.param).toBe("hyperparameters.max_seq_length");
  });

  it("names batch_size when one example per GPU would fit", () => {
    const error = rejection(() =>
      plan("chatglm3-6b", "lora", { microBatchSize: 4, instanceTypes: selectInstanceTypes(["g5.2xlarge"]) }),
    );
    expect(error.param).toBe("method.hyperparameters.batch_size");
  });

  it("names the model when not even the shortest sequence fits, e.g. 130B on one node", () => {
    const error = rejection(() => plan("chatglm_130b", "full", { maxNodes: 1 }));
    expect(error.param).toBe("model");
    expect(error.message).toContain("1 × p5e.48xlarge (8 GPUs)");
  });
});

describe("the instance types", () => {
  it("lists the configured types with their GPUs, memory and prices", () => {
    expect(INSTANCE_TYPES.map((type) => `${type.name} ${type.gpus}×${type.gpu}`)).toEqual([
      "g5.2xlarge 1×A10G",
      "g5.12xlarge 4×A10G",
      "g5.48xlarge 8×A10G",
      "g6.2xlarge 1×L4",
      "g6e.2xlarge 1×L40S",
      "g6e.12xlarge 4×L40S",
      "g6e.48xlarge 8×L40S",
      "p4d.24xlarge 8×A100-40GB",
      "p4de.24xlarge 8×A100-80GB",
      "p5.48xlarge 8×H100",
      "p5e.48xlarge 8×H200",
    ]);
    expect(INSTANCE_TYPES.filter((type) => type.multiNode).map((type) => type.name)).toEqual([
      "p4d.24xlarge",
      "p4de.24xlarge",
      "p5.48xlarge",
      "p5e.48xlarge",
    ]);
    for (const type of INSTANCE_TYPES) {
      expect(type.efa || !type.multiNode).toBe(true);
      expect(type.usdPerHour).toBeGreaterThan(0);
      expect(type.bf16Tflops).toBeGreaterThan(0);
    }
    // Within a family a bigger node costs more.
    for (const [a, b] of [
      ["g5.2xlarge", "g5.12xlarge"],
      ["g5.12xlarge", "g5.48xlarge"],
      ["g6e.2xlarge", "g6e.12xlarge"],
      ["g6e.12xlarge", "g6e.48xlarge"],
      ["p4d.24xlarge", "p4de.24xlarge"],
      ["p5.48xlarge", "p5e.48xlarge"],
    ]) {
      expect(typeNamed(a!).usdPerHour).toBeLessThan(typeNamed(b!).usdPerHour);
    }
  });

  it("selects types by name in the list's order and refuses an unknown name", () => {
    expect(selectInstanceTypes(["p5.48xlarge", "g5.2xlarge"]).map((type) => type.name)).toEqual([
      "g5.2xlarge",
      "p5.48xlarge",
    ]);
    expect(() => selectInstanceTypes(["g5.2xlarge", "p6.48xlarge"])).toThrow(/p6\.48xlarge/);
  });

  it("plans only on the types it is given", () => {
    const p5 = selectInstanceTypes(["p5.48xlarge"]);
    const lora = plan("chatglm3-6b", "lora", { instanceTypes: p5 });
    expect(toResourcesObject(lora)).toEqual({ nodes: 1, gpus_per_node: 8, instance_type: "p5.48xlarge" });
    expect(lora.sharded).toBe(true); // 8 GPUs are one FSDP2 group, even where the base would fit one
    const full = plan("chatglm_130b", "full", { instanceTypes: p5 });
    expect(full.instanceType).toBe("p5.48xlarge");
    expect(full.nodes).toBeGreaterThan(1);
    const single = selectInstanceTypes(["g5.2xlarge", "g6e.2xlarge", "g6e.48xlarge"]);
    expect(plan("qwen2.5-7b-instruct", "full", { instanceTypes: single }).instanceType).toBe("g6e.48xlarge");
  });

  it("stays within maxNodes", () => {
    // Three A100-80GB nodes are the cheapest for chatglm_66b; with two at most, two H200 nodes.
    expect(toResourcesObject(plan("chatglm_66b", "full", { maxNodes: 2 }))).toEqual({
      nodes: 2,
      gpus_per_node: 8,
      instance_type: "p5e.48xlarge",
    });
    const error = rejection(() => plan("chatglm_66b", "full", { maxNodes: 1 }));
    expect(error.param).toBe("model");
    expect(error.message).toMatch(/Choose a smaller base model\.$/);
    expect(
      rejection(() =>
        plan("glm-4-9b-chat", "full", { maxNodes: 1, instanceTypes: selectInstanceTypes(["g5.2xlarge"]) }),
      ).message,
    ).toMatch(/Choose a smaller base model or method 'lora'\.$/);
  });

  it("uses several nodes only of multi-node types", () => {
    const g = selectInstanceTypes(["g5.48xlarge", "g6e.48xlarge"]);
    expect(rejection(() => plan("chatglm_66b", "full", { instanceTypes: g })).message).toContain(
      "1 × g6e.48xlarge (8 GPUs)",
    );
  });

  it("shards a LoRA base with FSDP2 when it does not fit one GPU", () => {
    const catalog = buildCatalog({
      models: {
        chatglm_130b: {
          methods: {
            lora: { gpus: 8, minGpuMemoryGiB: 80, instanceType: "p5.48xlarge", pricePer1kTokensUsd: 0.01 },
          },
        },
      },
    });
    const result = planResources({
      model: findBaseModel("chatglm_130b", catalog)!,
      method: "lora",
      maxSeqLength: 2048,
      microBatchSize: 1,
    });
    expect(result.sharded).toBe(true);
    expect(result.nodes * result.gpusPerNode).toBeGreaterThan(1);
    expect(result.bytesPerGpu.weights).toBeLessThan(130e9 * 2);
    expect(result.bytesPerGpu.total).toBeLessThanOrEqual(usable(result));
  });
});

describe("the catalog's architectures", () => {
  it("gives every built-in model an architecture that accounts for its parameter count within 1.5%", () => {
    for (const m of DEFAULT_CATALOG) {
      expect(m.architecture, m.name).toBeDefined();
      const ratio = architectureParameters(m.architecture!) / m.parameters;
      expect(ratio, m.name).toBeGreaterThan(0.985);
      expect(ratio, m.name).toBeLessThan(1.015);
    }
  });

  it("describes tiny-chat as tiny_model.py builds it", () => {
    expect(model("tiny-chat").architecture).toEqual({
      layers: 2,
      hiddenSize: 256,
      attentionHeads: 4,
      kvHeads: 4,
      intermediateSize: 512,
      vocabSize: 4336,
      tiedEmbeddings: true,
    });
  });

  it("derives an architecture from the parameter count of an operator's model that gives none", () => {
    const catalog = buildCatalog({ models: { "llama-3.1-8b-instruct": operatorModel(8_030_000_000) } });
    const added = findBaseModel("llama-3.1-8b-instruct", catalog)!;
    expect(added.architecture).toBeUndefined();
    expect(modelArchitecture(added)).toEqual(deriveArchitecture(8_030_000_000));
    expect(deriveArchitecture(8e9)).toEqual({
      layers: 35,
      hiddenSize: 4352,
      attentionHeads: 34,
      kvHeads: 34,
      intermediateSize: 11_606,
      vocabSize: 152_064,
      tiedEmbeddings: false,
    });
    for (const parameters of [1e9, 7e9, 70e9, 405e9, 2e12]) {
      const arch = deriveArchitecture(parameters);
      const blocks = arch.layers * blockParameters(arch);
      expect(blocks / parameters).toBeGreaterThan(0.9);
      expect(blocks / parameters).toBeLessThan(1.1);
    }
    expect(deriveArchitecture(1).layers).toBe(1);
    expect(
      toResourcesObject(
        planResources({ model: added, method: "lora", maxSeqLength: 2048, microBatchSize: 1 }),
      ),
    ).toEqual({ nodes: 1, gpus_per_node: 1, instance_type: "g6e.2xlarge" });
  });

  it("takes an operator's architecture and merges a patch into a built-in one", () => {
    const architecture = {
      layers: 32,
      hiddenSize: 4096,
      attentionHeads: 32,
      kvHeads: 8,
      intermediateSize: 14_336,
      vocabSize: 128_256,
      tiedEmbeddings: false,
    };
    const catalog = buildCatalog({
      models: {
        "llama-3.1-8b-instruct": operatorModel(8_030_261_248, { architecture }),
        "chatglm3-6b": { architecture: { vocabSize: 70_000 } },
      },
    });
    expect(findBaseModel("llama-3.1-8b-instruct", catalog)!.architecture).toEqual(architecture);
    expect(architectureParameters(architecture) / 8_030_261_248).toBeCloseTo(1, 3);
    expect(findBaseModel("chatglm3-6b", catalog)!.architecture).toEqual({
      ...model("chatglm3-6b").architecture,
      vocabSize: 70_000,
    });
  });

  it.each([
    [{ models: { "new-model": { architecture: { layers: 2 } } } }, /models\.new-model/],
    [
      {
        models: {
          "new-model": {
            family: "chatml",
            methods: {
              lora: { gpus: 1, minGpuMemoryGiB: 24, instanceType: "g5.2xlarge", pricePer1kTokensUsd: 1 },
            },
            maxSeqLength: 4096,
            parameters: 1e9,
            ownedBy: "acme",
            architecture: { layers: 2 },
          },
        },
      },
      /models\.new-model\.architecture\.hiddenSize/,
    ],
    [
      { models: { "tiny-chat": { architecture: { kvHeads: 3 } } } },
      /tiny-chat\.architecture\.kvHeads: kvHeads must divide/,
    ],
    [{ models: { "tiny-chat": { architecture: { layers: 0 } } } }, /tiny-chat\.architecture\.layers/],
    [{ models: { "tiny-chat": { architecture: { depth: 2 } } } }, /unknown field 'depth'/],
    [{ models: { "tiny-chat": { architecture: { tiedEmbeddings: "yes" } } } }, /tiedEmbeddings/],
  ])("rejects the override %j", (override, message) => {
    expect(() => buildCatalog(override)).toThrow(message);
  });
});
