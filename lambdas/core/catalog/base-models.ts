import { z } from "zod";

/**
 * The base model catalog: which models a job may start from, how each is trained and what it costs.
 *
 * The entries keep the names of the original Zhipu platform (`chatglm3-6b` for LoRA, `chatglm_12b` …
 * `chatglm_130b` for full-parameter training) beside open models that load natively in current
 * transformers (GLM-4-9B, Qwen2.5) and `tiny-chat`, the tiny model the local platform makes itself.
 * Operators change it without a code change through an override (CDK context or the
 * `BASE_MODEL_CATALOG_OVERRIDE` environment variable, JSON), see {@link buildCatalog}.
 */

/** Chat template / model family; the trainer formats examples with the family's template. */
export const MODEL_FAMILIES = ["chatglm3", "glm4", "chatml", "tiny"] as const;
export type ModelFamily = (typeof MODEL_FAMILIES)[number];

/** Training methods: LoRA adapters (PEFT) or full-parameter training. */
export const TRAINING_METHODS = ["lora", "full"] as const;
export type TrainingMethod = (typeof TRAINING_METHODS)[number];

/** What one training method needs on AWS Batch, and what the platform charges for it. */
export interface MethodSpec {
  /**
   * The GPUs the price list assumes (0: CPU). Not what a job runs on: the resource planner
   * (`lambdas/core/jobs/resources.ts`) computes nodes, GPUs per node and instance type for each job from
   * the model's architecture, the method and the sequence length.
   */
  readonly gpus: number;
  /** Memory each GPU must have, GiB (0 for CPU). */
  readonly minGpuMemoryGiB: number;
  /** The instance type the price list assumes; the dry run's estimate uses the planner's instead. */
  readonly instanceType: string;
  /**
   * Price per 1K trained tokens (tokens × epochs), USD. Per method rather than per model because full
   * training of the same model needs several times the GPUs of LoRA.
   */
  readonly pricePer1kTokensUsd: number;
  /**
   * The learning rate `learning_rate_multiplier` 1 means for this model, when it differs from the
   * method's usual one (`BASE_LEARNING_RATE`): a 1.4 M-parameter model learns in minutes at 1e-3,
   * where a 6 B one would diverge.
   */
  readonly baseLearningRate?: number;
}

/**
 * The transformer shape the resource planner (`lambdas/core/jobs/resources.ts`) sizes memory from. The
 * names map one to one to a Hugging Face `config.json`: `num_hidden_layers`, `hidden_size`,
 * `num_attention_heads`, `num_key_value_heads`, `intermediate_size`, `vocab_size`,
 * `tie_word_embeddings` (ChatGLM's own names: `num_layers`, `hidden_size`, `num_attention_heads`,
 * `multi_query_group_num`, `ffn_hidden_size`, `padded_vocab_size`).
 */
export interface ModelArchitecture {
  /** Transformer blocks. */
  readonly layers: number;
  readonly hiddenSize: number;
  readonly attentionHeads: number;
  /** Key/value heads: equal to `attentionHeads` for multi-head attention, fewer for GQA/MQA. */
  readonly kvHeads: number;
  /** Width of the gated MLP (the gate and up projections each map `hiddenSize` to this). */
  readonly intermediateSize: number;
  readonly vocabSize: number;
  /** The output head shares the input embedding's matrix. */
  readonly tiedEmbeddings: boolean;
}

/** One base model. */
export interface BaseModel {
  /** The `model` value clients pass; unique in the catalog. */
  readonly name: string;
  readonly family: ModelFamily;
  /** The allowed methods are exactly the keys present. */
  readonly methods: Readonly<Partial<Record<TrainingMethod, MethodSpec>>>;
  /** Key prefix of the weights in the artifacts bucket, `base-models/{name}/` unless overridden. */
  readonly weightsPrefix: string;
  /**
   * Longest training sequence allowed, in tokens: the context window or less where the GPU memory
   * above would not hold longer sequences.
   */
  readonly maxSeqLength: number;
  /** Parameter count (the estimate's FLOPs model and the resource planner use it). */
  readonly parameters: number;
  /**
   * The model's shape, for the resource planner. Every built-in entry has one; an operator's model may
   * leave it out, and {@link modelArchitecture} then derives one from `parameters`.
   */
  readonly architecture?: ModelArchitecture;
  /** `created` of the OpenAI `model` object: the model's release date, epoch seconds. */
  readonly created: number;
  readonly ownedBy: string;
}

