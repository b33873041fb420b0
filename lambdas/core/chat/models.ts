import { type BaseModel, type BaseModelCatalog, findBaseModel } from "../catalog/base-models.ts";
import { FT_HEADERS } from "../contract.ts";
import { ConflictError, InvalidRequestError, NotFoundError, ServiceUnavailableError } from "../errors.ts";
import type { ModelRecord } from "../jobs/wire.ts";

/** Looks a model code up across tenants (the models table's key); the caller checks the owner. */
export type FindModel = (modelCode: string) => Promise<ModelRecord | undefined>;

/** What `model` names: a base model, or a fine-tuned model the tenant owns and may chat with. */
export interface ResolvedModel {
  /** The `model` the client sent, which every chunk carries back. */
  readonly requested: string;
  readonly base: BaseModel;
  /** Set for a fine-tuned model: what the inference server needs to load it. */
  readonly fineTuned?: {
    readonly modelCode: string;
    readonly method: ModelRecord["method"];
    readonly artifactUri: string;
    readonly jobId: string;
    /** A full-parameter model's own server (its deployment's address); LoRA models use their base's. */
    readonly endpoint?: string;
  };
}

/**
 * Resolves `model`: a base model of the catalog, else a model code. Unknown codes and other tenants'
 * codes get the same 404, so a code's existence does not leak across tenants.
 */
export async function resolveModel(
  model: string,
  tenantId: string,
  deps: { readonly catalog: BaseModelCatalog; readonly findModel: FindModel },
): Promise<ResolvedModel> {
  const base = findBaseModel(model, deps.catalog);
  if (base) return { requested: model, base };
  const notFound = new NotFoundError(
    `The model '${model}' does not exist or you do not have access to it.`,
    "model_not_found",
    "model",
  );
  const record = await deps.findModel(model);
  if (!record || record.tenantId !== tenantId) throw notFound;
  if (record.status === "pending") {
    throw new ConflictError(
      `The model '${model}' is not ready yet: its fine-tuning job ${record.jobId} is still running. Retry when the job has succeeded.`,
      "model_not_ready",
      "model",
    );
  }
  if (record.status === "failed") {
    throw new ConflictError(
      `The model '${model}' can not be used: its fine-tuning job ${record.jobId} did not succeed.`,
      "model_failed",
      "model",
    );
  }
  if (!record.artifactUri) {
    // Ready without a result would be a bug of the job-status function; the client can only retry later.
    throw new ConflictError(
      `The model '${model}' has no trained weights recorded yet. Retry shortly.`,
      "model_not_ready",
      "model",
    );
  }
  const recordBase = findBaseModel(record.baseModel, deps.catalog);
  if (!recordBase) {
    throw new ServiceUnavailableError(
      `The base model '${record.baseModel}' of '${model}' is no longer served by this platform.`,
      "model_not_served",
    );
  }
  const endpoint = record.method === "full" ? deployedEndpoint(record) : undefined;
  return {
    requested: model,
    base: recordBase,
    fineTuned: {
      modelCode: record.modelCode,
      method: record.method,
      artifactUri: record.artifactUri,
      jobId: record.jobId,
      ...(endpoint ? { endpoint } : {}),
    },
  };
}

/**
 * A full-parameter model is served by a server of its own, which exists only while it is deployed:
 * its address, or 409 `model_not_deployed` naming the deploy call.
 */
function deployedEndpoint(record: ModelRecord): string {
  const deployment = record.deployment;
  if (deployment?.status === "deployed" && deployment.endpoint) return deployment.endpoint;
  const code = record.modelCode;
  const how = `POST /v4/models/${code}/deploy (ftctl models deploy ${code})`;
  const message =
    deployment?.status === "deploying"
      ? `The model '${code}' is being deployed; retry when GET /v4/models/${code} shows deployment.status 'deployed'.`
      : deployment?.status === "failed"
        ? `The model '${code}' is a full-parameter model and its last deployment failed; deploy it again with ${how}.`
        : `The model '${code}' is a full-parameter model and is not deployed; deploy it with ${how}, then retry.`;
  throw new ConflictError(message, "model_not_deployed", "model");
}

/** `max_tokens` may not exceed the model's context (the upstream counts the prompt exactly). */
export function checkMaxTokens(maxTokens: number | undefined, model: ResolvedModel): void {
  if (maxTokens !== undefined && maxTokens > model.base.maxSeqLength) {
    throw new InvalidRequestError(
      `max_tokens is ${maxTokens}, but the context of '${model.requested}' holds ${model.base.maxSeqLength} tokens.`,
      "max_tokens",
    );
  }
}

/** Model code or base model name (or `*`) → base URL of an OpenAI-compatible server, ending in `/v1`. */
export type InferenceEndpoints = ReadonlyMap<string, string>;

/**
 * Parses `INFERENCE_ENDPOINTS`: a JSON object from a model code, a base model name or `*` (the default)
 * to a base URL (`http(s)://…/v1`). Throws an Error naming the bad entry: a broken value is an operator
 * mistake that should stop the function at cold start.
 */
export function parseInferenceEndpoints(value: string | undefined): InferenceEndpoints {
  if (value === undefined || value.trim() === "") return new Map();
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error("INFERENCE_ENDPOINTS is not valid JSON.");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error('INFERENCE_ENDPOINTS must be a JSON object, e.g. {"*": "http://localhost:8000/v1"}.');
  }
  const endpoints = new Map<string, string>();
  for (const [key, url] of Object.entries(parsed)) {
    if (typeof url !== "string") throw new Error(`INFERENCE_ENDPOINTS.${key} must be a URL string.`);
    let parsedUrl: URL;
    try {
      parsedUrl = new URL(url);
    } catch {
      throw new Error(`INFERENCE_ENDPOINTS.${key} is not a URL: '${url}'.`);
    }
    if (parsedUrl.protocol !== "http:" && parsedUrl.protocol !== "https:") {
      throw new Error(`INFERENCE_ENDPOINTS.${key} must be an http(s) URL.`);
    }
    endpoints.set(key, url.replace(/\/+$/, ""));
  }
  return endpoints;
}

/**
 * The server for a model: a deployed full-parameter model's own (from its deployment record), else its
 * base model's, else `*`. ServiceUnavailableError when none is configured.
 */
export function endpointFor(model: ResolvedModel, endpoints: InferenceEndpoints): string {
  const url = model.fineTuned?.endpoint ?? endpoints.get(model.base.name) ?? endpoints.get("*");
  if (!url) {
    throw new ServiceUnavailableError(
      `No inference server is configured for '${model.requested}'.`,
      "model_not_served",
    );
  }
  return url;
}

/**
 * The model name and headers the inference server gets: the base model name for a base model; for a
 * fine-tuned one its code plus `x-ft-*` headers that tell the server what to load on first use.
 */
export function upstreamTarget(model: ResolvedModel): { model: string; headers: Record<string, string> } {
  if (!model.fineTuned) return { model: model.base.name, headers: {} };
  return {
    model: model.fineTuned.modelCode,
    headers: {
      [FT_HEADERS.baseModel]: model.base.name,
      [FT_HEADERS.method]: model.fineTuned.method,
      [FT_HEADERS.artifactUri]: model.fineTuned.artifactUri,
    },
  };
}
