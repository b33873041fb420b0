import { createHash } from "node:crypto";
import { z } from "zod";
import { allowedMethods, type BaseModel, type TrainingMethod } from "../catalog/base-models.ts";
import { CATALOG_FILE, numericSpec, requestHyperparameters } from "../catalog/catalog-file.ts";
import { InvalidRequestError } from "../errors.ts";

/**
 * Hyperparameters: what a request may ask for, the bounds, and how `"auto"` resolves to the numbers the
 * trainer receives as the `HYPERPARAMETERS` environment variable.
 *
 * | name                       | bounds                         | auto                                              |
 * | -------------------------- | ------------------------------ | ------------------------------------------------- |
 * | `n_epochs`                 | integer 1–50                   | 3, raised so that examples × epochs ≥ 100 (≤ 25), lowered so that it stays ≤ 25,000 (≥ 1) |
 * | `batch_size`               | integer 1–256, ≤ examples      | round(0.2% of examples), clamped 1–32              |
 * | `learning_rate_multiplier` | 0 < x ≤ 10                     | √(batch_size / 8) clamped 0.5–2 (square-root scaling for Adam) |
 * | `lora_r`                   | integer 1–256 (LoRA only)      | 8                                                 |
 * | `lora_alpha`               | integer 1–1024 (LoRA only)     | 2 × lora_r                                        |
 * | `lora_dropout`             | 0–0.5 (LoRA only)              | 0.05                                              |
 * | `max_seq_length`           | integer 64 – the model's max   | the longest example's tokens rounded up to a power of two, clamped 64 – the model's max; 2048 (or the max) without statistics |
 * | `seed`                     | integer 0 – 2³¹−1              | derived from the job id (stable across retries)    |
 *
 * The n_epochs rule is the one OpenAI documents in its data preparation cookbook (target 100 – 25,000
 * trained examples). The learning rate multiplier scales the trainer's base learning rate for the method,
 * {@link BASE_LEARNING_RATE}.
 */

export type Auto = "auto";
export type HyperparameterName =
  | "n_epochs"
  | "batch_size"
  | "learning_rate_multiplier"
  | "lora_r"
  | "lora_alpha"
  | "lora_dropout"
  | "max_seq_length";

type Bound = { min: number; max: number; integer: boolean; exclusiveMin?: boolean };

function bound(name: HyperparameterName): Bound {
  const spec = numericSpec(name);
  return {
    min: spec.min,
    max: spec.max,
    integer: spec.type === "integer",
    ...(spec.exclusiveMin ? { exclusiveMin: true } : {}),
  };
}

/** The hyperparameters a request may set: those the catalog file lists for either method. */
const NAMES = requestHyperparameters(CATALOG_FILE.methods, CATALOG_FILE.objectives) as HyperparameterName[];

/**
 * Bounds, inclusive unless said otherwise, as `contract/catalog.json` states them (the trainer checks
 * the same file's numbers); `max_seq_length`'s upper bound is also the base model's.
 */
export const BOUNDS: Readonly<Record<HyperparameterName, Bound>> = Object.freeze(
  Object.fromEntries(NAMES.map((name) => [name, bound(name)])) as Record<HyperparameterName, Bound>,
);

/** The LoRA-only hyperparameters: those the catalog file lists for `lora` but not for `full`; rejected for `full`. */
export const LORA_ONLY: readonly HyperparameterName[] = NAMES.filter(
  (name) =>
    CATALOG_FILE.methods.lora.hyperparameters.includes(name) &&
    !CATALOG_FILE.methods.full.hyperparameters.includes(name),
);

export const SEED_MAX = numericSpec("seed").max;

/** The base learning rate each method's `learning_rate_multiplier` scales (the trainer applies it). */
export const BASE_LEARNING_RATE: Readonly<Record<TrainingMethod, number>> = {
  lora: CATALOG_FILE.methods.lora.baseLearningRate,
  full: CATALOG_FILE.methods.full.baseLearningRate,
};

const auto = CATALOG_FILE.auto;
export const AUTO_DEFAULTS = {
  lora_r: requiredDefault("lora_r"),
  lora_dropout: requiredDefault("lora_dropout"),
  /** max_seq_length when the dataset statistics give no longest example. */
  max_seq_length: requiredDefault("max_seq_length"),
  batch_size_max: auto.batchSizeMax,
  batch_size_fraction: auto.batchSizeFraction,
  epochs_target: auto.epochsTarget,
  epochs_max_auto: auto.epochsMaxAuto,
  min_target_examples: auto.minTargetExamples,
  max_target_examples: auto.maxTargetExamples,
} as const;

