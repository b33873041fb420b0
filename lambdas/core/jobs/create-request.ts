import { z } from "zod";
import {
  type BaseModel,
  type BaseModelCatalog,
  DEFAULT_CATALOG,
  defaultMethod,
  findBaseModel,
  type TrainingMethod,
} from "../catalog/base-models.ts";
import type { TrainingObjective } from "../catalog/catalog-file.ts";
import { InvalidRequestError } from "../errors.ts";
import { toInvalidRequest } from "../http/request-errors.ts";
import { displayNameSchema } from "./display-name.ts";
import {
  checkMethod,
  checkObjective,
  checkValidationData,
  type DatasetSize,
  deriveSeed,
  type HyperparameterInput,
  hyperparametersSchema,
  type ResolvedHyperparameters,
  resolveHyperparameters,
  SEED_MAX,
} from "./hyperparameters.ts";
import { checkModelCodeSyntax, generateModelCode, validateModelCode } from "./model-code.ts";
import {
  type ConfiguredInstanceTypes,
  configuredInstanceTypes,
  planResources,
  type ResourcePlan,
} from "./resources.ts";
import type { InitModel, ModelRecord } from "./wire.ts";

/**
 * `POST /v4/fine_tuning/jobs`: parsing (shape and bounds, {@link parseCreateJobRequest}) and planning
 * against the catalog and the training file's statistics ({@link planJob}).
 *
 * Accepted `method` shapes, for the OpenAI and zhipuai SDKs unchanged:
 * - `{"type": "lora" | "full", "hyperparameters": {...}}`: this platform's;
 * - `{"type": "supervised", "supervised": {"hyperparameters": {...}}}`: OpenAI's current shape; trains
 *   with the base model's default method (LoRA where allowed, else full);
 * - no `method`, with or without the legacy top-level `hyperparameters` (OpenAI's deprecated field, and
 *   what the zhipuai SDK sends): likewise the default method. `method` and `hyperparameters` together
 *   are a 400, since two sets of hyperparameters would be ambiguous;
 * - `{"type": "dpo", "dpo": {"hyperparameters": {...}, "use_lora": true | false}}`: OpenAI's preference
 *   tuning, with this platform's `use_lora` choosing LoRA or full (absent: the model's default method, or
 *   for a job that starts from a fine-tuned model, that model's method). `model` may then name the
 *   tenant's own succeeded supervised model ({@link PlanContext.fineTunedModel}).
 * The first three are supervised fine-tuning; `reinforcement` is 400 `unsupported_method`.
 */

export const METADATA_MAX_PAIRS = 16;
export const METADATA_MAX_KEY_LENGTH = 64;
export const METADATA_MAX_VALUE_LENGTH = 512;
export const SUFFIX_PATTERN = /^[a-z0-9_-]{1,40}$/;

const fileId = z.string().min(1).max(128);

const methodSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("lora"), hyperparameters: hyperparametersSchema.optional() }).strict(),
  z.object({ type: z.literal("full"), hyperparameters: hyperparametersSchema.optional() }).strict(),
  z
    .object({
      type: z.literal("supervised"),
      supervised: z.object({ hyperparameters: hyperparametersSchema.optional() }).strict().optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal("dpo"),
      dpo: z
        .object({
          hyperparameters: hyperparametersSchema.optional(),
          /** This platform's: LoRA (true) or full-parameter (false) training; absent, the default. */
          use_lora: z.boolean().nullable().optional(),
        })
        .strict()
        .optional(),
    })
    .strict(),
]);