/** The catalog: a list, because it is small (a lookup is a scan of a dozen entries) and ordered for `GET /models`. */
export type BaseModelCatalog = readonly BaseModel[];

/** The environment variable the handlers read an override from (JSON, see {@link buildCatalog}). */
export const CATALOG_OVERRIDE_ENV = "BASE_MODEL_CATALOG_OVERRIDE";

const lora = (gpus: number, minGpuMemoryGiB: number, instanceType: string, price: number): MethodSpec => ({
  gpus,
  minGpuMemoryGiB,
  instanceType,
  pricePer1kTokensUsd: price,
});
const full = lora;

// Release dates (epoch seconds, UTC midnight) used as `created`.
const OCT_2023 = 1698364800; // 2023-10-27, ChatGLM3
const JUN_2024 = 1717545600; // 2024-06-05, GLM-4-9B
const SEP_2024 = 1726704000; // 2024-09-19, Qwen2.5
const JAN_2025 = 1735689600; // 2025-01-01, the project's tiny model

function entry(model: Omit<BaseModel, "weightsPrefix">): BaseModel {
  return { ...model, weightsPrefix: weightsPrefixFor(model.name) };
}

/**
 * The built-in catalog. GPU needs follow the usual arithmetic: LoRA needs the bf16 weights (2 bytes per
 * parameter) plus activations on one GPU; full training with Adam in mixed precision needs about 16
 * bytes per parameter spread over the GPUs (ZeRO-3/FSDP), plus activations. Prices are the operator's
 * to set (override); the defaults are in the range of hosted fine-tuning price lists. The resource
 * planner (`lambdas/core/jobs/resources.ts`) computes GPUs, nodes and instance type from `parameters`
 * and `architecture` instead of reading the per-method `gpus` / `instanceType`.
 */