function requiredDefault(name: HyperparameterName): number {
  const value = numericSpec(name).default;
  if (value === null) throw new Error(`contract/catalog.json: ${name} needs a default`);
  return value;
}

function describe(name: HyperparameterName): string {
  const b = BOUNDS[name];
  const kind = b.integer ? "an integer" : "a number";
  const low = b.exclusiveMin ? `greater than ${b.min}` : `from ${b.min}`;
  const high = name === "max_seq_length" ? "the base model's max_seq_length" : String(b.max);
  return `"auto" or ${kind} ${low} to ${high}`;
}

function inBounds(name: HyperparameterName, value: number): boolean {
  const b = BOUNDS[name];
  if (!Number.isFinite(value)) return false;
  if (b.integer && !Number.isInteger(value)) return false;
  if (b.exclusiveMin ? value <= b.min : value < b.min) return false;
  return value <= b.max;
}

function autoOr(name: HyperparameterName) {
  const message = `${name} must be ${describe(name)}`;
  return z
    .union(
      [z.literal("auto"), z.number({ error: message }).refine((v) => inBounds(name, v), { error: message })],
      {
        error: message,
      },
    )
    .optional();
}

/** `hyperparameters` as a request may give them: every field optional, each `"auto"` or a number in bounds. */
export const hyperparametersSchema = z
  .object({
    n_epochs: autoOr("n_epochs"),
    batch_size: autoOr("batch_size"),
    learning_rate_multiplier: autoOr("learning_rate_multiplier"),
    lora_r: autoOr("lora_r"),
    lora_alpha: autoOr("lora_alpha"),
    lora_dropout: autoOr("lora_dropout"),
    max_seq_length: autoOr("max_seq_length"),
  })
  .strict();

export type HyperparameterInput = z.infer<typeof hyperparametersSchema>;

/**
 * Exactly the JSON the trainer receives in `HYPERPARAMETERS`. Every key is always present so the
 * trainer reads one schema; the LoRA keys are null for `full`.
 */
export interface ResolvedHyperparameters {
  readonly n_epochs: number;
  readonly batch_size: number;
  readonly learning_rate_multiplier: number;
  readonly lora_r: number | null;
  readonly lora_alpha: number | null;
  readonly lora_dropout: number | null;
  readonly max_seq_length: number;
  readonly seed: number;
}

/** What the resolution needs to know about the training file (from its validation statistics). */
export interface DatasetSize {
  /** Valid examples. */
  readonly examples: number;
  /** Tokens of the longest example, when known. */
  readonly maxExampleTokens?: number;
}

/**
 * Checks the method against the base model and the hyperparameters against the method and the model.
 * `param` is the request path of the hyperparameters (`method.hyperparameters`, or `hyperparameters`
 * for the legacy field) so that a 400 names what the client sent.
 */
export function checkMethod(
  method: TrainingMethod,
  input: HyperparameterInput,
  model: BaseModel,
  param = "method.hyperparameters",
): void {
  if (!model.methods[method]) {
    throw new InvalidRequestError(
      `Base model '${model.name}' can not be trained with method '${method}'; allowed: ${allowedMethods(model).join(", ")}.`,
      "method.type",
      "unsupported_method",
    );
  }
  if (method === "full") {
    for (const name of LORA_ONLY) {
      if (input[name] !== undefined) {
        throw new InvalidRequestError(
          `${name} applies to method 'lora' only; remove it for a 'full' job.`,
          `${param}.${name}`,
        );
      }
    }
  }
  const length = input.max_seq_length;
  if (typeof length === "number" && length > model.maxSeqLength) {
    throw new InvalidRequestError(
      `max_seq_length may be at most ${model.maxSeqLength} for base model '${model.name}'.`,
      `${param}.max_seq_length`,
    );
  }
}

/**
 * Resolves `"auto"` (and absent fields) to numbers. Call {@link checkMethod} first. Throws a 400 when an
 * explicit batch size exceeds the number of examples (the trainer could not fill one batch).
 */