const requestSchema = z
  .object({
    model: z.string().min(1).max(128),
    training_file: fileId,
    validation_file: fileId.nullable().optional(),
    method: methodSchema.optional(),
    hyperparameters: hyperparametersSchema.nullable().optional(),
    model_code: z.string().max(256).nullable().optional(),
    /** This platform's: the model's display name, any script (display-name.ts). */
    name: displayNameSchema.nullable().optional(),
    suffix: z
      .string()
      .regex(SUFFIX_PATTERN, { error: "must be 1–40 characters of lowercase letters, digits, '-' and '_'" })
      .nullable()
      .optional(),
    seed: z
      .number()
      .int({ error: `must be an integer from 0 to ${SEED_MAX}` })
      .min(0, { error: `must be an integer from 0 to ${SEED_MAX}` })
      .max(SEED_MAX, { error: `must be an integer from 0 to ${SEED_MAX}` })
      .nullable()
      .optional(),
    metadata: z
      .record(
        z
          .string()
          .min(1)
          .max(METADATA_MAX_KEY_LENGTH, { error: `keys are at most ${METADATA_MAX_KEY_LENGTH} characters` }),
        z.string().max(METADATA_MAX_VALUE_LENGTH, {
          error: `values are strings of at most ${METADATA_MAX_VALUE_LENGTH} characters`,
        }),
      )
      .refine((pairs) => Object.keys(pairs).length <= METADATA_MAX_PAIRS, {
        error: `holds at most ${METADATA_MAX_PAIRS} pairs`,
      })
      .nullable()
      .optional(),
    dry_run: z.boolean().optional(),
    /** Sent by the zhipuai SDK when the caller sets it: the client's own request id, kept as given. */
    request_id: z.string().min(1).max(128).nullable().optional(),
    integrations: z.union([z.null(), z.array(z.unknown()).length(0)]).optional(),
  })
  .strict();

/** A parsed create request, normalised: one method (null = the base model's default), one set of hyperparameters. */
export interface CreateJobRequest {
  readonly model: string;
  readonly trainingFile: string;
  readonly validationFile: string | null;
  /** What the job optimises: `dpo` for `method.type: "dpo"`, else `supervised`. */
  readonly objective: TrainingObjective;
  /**
   * null: the base model's default method ({@link defaultMethod}), or the method of the fine-tuned model
   * a DPO job starts from.
   */
  readonly method: TrainingMethod | null;
  /** Where the method was chosen, for 400s about it: `method.dpo.use_lora` for DPO. */
  readonly methodParam: "method.type" | "method.dpo.use_lora";
  readonly hyperparameters: HyperparameterInput;
  /** Where the hyperparameters were in the request, so later 400s name the path the client sent. */
  readonly hyperparametersParam:
    | "method.hyperparameters"
    | "method.supervised.hyperparameters"
    | "method.dpo.hyperparameters"
    | "hyperparameters";
  readonly modelCode: string | null;
  /** The model's display name. */
  readonly name: string | null;
  readonly suffix: string | null;
  readonly seed: number | null;
  readonly metadata: Readonly<Record<string, string>> | null;
  readonly dryRun: boolean;
  readonly requestId: string | null;
}

/**
 * Parses the body of `POST /v4/fine_tuning/jobs`. Throws an {@link InvalidRequestError} whose `param` is
 * the offending path (`method.hyperparameters.lora_r`, `metadata.team`), `unknown_parameter` for a field
 * the API does not know. Needs no catalog: checks against the base model are {@link planJob}'s.
 */
