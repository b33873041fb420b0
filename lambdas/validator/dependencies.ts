import { SERVICES } from "../../infra/resources/definitions.ts";
import { documentClient, s3Client } from "../aws/clients.ts";
import { bucketName, configEnv, type Env, tableName } from "../aws/env.ts";
import { FilesRepository } from "../aws/files-repository.ts";
import { ObjectStore } from "../aws/object-store.ts";
import { observability, recordValidation } from "../aws/observability.ts";
import { catalogFromEnv, contextLimits } from "../core/catalog/base-models.ts";
import { validateDataset } from "../core/datasets/validate.ts";
import type { ValidatorDependencies } from "./process.ts";

/**
 * The validator's dependencies from an environment: the files table, the datasets bucket, and the base
 * model catalog (with the operator's override) whose sequence lengths over-length examples are counted
 * against, so a model the override adds is checked like a built-in one. Throws on a missing name or a
 * broken override: the cold start fails.
 */
export function validatorDependenciesFromEnv(env: Env = process.env): ValidatorDependencies {
  const { logger, metrics } = observability(SERVICES.validator);
  const limits = contextLimits(catalogFromEnv(configEnv("catalogOverride", env)));
  return {
    files: new FilesRepository(documentClient(), tableName("files", env)),
    datasets: new ObjectStore(s3Client(), bucketName("datasets", env)),
    validate: (source) => validateDataset(source, { contextLimits: limits }),
    log: (level, message, details) => logger[level](message, details),
    recordValidation: (sample) => recordValidation(metrics, sample),
  };
}
