/**
 * IAM key patterns of the S3 layout in `contract/platform.json` (the one the Lambdas and the Python
 * images build keys with), each `{name}` a wildcard: a grant follows the layout instead of restating it.
 * Pure data, like definitions.ts.
 */

import { CONTRACT } from "../../lambdas/core/contract.ts";

const s3 = CONTRACT.s3;
/** Every `{name}` of a layout pattern → `*`. */
const anyValue = (pattern: string): string => pattern.replace(/\{[A-Za-z]+\}/g, "*");
const jobRoot = anyValue(s3.jobRoot);

export const KEY_PATTERNS = {
  /** Every tenant's dataset objects (datasets bucket). */
  datasets: anyValue(s3.datasetObject),
  /** Every tenant's results files (datasets bucket): jobs' results.csv, copied there by job-status. */
  resultsFiles: anyValue(s3.resultsFileObject),
  /** Everything under every job's root (artifacts bucket): the trainer's output. */
  jobs: `${jobRoot}*`,
  /** Every job's checkpoints: their manifests are what `GET …/checkpoints` reads. */
  checkpoints: `${jobRoot}${s3.checkpoints}*`,
  /** Every LoRA job's adapter. */
  adapters: `${jobRoot}${s3.result.lora}*`,
  /** Every full-parameter job's weights. */
  models: `${jobRoot}${s3.result.full}*`,
  /**
   * Every job's `result.json`, which the trainer writes last; job-status reads it to tell a complete
   * result (lambdas/job-status/apply.ts).
   */
  results: `${jobRoot}${s3.resultSummary}`,
  /** Every job's `results.csv`, which job-status copies to the tenant's files on success. */
  resultsCsv: `${jobRoot}${s3.resultsCsv}`,
} as const;
