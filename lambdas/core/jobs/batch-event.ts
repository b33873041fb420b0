import { z } from "zod";
import { EXIT_CODES } from "../contract.ts";
import { batchStatusToEvent, type JobEvent } from "./state-machine.ts";

/**
 * EventBridge "Batch Job State Change" → the platform job it concerns and the state-machine event. The
 * dispatcher submits every job with Batch parameters `tenantId` and `jobId` (they appear in the
 * event's `detail.parameters`; tags do not), and the Batch job name equal to the platform job id.
 * The local runner emits the same shape.
 */

const detailSchema = z.object({
  jobId: z.string(),
  jobName: z.string().optional(),
  status: z.string(),
  statusReason: z.string().optional(),
  parameters: z.record(z.string(), z.string()).optional(),
  attempts: z
    .array(
      z.object({
        container: z.object({ exitCode: z.number().optional(), reason: z.string().optional() }).optional(),
        statusReason: z.string().optional(),
      }),
    )
    .optional(),
  container: z.object({ exitCode: z.number().optional(), reason: z.string().optional() }).optional(),
});

export interface BatchStateChange {
  readonly tenantId: string;
  readonly jobId: string;
  readonly batchJobId: string;
  /** The Batch job name: the run's name (dispatch.ts `runName`), when the event carries it. */
  readonly runName: string | undefined;
  readonly batchStatus: string;
  /** Undefined for a status the state machine does not know (ignored, never guessed). */
  readonly event: JobEvent | undefined;
  /** The trainer's exit code on FAILED/SUCCEEDED, when Batch reported one. */
  readonly exitCode: number | undefined;
  /** Batch's own reason, as it reported it: for the operator's log, never the tenant's (see failureReason). */
  readonly reason: string | undefined;
}

/**
 * Parses an event's `detail`; undefined when it is not one of this platform's jobs (no parameters),
 * which the handler drops — the EventBridge rule already filters on the platform's job queues.
 */
export function parseBatchStateChange(detail: unknown): BatchStateChange | undefined {
  const parsed = detailSchema.safeParse(detail);
  if (!parsed.success) return undefined;
  const d = parsed.data;
  const tenantId = d.parameters?.tenantId;
  const jobId = d.parameters?.jobId;
  if (!tenantId || !jobId) return undefined;
  const lastAttempt = d.attempts?.[d.attempts.length - 1];
  const exitCode = d.container?.exitCode ?? lastAttempt?.container?.exitCode;
  const reason = d.container?.reason ?? lastAttempt?.container?.reason ?? d.statusReason;
  const attempt = d.attempts?.length ? d.attempts.length + (d.status === "RUNNING" ? 0 : 1) : undefined;
  return {
    tenantId,
    jobId,
    batchJobId: d.jobId,
    runName: d.jobName,
    batchStatus: d.status,
    event: batchStatusToEvent(d.status, {
      ...(d.status === "FAILED" ? { statusReason: failureReason(exitCode, reason, jobId) } : {}),
      ...(attempt && attempt > 1 ? { attempt } : {}),
    }),
    exitCode,
    reason,
  };
}

/**
 * Batch's own reasons that a tenant may read, reworded: the run's time limit and the loss of its
 * instance say what happened without naming the platform's resources. Any other reason (an image that
 * could not be pulled, with its registry's address; an agent's error) is the operator's alone.
 */
const TENANT_READABLE_REASONS: readonly (readonly [RegExp, string])[] = [
  [/^Job attempt duration exceeded timeout/i, "the run exceeded its time limit"],
  [
    /^Host EC2 \(instance [^)]*\) terminated/i,
    "its training instance was lost (a Spot reclaim, a host failure) on every attempt",
  ],
  [
    /^OutOfMemoryError: Container killed due to memory usage/i,
    "out of host memory; lower batch_size or max_seq_length",
  ],
];

/** A failure the tenant should not see the cause of: the job id is its reference for the operator. */
export function internalFailureReason(jobId: string): string {
  return `an internal error (reference ${jobId})`;
}

/**
 * The failure as the tenant reads it (the job's event and, when the trainer wrote no error event of its
 * own, the job's `error.message`). The trainer's exit codes (`contract/platform.json`: 2 bad input,
 * 3 out of memory) and a few of Batch's reasons say what happened; anything else is an internal error
 * with the job id as its reference, Batch's raw reason going to the operator's log (job-status).
 */
export function failureReason(
  exitCode: number | undefined,
  reason: string | undefined,
  jobId: string,
): string {
  switch (exitCode) {
    case EXIT_CODES.invalidInput:
      return "the training data, base model or configuration was rejected (see the job's events)";
    case EXIT_CODES.outOfMemory:
      return "out of GPU memory; lower batch_size or max_seq_length";
  }
  const readable = reason ? TENANT_READABLE_REASONS.find(([pattern]) => pattern.test(reason)) : undefined;
  return readable?.[1] ?? internalFailureReason(jobId);
}

/** The job error `code` for a trainer exit code. */
export { failureCode } from "../contract.ts";
