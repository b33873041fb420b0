import { Annotations } from "aws-cdk-lib";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import {
  type BaseModel,
  type BaseModelCatalog,
  buildCatalog,
  findBaseModel,
} from "../../lambdas/core/catalog/base-models.ts";
import { CONFIG_ENV } from "../resources/definitions.ts";

/** Lambda allows 4 KB of environment per function; the override shares it with the resource names. */
const OVERRIDE_WARNING_BYTES = 2048;

/**
 * The base-model catalog the app is synthesized with: the built-in one, or the operator's override
 * (CDK context `baseModelCatalog` or `baseModelCatalogFile`) merged in. The override is validated here
 * by the same `buildCatalog` the functions run at cold start, so a broken one fails `cdk synth` instead
 * of every function. Functions receive the override itself (`CONFIG_ENV.catalogOverride`) and merge it
 * into their built-in catalog as this does; the constructs read catalog facts (families, weights
 * locations) from {@link PlatformCatalog.models}.
 */
export class PlatformCatalog {
  readonly models: BaseModelCatalog;
  /** The override as JSON; undefined without one (the functions then use the built-in catalog). */
  readonly overrideJson?: string;

  constructor(override?: unknown) {
    this.models = buildCatalog(override);
    if (override !== undefined && override !== null) this.overrideJson = JSON.stringify(override);
  }

  /** The entry named `name`; a synth error naming the catalog's models when there is none. */
  model(name: string): BaseModel {
    const model = findBaseModel(name, this.models);
    if (!model) {
      throw new Error(
        `Base model ${name} is not in the catalog (${this.models.map((m) => m.name).join(", ")}).`,
      );
    }
    return model;
  }

  /** Gives a function that reads the catalog the operator's override; nothing without one. */
  bind(fn: lambda.Function): void {
    if (this.overrideJson === undefined) return;
    fn.addEnvironment(CONFIG_ENV.catalogOverride, this.overrideJson);
    if (Buffer.byteLength(this.overrideJson) > OVERRIDE_WARNING_BYTES) {
      Annotations.of(fn).addWarningV2(
        "ft:catalogOverrideSize",
        `The catalog override is ${Buffer.byteLength(this.overrideJson)} bytes of JSON; Lambda allows 4 KB of environment variables per function.`,
      );
    }
  }

  /** Key patterns of the weights of `models` (every entry by default): `base-models/{name}/*`. */
  weightsKeys(models: readonly BaseModel[] = this.models): string[] {
    return [...new Set(models.map((model) => `${model.weightsPrefix}*`))];
  }
}