export function resolveHyperparameters(
  method: TrainingMethod,
  input: HyperparameterInput,
  model: BaseModel,
  dataset: DatasetSize,
  seed: number,
  param = "method.hyperparameters",
): ResolvedHyperparameters {
  const examples = Math.max(1, Math.floor(dataset.examples));
  const given = <K extends HyperparameterName>(name: K): number | undefined => {
    const value = input[name];
    return typeof value === "number" ? value : undefined;
  };

  const batchSize = given("batch_size") ?? autoBatchSize(examples);
  if (batchSize > examples) {
    throw new InvalidRequestError(
      `batch_size ${batchSize} is larger than the ${examples} training examples.`,
      `${param}.batch_size`,
    );
  }
  const loraR = method === "lora" ? (given("lora_r") ?? AUTO_DEFAULTS.lora_r) : null;
  return {
    n_epochs: given("n_epochs") ?? autoEpochs(examples),
    batch_size: batchSize,
    learning_rate_multiplier: given("learning_rate_multiplier") ?? autoLearningRateMultiplier(batchSize),
    lora_r: loraR,
    lora_alpha: loraR === null ? null : (given("lora_alpha") ?? Math.min(BOUNDS.lora_alpha.max, 2 * loraR)),
    lora_dropout: method === "lora" ? (given("lora_dropout") ?? AUTO_DEFAULTS.lora_dropout) : null,
    max_seq_length: given("max_seq_length") ?? autoMaxSeqLength(model.maxSeqLength, dataset.maxExampleTokens),
    seed,
  };
}

/** OpenAI's rule: 3 epochs, adjusted so that examples × epochs lands in 100 – 25,000 where it can. */
export function autoEpochs(examples: number): number {
  const d = AUTO_DEFAULTS;
  const n = Math.max(1, examples);
  if (n * d.epochs_target < d.min_target_examples) {
    return Math.min(d.epochs_max_auto, Math.ceil(d.min_target_examples / n));
  }
  if (n * d.epochs_target > d.max_target_examples) {
    return Math.max(1, Math.floor(d.max_target_examples / n));
  }
  return d.epochs_target;
}

/** About 0.2% of the examples, clamped 1–32 and never more than the examples. */
export function autoBatchSize(examples: number): number {
  const size = Math.round(examples * AUTO_DEFAULTS.batch_size_fraction);
  return Math.max(1, Math.min(AUTO_DEFAULTS.batch_size_max, size, examples));
}

/** √(batch_size / 8), clamped 0.5–2, rounded to 3 decimals: the base rates are tuned for batches of 8. */
export function autoLearningRateMultiplier(batchSize: number): number {
  const rule = auto.learningRateMultiplier;
  const multiplier = Math.min(rule.max, Math.max(rule.min, Math.sqrt(batchSize / rule.referenceBatchSize)));
  return Math.round(multiplier * 1000) / 1000;
}

/** The longest example rounded up to a power of two, within 64 – the model's max; 2048 without statistics. */
export function autoMaxSeqLength(modelMax: number, longestExample?: number): number {
  if (longestExample === undefined || !Number.isFinite(longestExample) || longestExample <= 0) {
    return Math.min(AUTO_DEFAULTS.max_seq_length, modelMax);
  }
  const power = 2 ** Math.ceil(Math.log2(longestExample));
  return Math.min(modelMax, Math.max(BOUNDS.max_seq_length.min, power));
}

/**
 * The seed when the request gives none: derived from the job id rather than random, so a re-dispatched
 * job trains the same way and the seed shown by `GET` is the one used.
 */
export function deriveSeed(jobId: string): number {
  return createHash("sha256").update(jobId, "utf8").digest().readUInt32BE(0) & SEED_MAX;
}

/**
 * The `HYPERPARAMETERS` environment value for the trainer: the resolved set as JSON, keys in a fixed
 * order. A model's own base learning rate reaches the trainer in its catalog entry (`BASE_MODEL_SPEC`).
 */
export function hyperparametersEnv(resolved: ResolvedHyperparameters): string {
  return JSON.stringify({
    n_epochs: resolved.n_epochs,
    batch_size: resolved.batch_size,
    learning_rate_multiplier: resolved.learning_rate_multiplier,
    lora_r: resolved.lora_r,
    lora_alpha: resolved.lora_alpha,
    lora_dropout: resolved.lora_dropout,
    max_seq_length: resolved.max_seq_length,
    seed: resolved.seed,
  });
}
