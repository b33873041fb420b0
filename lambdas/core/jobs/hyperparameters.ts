import { createHash } from "node:crypto";
import { z } from "zod";
import { allowedMethods, type BaseModel, type TrainingMethod } from "../catalog/base-models.ts";
import {
  CATALOG_FILE,
  numericSpec,
  requestHyperparameters,
  TRAINING_OBJECTIVES,
  type TrainingObjective,
} from "../catalog/catalog-file.ts";
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
 * | `lora_r`                   | integer 1–64 (LoRA only)       | 8                                                 |
 * | `lora_alpha`               | integer 1–1024 (LoRA only)     | 2 × lora_r                                        |
 * | `lora_dropout`             | 0–0.5 (LoRA only)              | 0.05                                              |
 * | `max_seq_length`           | integer 64 – the model's max   | the longest example's tokens rounded up to a power of two, clamped 64 – the model's max; 2048 (or the max) without statistics |
 * | `beta`                     | 0 < x ≤ 2 (DPO only)           | 0.1; null for a supervised job                     |
 * | `eval_interval`            | integer 1–10⁷ (steps)          | null: the trainer evaluates about ten times per run (every ⌈total steps / 10⌉), and at the last step |
 * | `early_stopping_patience`  | integer 1–1000 (evaluations)   | null: no early stopping                            |
 * | `validation_split`         | 0–0.2                          | 0: no split                                        |
 * | `seed`                     | integer 0 – 2³¹−1              | derived from the job id (stable across retries)    |
 *
 * The n_epochs rule is the one OpenAI documents in its data preparation cookbook (target 100 – 25,000
 * trained examples). The learning rate multiplier scales the trainer's base learning rate for the method,
 * {@link BASE_LEARNING_RATE}.
 *
 * `eval_interval` stays null rather than a step count the API computes: the trainer knows its real
 * number of steps (GPUs, gradient accumulation, the split), the API only an estimate of it.
 * `validation_split` holds out that share of the training examples as validation data when the job has
 * no `validation_file` (a 400 with one); the `"auto"` rules above then count the examples left
 * ({@link trainingExamples}).
 * `early_stopping_patience` needs validation data (a `validation_file` or a split), or it could never
 * stop anything: a 400 without.
 */

export type Auto = "auto";
export type HyperparameterName =
  | "n_epochs"
  | "batch_size"
  | "learning_rate_multiplier"
  | "lora_r"
  | "lora_alpha"
  | "lora_dropout"
  | "max_seq_length"
  | "beta"
  | "eval_interval"
  | "early_stopping_patience"
  | "validation_split";

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

/**
 * Per objective, the hyperparameters it may not take: those the catalog file lists for another objective
 * only (`beta` for a supervised job).
 */
export const OTHER_OBJECTIVES_ONLY: Readonly<Record<TrainingObjective, readonly HyperparameterName[]>> =
  Object.fromEntries(
    TRAINING_OBJECTIVES.map((objective) => [
      objective,
      NAMES.filter(
        (name) =>
          !CATALOG_FILE.objectives[objective].hyperparameters.includes(name) &&
          TRAINING_OBJECTIVES.some((other) => CATALOG_FILE.objectives[other].hyperparameters.includes(name)),
      ),
    ]),
  ) as Record<TrainingObjective, HyperparameterName[]>;

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
  beta: requiredDefault("beta"),
  validation_split: requiredDefault("validation_split"),
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
    beta: autoOr("beta"),
    eval_interval: autoOr("eval_interval"),
    early_stopping_patience: autoOr("early_stopping_patience"),
    validation_split: autoOr("validation_split"),
  })
  .strict();

export type HyperparameterInput = z.infer<typeof hyperparametersSchema>;

/**
 * Exactly the JSON the trainer receives in `HYPERPARAMETERS`. Every key is always present so the
 * trainer reads one schema; the LoRA keys are null for `full`, `beta` is null for a supervised job, and
 * null `eval_interval` / `early_stopping_patience` are the trainer's auto (about ten evaluations) / off.
 */
export interface ResolvedHyperparameters {
  readonly n_epochs: number;
  readonly batch_size: number;
  readonly learning_rate_multiplier: number;
  readonly lora_r: number | null;
  readonly lora_alpha: number | null;
  readonly lora_dropout: number | null;
  readonly max_seq_length: number;
  readonly beta: number | null;
  readonly eval_interval: number | null;
  readonly early_stopping_patience: number | null;
  readonly validation_split: number;
  readonly seed: number;
}

/** The keys added with DPO and evaluation: a job stored before them has none. */
type LaterKeys = "beta" | "eval_interval" | "early_stopping_patience" | "validation_split";

/**
 * The hyperparameters as a job record stores them: records written before DPO and evaluation lack
 * {@link LaterKeys}, which then mean what their absence meant (no beta, auto evaluation, no early
 * stopping, no split).
 */
export type StoredHyperparameters = Omit<ResolvedHyperparameters, LaterKeys> &
  Partial<Pick<ResolvedHyperparameters, LaterKeys>>;

/** A stored set with every key: the ones an older record lacks as their absence meant. */
export function completeHyperparameters(stored: StoredHyperparameters): ResolvedHyperparameters {
  return {
    ...stored,
    beta: stored.beta ?? null,
    eval_interval: stored.eval_interval ?? null,
    early_stopping_patience: stored.early_stopping_patience ?? null,
    validation_split: stored.validation_split ?? 0,
  };
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
 * for the legacy field) so that a 400 names what the client sent; `methodParam` where the method was
 * chosen (`method.type`, or `method.dpo.use_lora`).
 */
