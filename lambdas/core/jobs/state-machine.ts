import { CONTRACT } from "../contract.ts";
import { ConflictError } from "../errors.ts";

/**
 * The fine-tuning job state machine. Status moves only by a DynamoDB conditional update whose condition
 * is `status IN allowedFrom`, and every accepted event appends a job event with its message.
 *
 * ```
 * validating_files ──files_validated──► queued ──batch_starting / batch_running──► running
 *        │                               │  ▲ dispatched, batch_queued              │  ▲ dispatched, batch_queued
 *        │ files_invalid                 │  └───────────(stay)                      │  └── batch_starting, batch_running (stay)
 *        ▼                               ├──batch_succeeded──► succeeded ◄──────────┤
 *      failed ◄──────dispatch_failed─────┴──batch_failed─────► failed ◄─────────────┘
 * validating_files / queued / running / paused ──cancel_requested──► cancelled
 *
 * validating_files / queued / running ──pause_requested──► paused ──resume_requested──► queued
 *                                                            │  ▲ every other Batch event (stay)
 *                                                            ├──batch_succeeded──► succeeded
 *                                                            └──files_invalid────► failed
 * ```
 *
 * - Terminal states (`succeeded`, `failed`, `cancelled`) never change: a Batch event that arrives after a
 *   cancel (including the FAILED of the terminated Batch job) is rejected, never applied.
 * - Batch events may arrive out of order and more than once (EventBridge guarantees neither), so
 *   `batch_succeeded` / `batch_failed` are accepted from `queued` too, and a late `batch_queued`
 *   (RUNNABLE) never moves `running` back: Batch also returns to RUNNABLE before a retry (after a Spot
 *   reclaim), and the job stays `running` while the trainer resumes from its newest checkpoint.
 * - `dispatched` records the Batch job id; it is accepted in `running` too because SubmitJob's answer can
 *   come after Batch's first state change. Rejected in `cancelled`: the caller must then terminate the
 *   Batch job it just submitted (the cancel won the race).
 * - `paused` holds a job with no compute: its run (if any) was terminated after the trainer wrote a
 *   checkpoint on SIGTERM. The terminated run's own events change nothing (its FAILED is the pause, not
 *   a failure); only `batch_succeeded` is accepted, because a run whose training ended before the
 *   SIGTERM arrived delivered a complete result: success wins over the pause. `dispatched` is rejected
 *   as in `cancelled` (the caller terminates what it submitted; a resume submits a new run). Pausing a
 *   paused job is not an event (the handler answers the job unchanged), and `resume_requested` takes it
 *   back to `queued`, the dispatcher submits a new run and the trainer resumes from its newest
 *   checkpoint.
 */

