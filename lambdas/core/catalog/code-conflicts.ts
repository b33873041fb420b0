import { ServiceUnavailableError } from "../errors.ts";
import type { BaseModelCatalog } from "./base-models.ts";

/**
 * A base model name must mean one thing: a tenant's model code is refused when it equals a catalog name
 * (model-code.ts), and, the other way round, a catalog that names a model a tenant already holds as a
 * code is refused where it is loaded: the jobs API and chat refuse to serve with it, and the local
 * platform refuses to start. Codes are lowercase, so a catalog name is compared in lowercase.
 */

/** Whether a model code is held by any tenant: the models table's key lookup. */
export type ModelCodeExists = (modelCode: string) => Promise<boolean>;

/** The catalog names some tenants' model codes that it is refused for. */
export class CatalogCodeConflictError extends Error {
  constructor(readonly names: readonly string[]) {
    const list = names.map((name) => `'${name}'`).join(", ");
    super(
      `The base model catalog names ${list}, already the model code of a tenant's fine-tuned model, so ` +
        "'model' would mean two things. Give the catalog entry another name, or have its owner delete the " +
        `model (DELETE /v4/models/${names[0]}), then load the catalog again.`,
    );
    this.name = "CatalogCodeConflictError";
  }
}

/** Throws {@link CatalogCodeConflictError} when a catalog name is a stored model code. */
export async function checkCatalogAgainstCodes(
  catalog: BaseModelCatalog,
  exists: ModelCodeExists,
): Promise<void> {
  const names = [...new Set(catalog.map((model) => model.name.toLowerCase()))];
  const held = await Promise.all(names.map(async (name) => ((await exists(name)) ? name : undefined)));
  const conflicts = held.filter((name): name is string => name !== undefined);
  if (conflicts.length > 0) throw new CatalogCodeConflictError(conflicts);
}

/**
 * The check once per process (a Lambda's cold start), before the first request is served: a failure is
 * logged for the operator and answered with a 503 (the tenant sees no other tenant's code), and is
 * checked again on the next request, so removing the conflict heals a warm function.
 */
export function catalogGuard(
  catalog: BaseModelCatalog,
  exists: ModelCodeExists,
  logError: (message: string, details: Record<string, unknown>) => void,
): () => Promise<void> {
  let checked: Promise<void> | undefined;
  return () => {
    checked ??= checkCatalogAgainstCodes(catalog, exists).catch((error: unknown) => {
      checked = undefined;
      if (!(error instanceof CatalogCodeConflictError)) throw error;
      logError("base model catalog refused", { error: error.message, names: error.names });
      throw new ServiceUnavailableError(
        "The platform's base model catalog is misconfigured; its operator has been told. Try again later.",
        "catalog_misconfigured",
      );
    });
    return checked;
  };
}
