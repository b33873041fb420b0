import { checkpointManifestSchema } from "../contract.ts";
import { CHECKPOINT_ID_PREFIX } from "./ids.ts";
import type { CheckpointRecord, JobRecord } from "./wire.ts";

/**
 * Checkpoints are not stored in DynamoDB: the trainer's `checkpoints/step-N/checkpoint.json` (written
 * last, so its presence means the checkpoint is complete) is the record. This reads one; its fields are
 * `contract/platform.json`'s `checkpointManifest`.
 */
const manifestSchema = checkpointManifestSchema;

/** The checkpoint of `job` at `step` from its manifest; undefined when the manifest is not one. */
export function checkpointFromManifest(
  job: Pick<JobRecord, "jobId" | "modelCode" | "createdAt">,
  step: number,
  manifest: unknown,
): CheckpointRecord | undefined {
  const parsed = manifestSchema.safeParse(manifest);
  if (!parsed.success || parsed.data.step !== step) return undefined;
  const metrics: Record<string, number> = { step };
  for (const [name, value] of Object.entries(parsed.data.metrics ?? {})) {
    if (value !== null && Number.isFinite(value)) metrics[name] = value;
  }
  return {
    // Deterministic: the same checkpoint has the same id on every listing, so `after` works.
    checkpointId: `${CHECKPOINT_ID_PREFIX}-${job.jobId.slice(job.jobId.indexOf("-") + 1)}-${step}`,
    jobId: job.jobId,
    modelCode: job.modelCode,
    createdAt: parsed.data.created_at ?? job.createdAt,
    stepNumber: step,
    metrics,
  };
}