export const JOB_STATUSES = [
  "validating_files",
  "queued",
  "running",
  "paused",
  "succeeded",
  "failed",
  "cancelled",
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** The statuses a job never leaves, as `contract/platform.json` states them for the trainer too. */
export const TERMINAL_STATUSES: readonly JobStatus[] = CONTRACT.terminalStatuses;

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export const JOB_EVENT_TYPES = [
  "files_validated",
  "files_invalid",
  "dispatched",
  "dispatch_failed",
  "batch_queued",
  "batch_starting",
  "batch_running",
  "batch_succeeded",
  "batch_failed",
  "cancel_requested",
  "pause_requested",
  "resume_requested",
] as const;
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

/** An event with the details its message and record update need. */
export type JobEvent =
  | { readonly type: "files_validated" }
  | { readonly type: "files_invalid"; readonly param?: string; readonly reason?: string }
  | { readonly type: "dispatched"; readonly batchJobId: string }
  | { readonly type: "dispatch_failed"; readonly reason?: string }
  | { readonly type: "batch_queued"; readonly batchStatus?: string; readonly attempt?: number }
  | { readonly type: "batch_starting" }
  | { readonly type: "batch_running"; readonly attempt?: number }
  | { readonly type: "batch_succeeded" }
  | { readonly type: "batch_failed"; readonly reason?: string }
  | { readonly type: "cancel_requested" }
  | { readonly type: "pause_requested" }
  | { readonly type: "resume_requested" };

/** The `error` of a failed job (OpenAI's `fine_tuning.job.error`). */
export interface JobError {
  readonly code: string;
  readonly message: string;
  readonly param: string | null;
}

export type EventLevel = "info" | "warn" | "error";

export type TransitionResult =
  | {
      readonly ok: true;
      readonly from: JobStatus;
      readonly to: JobStatus;
      /**
       * The DynamoDB condition: every status this event takes to `to`. Wider than `from` so that a
       * concurrent change the event would have handled the same way does not fail the write, and no
       * status it would handle differently can slip through.
       */
      readonly allowedFrom: readonly JobStatus[];
      /** `to !== from`: false for events that only record something (a Batch job id, a retry). */
      readonly changed: boolean;
      /** `to` is terminal: set `finishedAt`. */
      readonly finished: boolean;
      /** Set on transitions into `failed`. */
      readonly error: JobError | null;
      /** The job event to append. */
      readonly message: { readonly level: EventLevel; readonly text: string };
    }
  | {
      readonly ok: false;
      readonly from: JobStatus;
      /** `terminal`: the job is finished and never changes; `not_allowed`: the event makes no sense now. */
      readonly reason: "terminal" | "not_allowed";
    };

/** `to` of each accepted (status, event) pair; a missing pair is rejected. */
const TABLE: Readonly<Record<JobEventType, Partial<Record<JobStatus, JobStatus>>>> = {
  files_validated: { validating_files: "queued" },
  files_invalid: { validating_files: "failed", paused: "failed" },
  dispatched: { queued: "queued", running: "running" },
  dispatch_failed: { queued: "failed" },
  batch_queued: { queued: "queued", running: "running" },
  batch_starting: { queued: "running", running: "running" },
  batch_running: { queued: "running", running: "running" },
  // From `paused` too: training ended before the pause's SIGTERM, and the result is complete.
  batch_succeeded: { queued: "succeeded", running: "succeeded", paused: "succeeded" },
  batch_failed: { queued: "failed", running: "failed" },
  cancel_requested: {
    validating_files: "cancelled",
    queued: "cancelled",
    running: "cancelled",
    paused: "cancelled",
  },
  pause_requested: { validating_files: "paused", queued: "paused", running: "paused" },
  resume_requested: { paused: "queued" },
};

/** Where `event` takes a job in `status`, the condition for the update and the event to append. */
export function transition(status: JobStatus, event: JobEvent): TransitionResult {
  const row = TABLE[event.type];
  const to = row[status];
  if (to === undefined) {
    return { ok: false, from: status, reason: isTerminal(status) ? "terminal" : "not_allowed" };
  }
  const allowedFrom = JOB_STATUSES.filter((candidate) => row[candidate] === to);
  const error = to === "failed" ? failure(event) : null;
  return {
    ok: true,
    from: status,
    to,
    allowedFrom,
    changed: to !== status,
    finished: isTerminal(to),
    error,
    message: describe(event, status, to),
  };
}

function failure(event: JobEvent): JobError {
  switch (event.type) {
    case "files_invalid":
      return {
        code: "invalid_training_file",
        message: event.reason ?? "The training file could not be validated.",
        param: event.param ?? "training_file",
      };
    case "dispatch_failed":
      return {
        code: "dispatch_failed",
        message: event.reason ?? "The job could not be submitted for training.",
        param: null,
      };
    default:
      return {
        code: "training_failed",
        message: event.type === "batch_failed" && event.reason ? event.reason : "Training failed.",
        param: null,
      };
  }
}

function describe(event: JobEvent, from: JobStatus, to: JobStatus): { level: EventLevel; text: string } {
  switch (event.type) {
    case "files_validated":
      return { level: "info", text: "Files validated; job queued for training." };
    case "files_invalid":
      return {
        level: "error",
        text: `Training file validation failed${event.reason ? `: ${event.reason}` : "."}`,
      };
    case "dispatched":
      return { level: "info", text: `Job submitted to the training queue (batch job ${event.batchJobId}).` };
    case "dispatch_failed":
      return {
        level: "error",
        text: `Job could not be submitted${event.reason ? `: ${event.reason}` : "."}`,
      };
    case "batch_queued":
      return from === "running"
        ? {
            level: "warn",
            text: `Training interrupted; waiting for capacity to resume from the newest checkpoint${
              event.attempt ? ` (attempt ${event.attempt})` : ""
            }.`,
          }
        : { level: "info", text: "Waiting for training capacity." };
    case "batch_starting":
      return { level: "info", text: "Training container starting." };
    case "batch_running":
      return {
        level: "info",
        text:
          from === to
            ? "Training running."
            : `Training started${event.attempt ? ` (attempt ${event.attempt})` : ""}.`,
      };
    case "batch_succeeded":
      return { level: "info", text: "The job has successfully completed." };
    case "batch_failed":
      return { level: "error", text: `Training failed${event.reason ? `: ${event.reason}` : "."}` };
    case "cancel_requested":
      return { level: "info", text: "Job cancelled." };
    case "pause_requested":
      return {
        level: "info",
        text:
          from === "running"
            ? "Job paused: training stops after a checkpoint and its compute is released."
            : "Job paused before training started.",
      };
    case "resume_requested":
      return { level: "info", text: "Job resumed; queued to continue from its newest checkpoint." };
  }
}

/** AWS Batch job statuses (`detail.status` of EventBridge "Batch Job State Change"). */
export const BATCH_STATUSES = [
  "SUBMITTED",
  "PENDING",
  "RUNNABLE",
  "STARTING",
  "RUNNING",
  "SUCCEEDED",
  "FAILED",
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/**
 * The job event for a Batch status change, or undefined for a status Batch may add later (ignored
 * rather than guessed). SUBMITTED, PENDING and RUNNABLE all mean "waiting for capacity".
 */
export function batchStatusToEvent(
  status: string,
  detail: { statusReason?: string; attempt?: number } = {},
): JobEvent | undefined {
  switch (status) {
    case "SUBMITTED":
    case "PENDING":
    case "RUNNABLE":
      return {
        type: "batch_queued",
        batchStatus: status,
        ...(detail.attempt ? { attempt: detail.attempt } : {}),
      };
    case "STARTING":
      return { type: "batch_starting" };
    case "RUNNING":
      return { type: "batch_running", ...(detail.attempt ? { attempt: detail.attempt } : {}) };
    case "SUCCEEDED":
      return { type: "batch_succeeded" };
    case "FAILED":
      return { type: "batch_failed", ...(detail.statusReason ? { reason: detail.statusReason } : {}) };
    default:
      return undefined;
  }
}

/**
 * 409 for `POST /fine_tuning/jobs/{id}/cancel` on a job that has finished. A job already `cancelled` is
 * not an error: the handler returns it as is, so a retried cancel is idempotent.
 */
export function jobNotCancellable(status: JobStatus): ConflictError {
  return new ConflictError(
    `The job has already ${status === "succeeded" ? "succeeded" : "failed"} and can not be cancelled.`,
    "job_not_cancellable",
  );
}

/** 409 for `POST /fine_tuning/jobs/{id}/pause` on a job that has finished. */
export function jobNotPausable(status: JobStatus): ConflictError {
  return new ConflictError(
    `The job has already ${status === "cancelled" ? "been cancelled" : status} and can not be paused.`,
    "job_not_pausable",
  );
}

/** 409 for `POST /fine_tuning/jobs/{id}/resume` on a job that is not paused. */
export function jobNotResumable(status: JobStatus): ConflictError {
  return new ConflictError(
    `The job is ${status.replace("_", " ")}; only a paused job can be resumed.`,
    "job_not_resumable",
  );
}

/** 409 for deleting a job that has not ended: its run would finish into a missing record. */
export function jobNotDeletable(jobId: string, status: JobStatus): ConflictError {
  return new ConflictError(
    `The job ${jobId} is ${status.replace("_", " ")}; cancel it first (POST /v4/fine_tuning/jobs/${jobId}/cancel), then delete it.`,
    "job_not_finished",
    "fine_tuning_job_id",
  );
}
