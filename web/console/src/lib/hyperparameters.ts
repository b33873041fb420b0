import catalog from "../../../../contract/catalog.json" with { type: "json" };

/**
 * The hyperparameters the create form offers, with the bounds of `contract/catalog.json` (the file
 * the API and the trainer check against): an empty field is "auto", the API's default.
 */
export type FormHyperparameter =
  | "n_epochs"
  | "batch_size"
  | "learning_rate_multiplier"
  | "lora_r"
  | "lora_alpha"
  | "lora_dropout"
  | "max_seq_length";

export const FORM_HYPERPARAMETERS: readonly FormHyperparameter[] = [
  "n_epochs",
  "batch_size",
  "learning_rate_multiplier",
  "lora_r",
  "lora_alpha",
  "lora_dropout",
  "max_seq_length",
];

export interface Bound {
  readonly min: number;
  readonly max: number;
  readonly integer: boolean;
  readonly exclusiveMin: boolean;
}

interface NumericSpec {
  readonly type: string;
  readonly min?: number;
  readonly max?: number;
  readonly exclusiveMin?: boolean;
}

const SPECS = catalog.hyperparameters as unknown as Record<string, NumericSpec>;

/** The bound of a hyperparameter; `max_seq_length` is also capped by the model's own maximum. */
export function boundOf(name: FormHyperparameter, modelMaxSeqLength?: number): Bound {
  const spec = SPECS[name]!;
  const max =
    name === "max_seq_length" && modelMaxSeqLength ? Math.min(spec.max!, modelMaxSeqLength) : spec.max!;
  return { min: spec.min!, max, integer: spec.type === "integer", exclusiveMin: spec.exclusiveMin === true };
}

/** The hyperparameters a method takes (`methods.{method}.hyperparameters` of the catalog file). */
export function fieldsFor(method: "lora" | "full"): FormHyperparameter[] {
  const allowed = new Set<string>(catalog.methods[method].hyperparameters);
  return FORM_HYPERPARAMETERS.filter((name) => allowed.has(name));
}

/** `1–50`, `>0–10` */
export function describeBound(bound: Bound): string {
  return `${bound.exclusiveMin ? ">" : ""}${bound.min}–${bound.max}`;
}

/**
 * The `hyperparameters` object of a create request from the form's text fields: empty fields left
 * out (auto), others parsed and checked against their bounds. `invalid` lists the fields that are not.
 */
export function hyperparametersFromForm(
  values: Readonly<Partial<Record<FormHyperparameter, string>>>,
  method: "lora" | "full",
  modelMaxSeqLength?: number,
): { hyperparameters: Record<string, number>; invalid: FormHyperparameter[] } {
  const hyperparameters: Record<string, number> = {};
  const invalid: FormHyperparameter[] = [];
  for (const name of fieldsFor(method)) {
    const raw = (values[name] ?? "").trim();
    if (raw === "" || raw.toLowerCase() === "auto") continue;
    const value = Number(raw);
    const bound = boundOf(name, modelMaxSeqLength);
    const inRange =
      Number.isFinite(value) &&
      (bound.exclusiveMin ? value > bound.min : value >= bound.min) &&
      value <= bound.max &&
      (!bound.integer || Number.isInteger(value));
    if (inRange) hyperparameters[name] = value;
    else invalid.push(name);
  }
  return { hyperparameters, invalid };
}

/** A model code the API could accept (lambdas/core/jobs/model-code.ts: 3–64 characters, pattern). */
export function modelCodeSyntaxOk(code: string): boolean {
  return (
    code.length >= 3 &&
    code.length <= 64 &&
    /^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/.test(code) &&
    !/^(ft-|ftjob|ftevent|ftckpt|file-)/.test(code)
  );
}
