import { z } from "zod";
import {
  type BaseModel,
  type BaseModelCatalog,
  DEFAULT_CATALOG,
  defaultMethod,
  findBaseModel,
  type TrainingMethod,
} from "../catalog/base-models.ts";
import { InvalidRequestError } from "../errors.ts";
import { toInvalidRequest } from "../http/request-errors.ts";
import { displayNameSchema } from "./display-name.ts";
import {
  checkMethod,
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
 *   are a 400, since two sets of hyperparameters would be ambiguous.
 * `dpo` and `reinforcement` are 400 `unsupported_method`.
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
  /** null: the base model's default method ({@link defaultMethod}). */
  readonly method: TrainingMethod | null;
  readonly hyperparameters: HyperparameterInput;
  /** Where the hyperparameters were in the request, so later 400s name the path the client sent. */
  readonly hyperparametersParam:
    | "method.hyperparameters"
    | "method.supervised.hyperparameters"
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
  if (methodType === "dpo" || methodType === "reinforcement") {
    throw new InvalidRequestError(
      `method '${methodType}' is not supported; use 'lora', 'full' or 'supervised'.`,
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

  let method: TrainingMethod | null = null;
  let hyperparameters: HyperparameterInput = data.hyperparameters ?? {};
  let hyperparametersParam: CreateJobRequest["hyperparametersParam"] = "hyperparameters";
  if (data.method?.type === "lora" || data.method?.type === "full") {
    method = data.method.type;
    hyperparameters = data.method.hyperparameters ?? {};
    hyperparametersParam = "method.hyperparameters";
  } else if (data.method?.type === "supervised") {
    hyperparameters = data.method.supervised?.hyperparameters ?? {};
    hyperparametersParam = "method.supervised.hyperparameters";
  }

  return {
    model: data.model,
    trainingFile: data.training_file,
    validationFile: data.validation_file ?? null,
    method,
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
  readonly method: TrainingMethod;
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
}

/**
 * Checks a parsed request against the catalog and resolves it: the base model must exist (400
 * `model_not_found`, param `model`), the method must be allowed for it (param `method.type`), the
 * hyperparameters must fit method and model, and a chosen model code must not be a base model name.
 * Without `model_code` a code is generated from `suffix`.
 */
export function planJob(request: CreateJobRequest, context: PlanContext): JobPlan {
  const catalog = context.catalog ?? DEFAULT_CATALOG;
  const baseModel = findBaseModel(request.model, catalog);
  if (!baseModel) {
    throw new InvalidRequestError(
      `'${request.model}' is not a base model that can be fine-tuned; GET /v4/models lists them.`,
      "model",
      "model_not_found",
    );
  }
  const method = request.method ?? defaultMethod(baseModel);
  checkMethod(method, request.hyperparameters, baseModel, request.hyperparametersParam);
  if (request.modelCode !== null) validateModelCode(request.modelCode, catalog);
  const seed = request.seed ?? deriveSeed(context.jobId);
  const hyperparameters = resolveHyperparameters(
    method,
    request.hyperparameters,
    baseModel,
    context.dataset,
    seed,
    request.hyperparametersParam,
  );
  // A job that fits no configured GPU is a 400 naming what to change, before anything is created.
  // Each global batch is split over the GPUs; sizing with the whole batch per GPU is the safe side.
  const resources = planResources({
    model: baseModel,
    method,
    maxSeqLength: hyperparameters.max_seq_length,
    microBatchSize: hyperparameters.batch_size,
    ...(hyperparameters.lora_r !== null ? { loraRank: hyperparameters.lora_r } : {}),
    hyperparametersParam: request.hyperparametersParam,
    ...(context.instanceTypes
      ? { instanceTypes: configuredInstanceTypes(context.instanceTypes, method) }
      : {}),
  });
  return {
    baseModel,
    method,
    hyperparameters,
    modelCode: request.modelCode ?? generateModelCode(baseModel.name, request.suffix, context.tag),
    userProvidedSuffix: request.suffix,
    resources,
  };
}

export { toInvalidRequest };
