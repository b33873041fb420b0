import { z } from "zod";
import platformJson from "../../contract/platform.json" with { type: "json" };

/**
 * `contract/platform.json`: what the Lambdas and the Python images (trainer, inference) must agree on,
 * read by both sides (`contract/python/ft_contract/platform.py`): the S3 layout, the events table's key
 * format, the checkpoint manifest, the trainer's exit codes, the terminal statuses and the `x-ft-*`
 * headers the chat relay sends the inference server. `contract/fixtures/cases.json` holds the cases
 * that vitest (`test/unit/contract.test.ts`) and pytest (`contract/python/tests`) both check.
 */

const template = (...names: string[]) =>
  z.string().refine((value) => names.every((name) => value.includes(`{${name}}`)), {
    message: `must contain ${names.map((name) => `{${name}}`).join(", ")}`,
  });
const prefix = z.string().regex(/^[a-z0-9._-]+\/$/, "must be a relative prefix ending in '/'");

const platformSchema = z
  .object({
    $comment: z.string().optional(),
    s3: z
      .object({
        tenantPrefix: template("tenantId"),
        datasetObject: template("tenantId", "fileId"),
        /** A job's results CSV as a tenant file (job-status copies it there on success). */
        resultsFileObject: template("tenantId", "fileId"),
        jobRoot: template("tenantId", "jobId"),
        checkpoints: prefix,
        checkpoint: template("step"),
        checkpointManifest: z.string().min(1),
        metrics: z.string().min(1),
        /** Written last by the trainer: its presence is what a complete run means. */
        resultSummary: z.string().min(1),
        /** Per-step metrics as CSV (the job's result file, OpenAI's `result_files`). */
        resultsCsv: z.string().min(1),
        result: z.object({ lora: prefix, full: prefix }).strict(),
        baseModelsPrefix: prefix,
        baseModel: template("name"),
      })
      .strict()
      // A results file must never be taken for a dataset to validate or train on.
      .refine((s3) => s3.resultsFileObject !== s3.datasetObject, {
        message: "resultsFileObject must differ from datasetObject",
        path: ["resultsFileObject"],
      }),
    events: z
      .object({
        partitionKey: template("tenantId", "jobId"),
        sortKeyPrefix: z.string().min(1),
        millisDigits: z.number().int().min(13),
        randomHexChars: z.number().int().min(1),
      })
      .strict(),
    checkpointManifest: z
      .object({
        required: z.record(z.string(), z.string()),
        optional: z.record(z.string(), z.string()),
      })
      .strict(),
    exitCodes: z
      .object({
        succeeded: z.literal(0),
        failed: z.number().int().min(1).max(255),
        invalidInput: z.number().int().min(1).max(255),
        outOfMemory: z.number().int().min(1).max(255),
        /** The trainer stopped on SIGTERM (a pause, a Spot reclaim) after writing a checkpoint. */
        stopped: z.number().int().min(1).max(255),
      })
      .strict(),
    jobErrorCodes: z
      .object({ invalidInput: z.string(), outOfMemory: z.string(), failed: z.string() })
      .strict(),
    /** Every job status, in the state machine's order (lambdas/core/jobs/state-machine.ts checks it). */
    jobStatuses: z.array(z.string()).min(1),
    terminalStatuses: z.array(z.enum(["succeeded", "failed", "cancelled"])).min(1),
    headers: z
      .object({
        baseModel: z.string().regex(/^x-ft-[a-z-]+$/),
        method: z.string().regex(/^x-ft-[a-z-]+$/),
        artifactUri: z.string().regex(/^x-ft-[a-z-]+$/),
      })
      .strict(),
  })
  .strict();

export type PlatformContract = z.infer<typeof platformSchema>;

/** The contract, validated at module load. */
export const CONTRACT: PlatformContract = platformSchema.parse(platformJson);