export function parseCreateJobRequest(body: unknown): CreateJobRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InvalidRequestError("The request body must be a JSON object.", null);
  }
  const raw = body as Record<string, unknown>;
  const integrations = raw.integrations;
  if (
    integrations !== undefined &&
    integrations !== null &&
    !(Array.isArray(integrations) && integrations.length === 0)
  ) {
    throw new InvalidRequestError(
      "integrations (e.g. Weights & Biases) are not supported by this platform.",
      "integrations",
      "unsupported_parameter",
    );
  }
  const methodType = (raw.method as { type?: unknown } | undefined)?.type;
  if (methodType === "reinforcement") {
    throw new InvalidRequestError(
      `method '${methodType}' is not supported; use 'supervised', 'dpo', 'lora' or 'full'.`,
      "method.type",
      "unsupported_method",
    );
  }

  const parsed = requestSchema.safeParse(body, { reportInput: true });
  if (!parsed.success) throw toInvalidRequest(parsed.error);
  const data = parsed.data;

  if (data.method !== undefined && data.hyperparameters != null) {
    throw new InvalidRequestError(
      "Pass hyperparameters inside method, not also at the top level.",
      "hyperparameters",
    );
  }
  if (data.model_code != null && data.suffix != null) {
    throw new InvalidRequestError("Pass either model_code or suffix, not both.", "suffix");
  }
  if (data.model_code != null) checkModelCodeSyntax(data.model_code);

  let objective: TrainingObjective = "supervised";
  let method: TrainingMethod | null = null;
  let methodParam: CreateJobRequest["methodParam"] = "method.type";
  let hyperparameters: HyperparameterInput = data.hyperparameters ?? {};
  let hyperparametersParam: CreateJobRequest["hyperparametersParam"] = "hyperparameters";
  if (data.method?.type === "lora" || data.method?.type === "full") {
    method = data.method.type;
    hyperparameters = data.method.hyperparameters ?? {};
    hyperparametersParam = "method.hyperparameters";
  } else if (data.method?.type === "supervised") {
    hyperparameters = data.method.supervised?.hyperparameters ?? {};
    hyperparametersParam = "method.supervised.hyperparameters";
  } else if (data.method?.type === "dpo") {
    objective = "dpo";
    const useLora = data.method.dpo?.use_lora;
    method = useLora == null ? null : useLora ? "lora" : "full";
    methodParam = "method.dpo.use_lora";
    hyperparameters = data.method.dpo?.hyperparameters ?? {};
    hyperparametersParam = "method.dpo.hyperparameters";
  }
  checkObjective(objective, hyperparameters, hyperparametersParam);
  const validationFile = data.validation_file ?? null;
  checkValidationData(hyperparameters, validationFile !== null, hyperparametersParam);

  return {
    model: data.model,
    trainingFile: data.training_file,
    validationFile,
    objective,
    method,
    methodParam,
    hyperparameters,
    hyperparametersParam,
    modelCode: data.model_code ?? null,
    name: data.name ?? null,
    suffix: data.suffix ?? null,
    seed: data.seed ?? null,
    metadata: data.metadata ?? null,
    dryRun: data.dry_run ?? false,
    requestId: data.request_id ?? null,
  };
}

/** What {@link planJob} decided: everything the job record needs besides ids, tenant and times. */
export interface JobPlan {
  readonly baseModel: BaseModel;
  readonly objective: TrainingObjective;
  readonly method: TrainingMethod;
  /** The fine-tuned model the job starts from (DPO after SFT); null from the base model's weights. */
  readonly initModel: InitModel | null;
  readonly hyperparameters: ResolvedHyperparameters;
  readonly modelCode: string;
  /** The request's `suffix`, shown as OpenAI's `user_provided_suffix`. */
  readonly userProvidedSuffix: string | null;
  /** GPUs, nodes and instance type (resources.ts): what the dispatcher submits and the dry run shows. */
  readonly resources: ResourcePlan;
}

export interface PlanContext {
  /** The new job's id: the default seed derives from it. */
  readonly jobId: string;
  /** Size of the (processed) training file, from its validation statistics. */
  readonly dataset: DatasetSize;
  readonly catalog?: BaseModelCatalog;
  /** The generated code's random tag (tests pin it). */
  readonly tag?: string;
  /** The deployment's instance types (CDK); every type the planner knows when absent (local platform). */
  readonly instanceTypes?: ConfiguredInstanceTypes;
  /**
   * The tenant's fine-tuned model whose code `model` is, when it is not a base model's name: the caller
   * looks it up (models table) and passes it only when the tenant owns it, so another tenant's code and
   * an unknown one answer alike. Only a DPO job may start from it.
   */
  readonly fineTunedModel?: FineTunedModelCandidate;
}

/** What planning reads of a fine-tuned model a job would start from (its {@link ModelRecord}). */
export type FineTunedModelCandidate = Pick<
  ModelRecord,
  "modelCode" | "jobId" | "baseModel" | "method" | "status" | "objective"
>;

/**
 * Checks a parsed request against the catalog and resolves it: the base model must exist (400
 * `model_not_found`, param `model`), the method must be allowed for it (param `method.type`), the
 * hyperparameters must fit method and model, and a chosen model code must not be a base model name.
 * Without `model_code` a code is generated from `suffix`. A DPO job may name the tenant's succeeded
 * supervised model instead of a base model ({@link startingPoint}).
 */
