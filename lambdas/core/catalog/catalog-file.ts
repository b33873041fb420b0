import { z } from "zod";
import catalogJson from "../../../contract/catalog.json" with { type: "json" };

/**
 * `contract/catalog.json`, validated: the one statement of the base models, the model families, the
 * training methods and every hyperparameter's bounds and defaults. The trainer and the inference image
 * read the same file (`contract/python/ft_contract/catalog.py` validates it the same way; the contract
 * tests run both validators over `contract/fixtures/catalogs/`). This module checks the file's shape;
 * `base-models.ts` checks each model entry (the schema an operator's override goes through too).
 */

/** Training methods: LoRA adapters (PEFT) or full-parameter training. Code switches on them, so they are fixed here. */
export const TRAINING_METHODS = ["lora", "full"] as const;
export type TrainingMethod = (typeof TRAINING_METHODS)[number];

/**
 * What a job optimises (OpenAI's `method.type`): supervised fine-tuning or preference tuning (DPO). Each
 * trains with either method; code switches on them, so they are fixed here.
 */
export const TRAINING_OBJECTIVES = ["supervised", "dpo"] as const;
export type TrainingObjective = (typeof TRAINING_OBJECTIVES)[number];

/** Chat template / model family: the keys of the file's `families` (the trainer has a template for each). */
export type ModelFamily = keyof typeof catalogJson.families;

/** A hyperparameter the trainer accepts, named as in `HYPERPARAMETERS`. */
export type HyperparameterKey = keyof typeof catalogJson.hyperparameters;

const bound = z.number().finite();

const numericSchema = (type: "integer" | "number") =>
  z
    .object({
      type: z.literal(type),
      min: bound,
      max: bound,
      /** The minimum itself is not allowed (a learning rate of 0 would not train). */
      exclusiveMin: z.boolean().optional(),
      default: bound.nullable(),
      /** Whether a job request may set it (`method.hyperparameters`); otherwise a trainer knob. */
      api: z.boolean(),
    })
    .strict()
    .refine((spec) => spec.min <= spec.max, { message: "min must not exceed max" })
    .refine((spec) => type === "number" || (Number.isInteger(spec.min) && Number.isInteger(spec.max)), {
      message: "integer bounds must be integers",
    });

const hyperparameterSpecSchema = z.union([
  numericSchema("integer"),
  numericSchema("number"),
  z
    .object({
      type: z.literal("enum"),
      values: z.array(z.string()).min(1),
      default: z.string(),
      api: z.boolean(),
    })
    .strict(),
  z.object({ type: z.literal("boolean"), default: z.boolean(), api: z.boolean() }).strict(),
]);
export type HyperparameterSpec = z.infer<typeof hyperparameterSpecSchema>;
export type NumericHyperparameterSpec = Extract<HyperparameterSpec, { type: "integer" | "number" }>;

const methodSchema = z
  .object({
    /** The learning rate `learning_rate_multiplier` 1 means, unless a model sets its own. */
    baseLearningRate: z.number().positive(),
    /** The request hyperparameters this method takes. */
    hyperparameters: z.array(z.string()).min(1),
  })
  .strict();

const objectiveSchema = z
  .object({
    /** The request hyperparameters this objective adds to its method's (DPO's `beta`). */
    hyperparameters: z.array(z.string()),
  })
  .strict();

const familySchema = z
  .object({
    /** The modules LoRA adapts: module names, or PEFT's `all-linear`. */
    loraTargets: z.union([z.array(z.string().min(1)).min(1), z.literal("all-linear")]),
  })
  .strict();

const autoSchema = z
  .object({
    epochsTarget: z.number().int().positive(),
    epochsMaxAuto: z.number().int().positive(),
    minTargetExamples: z.number().int().positive(),
    maxTargetExamples: z.number().int().positive(),
    batchSizeMax: z.number().int().positive(),
    batchSizeFraction: z.number().positive(),
    learningRateMultiplier: z
      .object({
        referenceBatchSize: z.number().positive(),
        min: z.number().positive(),
        max: z.number().positive(),
      })
      .strict(),
  })
  .strict();