export function checkMethod(
  method: TrainingMethod,
  input: HyperparameterInput,
  model: BaseModel,
  param = "method.hyperparameters",
  methodParam = "method.type",
): void {
  if (!model.methods[method]) {
    throw new InvalidRequestError(
      `Base model '${model.name}' can not be trained with method '${method}'; allowed: ${allowedMethods(model).join(", ")}.`,
      methodParam,
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
 * Checks the hyperparameters against the objective: one another objective alone takes (`beta` for a
 * supervised job) is a 400 naming it. Needs no catalog entry, so the request parser calls it.
 */
export function checkObjective(
  objective: TrainingObjective,
  input: HyperparameterInput,
  param = "method.hyperparameters",
): void {
  for (const name of OTHER_OBJECTIVES_ONLY[objective]) {
    if (input[name] === undefined) continue;
    const owners = TRAINING_OBJECTIVES.filter((other) =>
      CATALOG_FILE.objectives[other].hyperparameters.includes(name),
    );
    throw new InvalidRequestError(
      `${name} applies to method type ${owners.map((o) => `'${o}'`).join(", ")} only; remove it for a ${objective} job.`,
      `${param}.${name}`,
    );
  }
}

/**
 * Checks the evaluation hyperparameters against the validation data the job has: `validation_split`
 * only replaces a missing `validation_file` (both together is a 400), and `early_stopping_patience`
 * needs validation data of one kind or the other.
 */
export function checkValidationData(
  input: HyperparameterInput,
  hasValidationFile: boolean,
  param = "method.hyperparameters",
): void {
  const split = typeof input.validation_split === "number" ? input.validation_split : 0;
  if (split > 0 && hasValidationFile) {
    throw new InvalidRequestError(
      "validation_split holds out part of the training file as validation data when there is no validation_file; pass one or the other, not both.",
      `${param}.validation_split`,
    );
  }
  if (typeof input.early_stopping_patience === "number" && split === 0 && !hasValidationFile) {
    throw new InvalidRequestError(
      "early_stopping_patience stops on the validation loss, so it needs validation data: pass a validation_file, or a validation_split above 0.",
      `${param}.early_stopping_patience`,
    );
  }
}

/**
 * The training examples left once `validation_split` has held out its share, counted as the trainer
 * counts it (`split_validation`): round(examples × split) with Python's round, at least one and leaving
 * at least one; no split below two examples.
 */
export function trainingExamples(examples: number, validationSplit: number): number {
  const all = Math.max(1, Math.floor(examples));
  if (validationSplit <= 0 || all < 2) return all;
  return all - Math.min(Math.max(1, roundHalfEven(all * validationSplit)), all - 1);
}

/** Python's `round` of a float: halves to the even neighbour. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * Resolves `"auto"` (and absent fields) to numbers. Call {@link checkMethod} first. Throws a 400 when an
 * explicit batch size exceeds the number of training examples (the trainer could not fill one batch);
 * with a `validation_split`, the examples left after it.
 */
export function resolveHyperparameters(
  method: TrainingMethod,
  input: HyperparameterInput,
  model: BaseModel,
  dataset: DatasetSize,
  seed: number,
  param = "method.hyperparameters",
  objective: TrainingObjective = "supervised",
): ResolvedHyperparameters {
  const given = <K extends HyperparameterName>(name: K): number | undefined => {
    const value = input[name];
    return typeof value === "number" ? value : undefined;
  };
  const validationSplit = given("validation_split") ?? AUTO_DEFAULTS.validation_split;
  const examples = trainingExamples(dataset.examples, validationSplit);

  const batchSize = given("batch_size") ?? autoBatchSize(examples);
  if (batchSize > examples) {
    throw new InvalidRequestError(
      `batch_size ${batchSize} is larger than the ${examples} training examples${validationSplit > 0 ? " left after validation_split" : ""}.`,
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
    beta: objective === "dpo" ? (given("beta") ?? AUTO_DEFAULTS.beta) : null,
    eval_interval: given("eval_interval") ?? null,
    early_stopping_patience: given("early_stopping_patience") ?? null,
    validation_split: validationSplit,
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
 * The `HYPERPARAMETERS` environment value for the trainer: the resolved set as JSON, keys (the catalog's
 * names) in a fixed order, every one present; null is the trainer's auto. A record stored before the
 * evaluation keys gets them as their absence meant. A model's own base learning rate reaches the trainer
 * in its catalog entry (`BASE_MODEL_SPEC`).
 */
export function hyperparametersEnv(stored: StoredHyperparameters): string {
  const resolved = completeHyperparameters(stored);
  return JSON.stringify({
    n_epochs: resolved.n_epochs,
    batch_size: resolved.batch_size,
    learning_rate_multiplier: resolved.learning_rate_multiplier,
    lora_r: resolved.lora_r,
    lora_alpha: resolved.lora_alpha,
    lora_dropout: resolved.lora_dropout,
    max_seq_length: resolved.max_seq_length,
    beta: resolved.beta,
    eval_interval: resolved.eval_interval,
    early_stopping_patience: resolved.early_stopping_patience,
    validation_split: resolved.validation_split,
    seed: resolved.seed,
  });
}