export function planJob(request: CreateJobRequest, context: PlanContext): JobPlan {
  const catalog = context.catalog ?? DEFAULT_CATALOG;
  const { baseModel, initModel } = startingPoint(request, context.fineTunedModel, catalog);
  const method = request.method ?? initModel?.method ?? defaultMethod(baseModel);
  if (initModel && method !== initModel.method) throw methodMismatch(initModel, method);
  checkMethod(method, request.hyperparameters, baseModel, request.hyperparametersParam, request.methodParam);
  if (request.modelCode !== null) validateModelCode(request.modelCode, catalog);
  const seed = request.seed ?? deriveSeed(context.jobId);
  const hyperparameters = resolveHyperparameters(
    method,
    request.hyperparameters,
    baseModel,
    context.dataset,
    seed,
    request.hyperparametersParam,
    request.objective,
  );
  // A job that fits no configured GPU is a 400 naming what to change, before anything is created.
  // Each global batch is split over the GPUs; sizing with the whole batch per GPU is the safe side.
  // A DPO example is two sequences through the model (the prompt with each output), so twice the batch.
  const resources = planResources({
    model: baseModel,
    method,
    maxSeqLength: hyperparameters.max_seq_length,
    microBatchSize: hyperparameters.batch_size * (request.objective === "dpo" ? 2 : 1),
    ...(hyperparameters.lora_r !== null ? { loraRank: hyperparameters.lora_r } : {}),
    hyperparametersParam: request.hyperparametersParam,
    ...(context.instanceTypes
      ? { instanceTypes: configuredInstanceTypes(context.instanceTypes, method) }
      : {}),
  });
  return {
    baseModel,
    objective: request.objective,
    method,
    initModel,
    hyperparameters,
    modelCode: request.modelCode ?? generateModelCode(baseModel.name, request.suffix, context.tag),
    userProvidedSuffix: request.suffix,
    resources,
  };
}

/**
 * The base model a job trains and the fine-tuned model it starts from, if any. `model` is a base
 * model's name, or, for a DPO job only, the code of the tenant's own model whose supervised job
 * succeeded: the job then trains that model's base, starting from its adapter or weights. An unknown
 * name, another tenant's code (the caller passes none) and any code for a supervised job are the same
 * 400 `model_not_found`, so a code's existence is never revealed.
 */
function startingPoint(
  request: CreateJobRequest,
  fineTuned: FineTunedModelCandidate | undefined,
  catalog: BaseModelCatalog,
): { baseModel: BaseModel; initModel: InitModel | null } {
  const base = findBaseModel(request.model, catalog);
  if (base) return { baseModel: base, initModel: null };
  if (request.objective !== "dpo" || !fineTuned || fineTuned.modelCode !== request.model) {
    throw new InvalidRequestError(
      `'${request.model}' is not a base model that can be fine-tuned; GET /v4/models lists them.`,
      "model",
      "model_not_found",
    );
  }
  const code = fineTuned.modelCode;
  if ((fineTuned.objective ?? "supervised") !== "supervised") {
    throw new InvalidRequestError(
      `Model '${code}' was trained with DPO; a DPO job starts from a base model or from a supervised fine-tuned model.`,
      "model",
      "invalid_model",
    );
  }
  if (fineTuned.status !== "ready") {
    throw new InvalidRequestError(
      `Model '${code}' is not ready (its job ${fineTuned.jobId} has not succeeded); a DPO job starts from a model whose job succeeded.`,
      "model",
      "model_not_ready",
    );
  }
  const baseModel = findBaseModel(fineTuned.baseModel, catalog);
  if (!baseModel) {
    throw new InvalidRequestError(
      `Model '${code}' was trained from base model '${fineTuned.baseModel}', which is no longer offered.`,
      "model",
      "model_not_found",
    );
  }
  return {
    baseModel,
    initModel: { modelCode: code, jobId: fineTuned.jobId, method: fineTuned.method },
  };
}

/**
 * 400: DPO from a fine-tuned model trains what that model is, so `use_lora` must match it: a LoRA model
 * is an adapter over its base (DPO trains the same adapter further, and chat serves the result the same
 * way); a full model is whole weights (DPO trains all of them).
 */
function methodMismatch(initModel: InitModel, method: TrainingMethod): InvalidRequestError {
  const what =
    initModel.method === "lora"
      ? "a LoRA adapter, so DPO from it trains that adapter further: use_lora must be true (or absent)"
      : "full-parameter weights, so DPO from it trains all of them: use_lora must be false (or absent)";
  return new InvalidRequestError(
    `Model '${initModel.modelCode}' is ${what}; '${method}' training can not start from it.`,
    "method.dpo.use_lora",
    "unsupported_method",
  );
}

export { toInvalidRequest };