export const DEFAULT_CATALOG: BaseModelCatalog = Object.freeze([
  entry({
    name: "chatglm3-6b",
    family: "chatglm3",
    methods: { lora: lora(1, 24, "g5.2xlarge", 0.0008) },
    maxSeqLength: 8192,
    parameters: 6_243_584_000,
    // THUDM/chatglm3-6b config.json (2 multi-query groups, SwiGLU).
    architecture: {
      layers: 28,
      hiddenSize: 4096,
      attentionHeads: 32,
      kvHeads: 2,
      intermediateSize: 13_696,
      vocabSize: 65_024,
      tiedEmbeddings: false,
    },
    created: OCT_2023,
    ownedBy: "zhipuai",
  }),
  entry({
    // chatglm_12b … chatglm_130b: Zhipu never published these shapes, so the architectures are estimates:
    // GLM-like blocks (multi-head attention, gated MLP, ChatGLM3's 65,024-token vocabulary; GLM-130B's
    // published shape and 150,528-token vocabulary for the 130B) sized so that 12·layers·hidden² plus the
    // embeddings comes within 1% of the parameter count. Replace them through an override when the real
    // configs are known.
    name: "chatglm_12b",
    family: "chatglm3",
    methods: { full: full(8, 40, "p4d.24xlarge", 0.006) },
    maxSeqLength: 8192,
    parameters: 12_000_000_000,
    architecture: {
      layers: 36,
      hiddenSize: 5120,
      attentionHeads: 40,
      kvHeads: 40,
      intermediateSize: 13_696,
      vocabSize: 65_024,
      tiedEmbeddings: false,
    },
    created: OCT_2023,
    ownedBy: "zhipuai",
  }),
  entry({
    name: "chatglm_32b",
    family: "chatglm3",
    methods: { full: full(8, 80, "p4de.24xlarge", 0.015) },
    maxSeqLength: 8192,
    parameters: 32_000_000_000,
    architecture: {
      layers: 50,
      hiddenSize: 7168,
      attentionHeads: 56,
      kvHeads: 56,
      intermediateSize: 19_200,
      vocabSize: 65_024,
      tiedEmbeddings: false,
    },
    created: OCT_2023,
    ownedBy: "zhipuai",
  }),
  entry({
    // 66B × 16 bytes ≈ 1 TB of training state: two 8×H100 nodes.
    name: "chatglm_66b",
    family: "chatglm3",
    methods: { full: full(16, 80, "p5.48xlarge", 0.03) },
    maxSeqLength: 8192,
    parameters: 66_000_000_000,
    architecture: {
      layers: 80,
      hiddenSize: 8192,
      attentionHeads: 64,
      kvHeads: 64,
      intermediateSize: 22_016,
      vocabSize: 65_024,
      tiedEmbeddings: false,
    },
    created: OCT_2023,
    ownedBy: "zhipuai",
  }),
  entry({
    name: "chatglm_130b",
    family: "chatglm3",
    methods: { full: full(32, 80, "p5.48xlarge", 0.06) },
    maxSeqLength: 8192,
    parameters: 130_000_000_000,
    architecture: {
      layers: 70,
      hiddenSize: 12288,
      attentionHeads: 96,
      kvHeads: 96,
      intermediateSize: 32_768,
      vocabSize: 150_528,
      tiedEmbeddings: true,
    },
    created: OCT_2023,
    ownedBy: "zhipuai",
  }),
  entry({
    name: "glm-4-9b-chat",
    family: "glm4",
    methods: { lora: lora(1, 48, "g6e.2xlarge", 0.001), full: full(8, 80, "p4de.24xlarge", 0.005) },
    maxSeqLength: 8192,
    parameters: 9_399_951_360,
    // THUDM/glm-4-9b-chat config.json.
    architecture: {
      layers: 40,
      hiddenSize: 4096,
      attentionHeads: 32,
      kvHeads: 2,
      intermediateSize: 13_696,
      vocabSize: 151_552,
      tiedEmbeddings: false,
    },
    created: JUN_2024,
    ownedBy: "zhipuai",
  }),
  entry({
    name: "qwen2.5-0.5b-instruct",
    family: "chatml",
    methods: { lora: lora(1, 24, "g5.xlarge", 0.0001), full: full(1, 24, "g5.2xlarge", 0.0003) },
    maxSeqLength: 8192,
    parameters: 494_032_768,
    // Qwen/Qwen2.5-0.5B-Instruct config.json.
    architecture: {
      layers: 24,
      hiddenSize: 896,
      attentionHeads: 14,
      kvHeads: 2,
      intermediateSize: 4864,
      vocabSize: 151_936,
      tiedEmbeddings: true,
    },
    created: SEP_2024,
    ownedBy: "qwen",
  }),
  entry({
    name: "qwen2.5-7b-instruct",
    family: "chatml",
    methods: { lora: lora(1, 24, "g5.2xlarge", 0.0008), full: full(8, 40, "p4d.24xlarge", 0.004) },
    maxSeqLength: 8192,
    parameters: 7_615_616_512,
    // Qwen/Qwen2.5-7B-Instruct config.json.
    architecture: {
      layers: 28,
      hiddenSize: 3584,
      attentionHeads: 28,
      kvHeads: 4,
      intermediateSize: 18_944,
      vocabSize: 152_064,
      tiedEmbeddings: false,
    },
    created: SEP_2024,
    ownedBy: "qwen",
  }),
  entry({
    // Made by batch-images/trainer (tiny_model.py): byte-level vocabulary (261 tokens), 2 layers of width 256, tied
    // embeddings, pre-trained for a few seconds on a synthetic chat corpus. Its base rates are the ones measured to
    // memorise the samples (LoRA r 64: 52–54 of 54 answers in 50 epochs; 2e-3 stalls at a loss near 0.16).
    name: "tiny-chat",
    family: "tiny",
    methods: {
      lora: { ...lora(0, 0, "m7i.large", 0.000001), baseLearningRate: 1e-3 },
      full: { ...full(0, 0, "m7i.large", 0.000001), baseLearningRate: 1e-3 },
    },
    maxSeqLength: 512,
    parameters: 1_378_816,
    // tiny_model.py: LlamaConfig(hidden 256, 2 layers, 4 heads, intermediate 2 × hidden, tied), 261-token vocabulary.
    architecture: {
      layers: 2,
      hiddenSize: 256,
      attentionHeads: 4,
      kvHeads: 4,
      intermediateSize: 512,
      vocabSize: 261,
      tiedEmbeddings: true,
    },
    created: JAN_2025,
    ownedBy: "ft-platform",
  }),
]);

