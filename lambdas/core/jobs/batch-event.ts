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
  readonly batchStatus: string;
  /** Undefined for a status the state machine does not know (ignored, never guessed). */
  readonly event: JobEvent | undefined;
  /** The trainer's exit code on FAILED/SUCCEEDED, when Batch reported one. */
  readonly exitCode: number | undefined;
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
    batchStatus: d.status,
    event: batchStatusToEvent(d.status, {
      ...(failureReason(exitCode, reason) ? { statusReason: failureReason(exitCode, reason)! } : {}),
      ...(attempt && attempt > 1 ? { attempt } : {}),
    }),
    exitCode,
    reason,
  };
}

/**
 * The trainer's exit codes (`contract/platform.json`: 2 bad input, 3 out of memory, 1 anything else).
 * The job's error message prefers the trainer's own error event; this is the fallback.
 */
export function failureReason(exitCode: number | undefined, reason: string | undefined): string | undefined {
  switch (exitCode) {
    case EXIT_CODES.invalidInput:
      return "the training data, base model or configuration was rejected (see the job's events)";
    case EXIT_CODES.outOfMemory:
      return "out of GPU memory; lower batch_size or max_seq_length";
    default:
      return reason;
  }
}

/** The job error `code` for a trainer exit code. */
export { failureCode } from "../contract.ts";