/** `template` with each `{name}` replaced by its value. */
export function fill(pattern: string, values: Readonly<Record<string, string | number>>): string {
  return pattern.replace(/\{([A-Za-z]+)\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for ${whole} in '${pattern}'`);
    return String(value);
  });
}

const s3 = CONTRACT.s3;

/** `tenants/{tenant}/`: every key a tenant owns starts with it. */
export const tenantPrefix = (tenantId: string): string => fill(s3.tenantPrefix, { tenantId });

/** `tenants/{tenant}/files/{fileId}.jsonl`: the tenant leads the key, so IAM and lookups can pin it. */
export const datasetObjectKey = (tenantId: string, fileId: string): string =>
  fill(s3.datasetObject, { tenantId, fileId });

/**
 * `tenants/{tenant}/files/{fileId}.csv`: a job's results file (purpose `fine-tune-results`) in the
 * datasets bucket, beside the tenant's uploads; not `.jsonl`, so never taken for a dataset to validate.
 */
export const resultsFileObjectKey = (tenantId: string, fileId: string): string =>
  fill(s3.resultsFileObject, { tenantId, fileId });

/** `base-models/{name}/`: where the operator puts a base model's weights in the artifacts bucket. */
export const baseModelPrefix = (name: string): string => fill(s3.baseModel, { name });

/**
 * Artifact keys of a job in the artifacts bucket:
 * `tenants/{tenant}/jobs/{jobId}/{checkpoints/, adapter/ or model/, metrics.jsonl}`.
 */
export function jobArtifactKeys(tenantId: string, jobId: string, method: "lora" | "full") {
  const root = fill(s3.jobRoot, { tenantId, jobId });
  return {
    root,
    checkpoints: `${root}${s3.checkpoints}`,
    result: `${root}${s3.result[method]}`,
    metrics: `${root}${s3.metrics}`,
    resultSummary: `${root}${s3.resultSummary}`,
    resultsCsv: `${root}${s3.resultsCsv}`,
  };
}

/** `checkpoints/step-{step}/` (relative to the job's root). */
export const checkpointPrefix = (step: number): string => fill(s3.checkpoint, { step });

/** The step of a key under a job's `checkpoints/`, or undefined when it is not `…/step-N/…`. */
export function checkpointStepOf(keyUnderCheckpoints: string): number | undefined {
  const [before, after] = s3.checkpoint.slice(s3.checkpoints.length).split("{step}");
  const match = new RegExp(`^${escapeRegExp(before ?? "")}(\\d+)${escapeRegExp(after ?? "")}`).exec(
    keyUnderCheckpoints,
  );
  return match ? Number(match[1]) : undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Partition key of the events table: `{tenantId}#{jobId}` (the tenant leads, as in every tenant-owned key). */
export const jobKey = (tenantId: string, jobId: string): string =>
  fill(CONTRACT.events.partitionKey, { tenantId, jobId });

/**
 * Sort key of the events table: `evt#{epoch ms, 13 digits}#{6 hex}`. Zero-padded millis sort as text
 * until the year 2286; the random tail keeps two events of the same millisecond (trainer and status
 * Lambda writing at once) from overwriting each other.
 */
export function eventKey(epochMillis: number, randomHex: string): string {
  const { sortKeyPrefix, millisDigits, randomHexChars } = CONTRACT.events;
  if (!Number.isInteger(epochMillis) || epochMillis < 0 || epochMillis >= 10 ** millisDigits) {
    throw new Error(`epoch millis out of range: ${epochMillis}`);
  }
  if (!new RegExp(`^[0-9a-f]{${randomHexChars}}$`).test(randomHex)) {
    throw new Error(`eventKey needs ${randomHexChars} lowercase hex characters`);
  }
  return `${sortKeyPrefix}${String(epochMillis).padStart(millisDigits, "0")}#${randomHex}`;
}

const FIELD_TYPES: Record<string, z.ZodType> = {
  integer: z.number().int().nonnegative(),
  number: z.number(),
  "number|null": z.number().nullable(),
  "record<number|null>": z.record(z.string(), z.number().nullable()),
  string: z.string(),
};

function fieldSchema(type: string): z.ZodType {
  const schema = FIELD_TYPES[type];
  if (!schema) throw new Error(`contract/platform.json: unknown manifest field type '${type}'`);
  return schema;
}

/**
 * A checkpoint's manifest (`checkpoints/step-N/checkpoint.json`, written last by the trainer, so its
 * presence means the checkpoint is complete). Fields beyond the contract's are kept, not refused: a
 * newer trainer may add some.
 */
export const checkpointManifestSchema = z.looseObject({
  ...Object.fromEntries(
    Object.entries(CONTRACT.checkpointManifest.required).map(([k, t]) => [k, fieldSchema(t)]),
  ),
  ...Object.fromEntries(
    Object.entries(CONTRACT.checkpointManifest.optional).map(([k, t]) => [k, fieldSchema(t).optional()]),
  ),
}) as unknown as z.ZodType<CheckpointManifest>;

export interface CheckpointManifest {
  readonly step: number;
  readonly created_at?: number;
  readonly trained_tokens?: number;
  readonly first_loss?: number | null;
  readonly metrics?: Record<string, number | null>;
  readonly world_size?: number;
  readonly format?: string;
}

/** The trainer's exit codes (0 success, then bad input, out of memory, anything else). */
export const EXIT_CODES = CONTRACT.exitCodes;

/** The job error `code` for a trainer exit code. */
export function failureCode(exitCode: number | undefined): string {
  if (exitCode === EXIT_CODES.invalidInput) return CONTRACT.jobErrorCodes.invalidInput;
  if (exitCode === EXIT_CODES.outOfMemory) return CONTRACT.jobErrorCodes.outOfMemory;
  return CONTRACT.jobErrorCodes.failed;
}

/** The `x-ft-*` headers that tell the inference server what to load for a fine-tuned model. */
export const FT_HEADERS = CONTRACT.headers;