/** `base-models/{name}/`: where the operator puts a base model's weights in the artifacts bucket. */
export function weightsPrefixFor(name: string): string {
  return `base-models/${name}/`;
}

/** The entry named exactly `name` (names are case-sensitive, like OpenAI model ids), or undefined. */
export function findBaseModel(
  name: string,
  catalog: BaseModelCatalog = DEFAULT_CATALOG,
): BaseModel | undefined {
  return catalog.find((model) => model.name === name);
}

/** Every base model, in catalog order. */
export function listBaseModels(catalog: BaseModelCatalog = DEFAULT_CATALOG): readonly BaseModel[] {
  return catalog;
}

/** The methods a base model may be trained with, LoRA first. */
export function allowedMethods(model: BaseModel): TrainingMethod[] {
  return TRAINING_METHODS.filter((method) => model.methods[method] !== undefined);
}

/** Attention head width assumed by {@link deriveArchitecture}: the usual 128. */
export const DERIVED_HEAD_DIM = 128;
/**
 * Vocabulary assumed by {@link deriveArchitecture}: as large as the largest built-in (Qwen2.5's), so the
 * planner does not underestimate the logits of a model whose vocabulary it does not know.
 */
export const DERIVED_VOCAB_SIZE = 152_064;

/**
 * A decoder shape for a parameter count alone, for an operator's model that gives no `architecture`.
 * It follows the usual proportions, erring on the side of more memory:
 * - a block holds about 12·hidden² parameters (4·hidden² of multi-head attention, 8·hidden² of a gated
 *   MLP of width 8/3·hidden), and depth grows with width at about hidden/128 layers (Llama: 4096 wide
 *   with 32 layers, 5120 with 40), so parameters ≈ 12·hidden³/128 and
 *   hiddenSize = ∛(128 · parameters / 12), rounded to a multiple of {@link DERIVED_HEAD_DIM} (at least one);
 * - layers = parameters / (12·hidden²), rounded, at least 1 (the embeddings are not subtracted first, so
 *   the blocks hold the whole count);
 * - attentionHeads = kvHeads = hiddenSize / 128 (no GQA: the widest key/value activations),
 *   intermediateSize = ⌈8/3 · hiddenSize⌉, vocabSize = {@link DERIVED_VOCAB_SIZE}, untied embeddings.
 * Example: 8e9 parameters → 35 layers of width 4352 with 34 heads.
 */
export function deriveArchitecture(parameters: number): ModelArchitecture {
  const heads = Math.max(1, Math.round(Math.cbrt((128 * parameters) / 12) / DERIVED_HEAD_DIM));
  const hiddenSize = heads * DERIVED_HEAD_DIM;
  return {
    layers: Math.max(1, Math.round(parameters / (12 * hiddenSize * hiddenSize))),
    hiddenSize,
    attentionHeads: heads,
    kvHeads: heads,
    intermediateSize: Math.ceil((8 * hiddenSize) / 3),
    vocabSize: DERIVED_VOCAB_SIZE,
    tiedEmbeddings: false,
  };
}

