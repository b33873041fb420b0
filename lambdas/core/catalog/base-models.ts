import { z } from "zod";
import catalogJson from "../../../contract/catalog.json" with { type: "json" };
import { baseModelPrefix, tenantPrefix } from "../contract.ts";
import {
  MAX_BASE_LEARNING_RATE,
  MODEL_FAMILIES,
  type ModelFamily,
  numericSpec,
  TRAINING_METHODS,
  type TrainingMethod,
} from "./catalog-file.ts";

export { MODEL_FAMILIES, type ModelFamily, TRAINING_METHODS, type TrainingMethod };

/**
 * The base model catalog: which models a job may start from, how each is trained and what it costs.
 *
 * The entries live in `contract/catalog.json`, the one file a newcomer edits to add a base model; this
 * module validates them (the same schema an override goes through) and answers questions about them.
 * They keep the names of the original Zhipu platform (`chatglm3-6b` for LoRA, `chatglm_12b` …
 * `chatglm_130b` for full-parameter training) beside open models that load natively in current
 * transformers (GLM-4-9B, Qwen2.5) and `tiny-chat`, the tiny model the local platform makes itself.
 * Operators change it without a code change through an override (CDK context `baseModelCatalog` or
 * `baseModelCatalogFile`, or the `BASE_MODEL_CATALOG_OVERRIDE` environment variable, JSON), see
 * {@link buildCatalog}.
 */

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
   * method's usual one (`methods.{method}.baseLearningRate` in the catalog file): a 2.4 M-parameter model learns in minutes at 1e-3 to 4e-3,
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

/** `base-models/{name}/`: where the operator puts a base model's weights in the artifacts bucket. */
export const weightsPrefixFor = baseModelPrefix;

/** The part of every tenant-owned key before the tenant id (`tenants/`). */
const TENANT_KEYS = tenantPrefix("").replace(/\/$/, "");

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
    baseLearningRate: z.number().positive().max(MAX_BASE_LEARNING_RATE).optional(),
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
    family: z.enum(MODEL_FAMILIES as [ModelFamily, ...ModelFamily[]]),
    methods: z
      .object({ lora: methodSpecSchema.optional(), full: methodSpecSchema.optional() })
      .strict()
      .refine((methods) => methods.lora !== undefined || methods.full !== undefined, {
        message: "needs at least one of lora, full",
      }),
    weightsPrefix: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*\/$/, "must be a relative key prefix ending in '/'")
      .refine((prefix) => !prefix.split("/").includes(".."), "must not contain '..'")
      // Tenants' keys are theirs alone: the trainer and inference roles may read a model's weights prefix.
      .refine((prefix) => !prefix.startsWith(TENANT_KEYS), `must not be under '${TENANT_KEYS}'`),
    // The model's limit is the upper bound of `max_seq_length`, so it must lie within that hyperparameter's bounds.
    maxSeqLength: z
      .number()
      .int()
      .min(numericSpec("max_seq_length").min)
      .max(numericSpec("max_seq_length").max),
    parameters: z.number().int().positive(),
    architecture: architectureSchema.optional(),
    created: z.number().int().min(0),
    ownedBy: z.string().min(1).max(64),
  })
  .strict();

const methodPatchSchema = methodSpecSchema.partial().strict().nullable();

const modelPatchSchema = z
  .object({
    family: z.enum(MODEL_FAMILIES as [ModelFamily, ...ModelFamily[]]),
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
export function buildCatalog(
  override?: unknown,
  base: BaseModelCatalog = DEFAULT_CATALOG,
  source = "base model catalog override",
): BaseModelCatalog {
  if (override === undefined || override === null) return base;
  const parsed = overrideSchema.safeParse(override);
  if (!parsed.success) throw catalogError(parsed.error, source);

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
    if (!checked.success) throw catalogError(checked.error, source, `models.${name}`);
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

function catalogError(error: z.ZodError, source: string, prefix?: string): Error {
  // An unknown field explains its neighbours' "required" errors, so it is reported first.
  const issue = error.issues.find((candidate) => candidate.code === "unrecognized_keys") ?? error.issues[0];
  const path = [prefix, ...(issue?.path.map(String) ?? [])].filter(Boolean).join(".");
  const detail =
    issue?.code === "unrecognized_keys"
      ? `unknown field '${issue.keys[0] ?? ""}'`
      : (issue?.message ?? "invalid");
  return new Error(`Invalid ${source} at ${path || "(root)"}: ${detail}.`);
}

/** Base model name → maximum sequence length: what the validator counts over-length examples against. */
export function contextLimits(catalog: BaseModelCatalog = DEFAULT_CATALOG): Record<string, number> {
  return Object.fromEntries(catalog.map((model) => [model.name, model.maxSeqLength]));
}

/**
 * The built-in catalog: `contract/catalog.json`'s models in file order, each validated as an override's
 * new entry is (`weightsPrefix` defaults to `base-models/{name}/`, `created` to 0).
 */
export const DEFAULT_CATALOG: BaseModelCatalog = catalogFromFile(catalogJson.models);

/** A catalog from a file's `models` list; throws on a duplicate name or an invalid entry. */
export function catalogFromFile(
  models: readonly { readonly name: string }[],
  source = "contract/catalog.json",
): BaseModelCatalog {
  const entries = new Map<string, unknown>();
  for (const { name, ...entry } of models) {
    if (entries.has(name)) throw new Error(`Invalid ${source}: base model '${name}' is listed twice.`);
    entries.set(name, entry);
  }
  return buildCatalog({ models: Object.fromEntries(entries) }, [], source);
}