export const catalogFileSchema = z
  .object({
    $comment: z.string().optional(),
    methods: z.object({ lora: methodSchema, full: methodSchema }).strict(),
    objectives: z
      .object({ $comment: z.string().optional(), supervised: objectiveSchema, dpo: objectiveSchema })
      .strict(),
    families: z.record(z.string().regex(/^[a-z][a-z0-9]*$/), familySchema),
    hyperparameters: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), hyperparameterSpecSchema),
    auto: autoSchema,
    /** Model entries: checked one by one against `base-models.ts`'s schema. */
    models: z.array(z.record(z.string(), z.unknown())).min(1),
  })
  .strict()
  .superRefine((file, ctx) => {
    // What a request may set, the seed and the absolute learning rate are numbers the code computes with.
    for (const name of numericHyperparameters(file.methods, file.objectives)) {
      const spec = file.hyperparameters[name];
      if (!spec || (spec.type !== "integer" && spec.type !== "number")) {
        ctx.addIssue({
          code: "custom",
          path: ["hyperparameters", name],
          message: "required numeric hyperparameter",
        });
      }
    }
    const lists = [
      ...TRAINING_METHODS.map((method) => ["methods", method, file.methods[method].hyperparameters] as const),
      ...TRAINING_OBJECTIVES.map(
        (objective) => ["objectives", objective, file.objectives[objective].hyperparameters] as const,
      ),
    ];
    for (const [group, key, names] of lists) {
      for (const name of names) {
        if (!file.hyperparameters[name]?.api) {
          ctx.addIssue({
            code: "custom",
            path: [group, key, "hyperparameters"],
            message: `'${name}' is not a hyperparameter a request may set`,
          });
        }
      }
    }
  });

export type CatalogFile = z.infer<typeof catalogFileSchema>;

type Listed = { readonly hyperparameters: readonly string[] };
type MethodLists = { readonly lora: Listed; readonly full: Listed };
type ObjectiveLists = { readonly supervised: Listed; readonly dpo: Listed };

/** The hyperparameters a request may set: those either method or either objective lists. */
export function requestHyperparameters(methods: MethodLists, objectives: ObjectiveLists): string[] {
  return [
    ...new Set([
      ...methods.lora.hyperparameters,
      ...methods.full.hyperparameters,
      ...objectives.supervised.hyperparameters,
      ...objectives.dpo.hyperparameters,
    ]),
  ];
}

/** The request's hyperparameters, then `seed` and `learning_rate`: the numbers the code computes with. */
export function numericHyperparameters(methods: MethodLists, objectives: ObjectiveLists): string[] {
  return [...requestHyperparameters(methods, objectives), "seed", "learning_rate"];
}

/** Parses a catalog file; throws an Error naming the first bad path. */
export function parseCatalogFile(value: unknown, source = "contract/catalog.json"): CatalogFile {
  const parsed = catalogFileSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue?.path.map(String).join(".") || "(root)";
  throw new Error(`Invalid ${source} at ${path}: ${issue?.message ?? "invalid"}.`);
}

/** The platform's catalog file, validated at module load (a broken file fails the cold start). */
export const CATALOG_FILE: CatalogFile = parseCatalogFile(catalogJson);

/** The model families, in file order. */
export const MODEL_FAMILIES = Object.keys(CATALOG_FILE.families) as ModelFamily[];

/** The numeric spec of a hyperparameter (bounds, default). */
export function numericSpec(name: HyperparameterKey): NumericHyperparameterSpec {
  const spec = CATALOG_FILE.hyperparameters[name];
  if (spec?.type !== "integer" && spec?.type !== "number") throw new Error(`${name} is not numeric`);
  return spec;
}

/** The highest base learning rate a model may set: with the largest multiplier it stays a valid `learning_rate`. */
export const MAX_BASE_LEARNING_RATE =
  numericSpec("learning_rate").max / numericSpec("learning_rate_multiplier").max;