/** The model's architecture: the catalog's, else {@link deriveArchitecture} from its parameter count. */
export function modelArchitecture(model: BaseModel): ModelArchitecture {
  return model.architecture ?? deriveArchitecture(model.parameters);
}

/**
 * The method used when a request names none (no `method`, OpenAI's `supervised` or the legacy top-level
 * `hyperparameters`): LoRA where allowed, since it is cheaper and what the original platform offered for
 * the models that had both; otherwise full.
 */
export function defaultMethod(model: BaseModel): TrainingMethod {
  return model.methods.lora ? "lora" : "full";
}

/** The OpenAI `model` object of a base model, plus the catalog facts SDKs pass through untouched. */
export function toBaseModelObject(model: BaseModel) {
  return {
    id: model.name,
    object: "model" as const,
    created: model.created,
    owned_by: model.ownedBy,
    family: model.family,
    fine_tuning_methods: allowedMethods(model),
    max_seq_length: model.maxSeqLength,
  };
}

export type BaseModelObject = ReturnType<typeof toBaseModelObject>;

// ---- override ------------------------------------------------------------------------------------

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const methodSpecSchema = z
  .object({
    gpus: z.number().int().min(0).max(256),
    minGpuMemoryGiB: z.number().min(0).max(1024),
    instanceType: z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9-]+$/, "must look like 'g5.2xlarge'"),
    pricePer1kTokensUsd: z.number().min(0).max(1000),
    baseLearningRate: z.number().positive().max(1).optional(),
  })
  .strict();

const architectureSchema = z
  .object({
    layers: z.number().int().min(1).max(1024),
    hiddenSize: z.number().int().min(1).max(1_048_576),
    attentionHeads: z.number().int().min(1).max(4096),
    kvHeads: z.number().int().min(1).max(4096),
    intermediateSize: z.number().int().min(1).max(4_194_304),
    vocabSize: z.number().int().min(1).max(16_777_216),
    tiedEmbeddings: z.boolean(),
  })
  .strict()
  .refine((a) => a.attentionHeads % a.kvHeads === 0, {
    message: "kvHeads must divide attentionHeads",
    path: ["kvHeads"],
  });

const baseModelSchema = z
  .object({
    name: z.string().regex(NAME),
    family: z.enum(MODEL_FAMILIES),
    methods: z
      .object({ lora: methodSpecSchema.optional(), full: methodSpecSchema.optional() })
      .strict()
      .refine((methods) => methods.lora !== undefined || methods.full !== undefined, {
        message: "needs at least one of lora, full",
      }),
    weightsPrefix: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*\/$/, "must be a relative key prefix ending in '/'")
      .refine((prefix) => !prefix.split("/").includes(".."), "must not contain '..'"),
    maxSeqLength: z.number().int().min(64).max(1_048_576),
    parameters: z.number().int().positive(),
    architecture: architectureSchema.optional(),
    created: z.number().int().min(0),
    ownedBy: z.string().min(1).max(64),
  })
  .strict();

const methodPatchSchema = methodSpecSchema.partial().strict().nullable();

const modelPatchSchema = z
  .object({
    family: z.enum(MODEL_FAMILIES),
    methods: z.object({ lora: methodPatchSchema.optional(), full: methodPatchSchema.optional() }).strict(),
    weightsPrefix: z.string(),
    maxSeqLength: z.number(),
    parameters: z.number(),
    architecture: z
      .object({
        layers: z.number(),
        hiddenSize: z.number(),
        attentionHeads: z.number(),
        kvHeads: z.number(),
        intermediateSize: z.number(),
        vocabSize: z.number(),
        tiedEmbeddings: z.boolean(),
      })
      .partial()
      .strict(),
    created: z.number(),
    ownedBy: z.string(),
  })
  .partial()
  .strict();

const overrideSchema = z
  .object({
    models: z.record(z.string().regex(NAME, "is not a valid base model name"), modelPatchSchema.nullable()),
  })
  .strict();

