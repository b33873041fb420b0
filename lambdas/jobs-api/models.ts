import {
  type BaseModel,
  type BaseModelCatalog,
  findBaseModel,
  listBaseModels,
} from "../core/catalog/base-models.ts";
import { toInvalidRequest } from "../core/http/request-errors.ts";
import { modelUpdateSchema } from "../core/jobs/display-name.ts";
import type { ModelsStore } from "../core/jobs/ports.ts";
import type { ModelRecord } from "../core/jobs/wire.ts";
import { type DeploymentsDependencies, releaseDeployment } from "./deployments.ts";
import { baseModelUnchangeable, modelNotFound, modelStillTraining } from "./errors.ts";

/**
 * `/v4/models…`: the catalog's base models beside the tenant's fine-tuned ones. Base models are
 * read-only; a fine-tuned model can be renamed and, once its job has ended, deleted (its code is free
 * again).
 */

export interface ModelsDependencies {
  readonly jobs: ModelsStore;
  readonly catalog: BaseModelCatalog;
  readonly deployments: DeploymentsDependencies["deployments"];
  readonly deploymentQueue: DeploymentsDependencies["deploymentQueue"];
}

export type ModelView =
  | { readonly kind: "base"; readonly model: BaseModel }
  | { readonly kind: "fine_tuned"; readonly record: ModelRecord };

/** Every base model, then the tenant's fine-tuned models (newest first). */
export async function listModels(
  deps: ModelsDependencies,
  tenantId: string,
): Promise<{ readonly base: readonly BaseModel[]; readonly fineTuned: readonly ModelRecord[] }> {
  return { base: listBaseModels(deps.catalog), fineTuned: await deps.jobs.listModels(tenantId) };
}

/** A base model by name, else the tenant's fine-tuned model by code; 404 otherwise. */
export async function retrieveModel(
  deps: ModelsDependencies,
  tenantId: string,
  name: string,
): Promise<ModelView> {
  const base = findBaseModel(name, deps.catalog);
  if (base) return { kind: "base", model: base };
  const record = await deps.jobs.getModel(name);
  if (!record || record.tenantId !== tenantId) throw modelNotFound(name);
  return { kind: "fine_tuned", record };
}

/** `code` when it is not a base model's name; 400 `model_not_{deletable,editable}` when it is. */
export function fineTunedCode(
  catalog: BaseModelCatalog,
  code: string,
  change: "deleted" | "changed",
): string {
  if (findBaseModel(code, catalog)) throw baseModelUnchangeable(code, change);
  return code;
}

/**
 * Deletes the tenant's fine-tuned model, undeploying it first when it has a live deployment; 409
 * `model_not_ready` while its job has not ended. The code.
 */
export async function deleteModel(deps: ModelsDependencies, tenantId: string, code: string): Promise<string> {
  fineTunedCode(deps.catalog, code, "deleted");
  const record = await deps.jobs.getModel(code);
  if (record && record.tenantId === tenantId && record.status !== "pending") {
    await releaseDeployment(deps, record);
  }
  const result = await deps.jobs.deleteModel(tenantId, code);
  switch (result.outcome) {
    case "deleted":
      return code;
    case "not_found":
      throw modelNotFound(code);
    case "still_training":
      throw modelStillTraining(code, result.jobId);
  }
}

/** The display name of a `POST /v4/models/{code}` body (`{"name": …}`; null clears it). */
export function parseModelName(body: unknown): string | null {
  const parsed = modelUpdateSchema.safeParse(body, { reportInput: true });
  if (!parsed.success) throw toInvalidRequest(parsed.error);
  return parsed.data.name;
}

/**
 * Renames the tenant's fine-tuned model (and its job). The route checks `code` with
 * {@link fineTunedCode} before it reads the body, so a base model's name is a 400 whatever the body
 * says; the check here keeps the service whole on its own.
 */
export async function renameModel(
  deps: ModelsDependencies,
  tenantId: string,
  code: string,
  name: string | null,
): Promise<ModelRecord> {
  const updated = await deps.jobs.renameModel(tenantId, fineTunedCode(deps.catalog, code, "changed"), name);
  if (!updated) throw modelNotFound(code);
  return updated;
}