/**
 * A catalog override: `{"models": {"<name>": patch | null}}`.
 * - a patch of an existing entry changes the fields it names; under `methods`, each method's fields
 *   merge into the existing spec and `null` removes the method;
 * - a patch of a new name adds an entry and must then be complete (`weightsPrefix` and `created` may be
 *   left out: `base-models/{name}/` and 0; so may `architecture`, which the resource planner then
 *   derives from `parameters`, see {@link deriveArchitecture});
 * - `architecture`, when given, is complete for a new entry (every field of {@link ModelArchitecture});
 *   for an existing one its fields merge into the existing architecture, like a method's;
 * - `null` removes the entry (an operator who does not host a model).
 */
export type CatalogOverride = z.input<typeof overrideSchema>;

/**
 * The catalog with an override merged in. Every merged entry is validated in full, so an override can
 * not produce an entry the rest of the platform would trip on. Throws an `Error` naming the offending
 * path: a broken override is an operator mistake that should stop the function at cold start.
 */
export function buildCatalog(override?: unknown, base: BaseModelCatalog = DEFAULT_CATALOG): BaseModelCatalog {
  if (override === undefined || override === null) return base;
  const parsed = overrideSchema.safeParse(override);
  if (!parsed.success) throw catalogError(parsed.error);

  const merged = new Map<string, unknown>(base.map((model) => [model.name, model]));
  for (const [name, patch] of Object.entries(parsed.data.models)) {
    if (patch === null) {
      merged.delete(name);
      continue;
    }
    const existing = merged.get(name) as BaseModel | undefined;
    const methods: Record<string, unknown> = { ...(existing?.methods ?? {}) };
    for (const method of TRAINING_METHODS) {
      const methodPatch = patch.methods?.[method];
      if (methodPatch === null) delete methods[method];
      else if (methodPatch !== undefined)
        methods[method] = { ...(existing?.methods[method] ?? {}), ...methodPatch };
    }
    const architecture =
      patch.architecture === undefined
        ? {}
        : { architecture: { ...existing?.architecture, ...patch.architecture } };
    merged.set(name, {
      weightsPrefix: weightsPrefixFor(name),
      created: 0,
      ...existing,
      ...patch,
      ...architecture,
      name,
      methods,
    });
  }

  const catalog: BaseModel[] = [];
  for (const [name, candidate] of merged) {
    const checked = baseModelSchema.safeParse(candidate);
    if (!checked.success) throw catalogError(checked.error, `models.${name}`);
    catalog.push(Object.freeze(checked.data) as BaseModel);
  }
  return Object.freeze(catalog);
}

/**
 * The catalog for an environment variable's value: the default when unset or blank, else the JSON
 * override merged in. Throws on invalid JSON or an invalid override.
 */
export function catalogFromEnv(
  value: string | undefined,
  base: BaseModelCatalog = DEFAULT_CATALOG,
): BaseModelCatalog {
  if (value === undefined || value.trim() === "") return base;
  let override: unknown;
  try {
    override = JSON.parse(value);
  } catch {
    throw new Error(`${CATALOG_OVERRIDE_ENV} is not valid JSON.`);
  }
  return buildCatalog(override, base);
}

function catalogError(error: z.ZodError, prefix?: string): Error {
  // An unknown field explains its neighbours' "required" errors, so it is reported first.
  const issue = error.issues.find((candidate) => candidate.code === "unrecognized_keys") ?? error.issues[0];
  const path = [prefix, ...(issue?.path.map(String) ?? [])].filter(Boolean).join(".");
  const detail =
    issue?.code === "unrecognized_keys"
      ? `unknown field '${issue.keys[0] ?? ""}'`
      : (issue?.message ?? "invalid");
  return new Error(`Invalid base model catalog override at ${path || "(root)"}: ${detail}.`);
}

/** Base model name → maximum sequence length: what the validator counts over-length examples against. */
export function contextLimits(catalog: BaseModelCatalog = DEFAULT_CATALOG): Record<string, number> {
  return Object.fromEntries(catalog.map((model) => [model.name, model.maxSeqLength]));
}
