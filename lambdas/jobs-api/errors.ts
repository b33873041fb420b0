import {
  ConflictError,
  InvalidRequestError,
  NotFoundError,
  ServiceUnavailableError,
  UnprocessableError,
} from "../core/errors.ts";
import type { FileRecord } from "../core/files/file-record.ts";

/**
 * The jobs API's answers to what the ports report (lambdas/core/jobs/ports.ts): each a named platform
 * error, which lambdas/core/errors.ts turns into the OpenAI error envelope. The jobs context's other
 * errors live with their rules: `modelCodeTaken` (model-code.ts), `jobNotCancellable` and
 * `jobNotDeletable` (state-machine.ts).
 */

/** `error` with `cause` set: PlatformError's constructor takes no ErrorOptions. */
export function causedBy<E extends Error>(error: E, cause: unknown): E {
  error.cause = cause;
  return error;
}

/** 404: another tenant's job and a job that never existed answer the same. */
export function jobNotFound(jobId: string): NotFoundError {
  return new NotFoundError(`No such fine-tuning job: ${jobId}`, "job_not_found", "fine_tuning_job_id");
}

/** 404 for a model code that does not exist or is another tenant's: the same answer for both. */
export function modelNotFound(modelCode: string): NotFoundError {
  return new NotFoundError(`The model '${modelCode}' does not exist.`, "model_not_found", "model");
}

/** 409: deleting a model whose job has not ended would let the job finish into a missing model. */
export function modelStillTraining(modelCode: string, jobId: string): ConflictError {
  return new ConflictError(
    `The model '${modelCode}' is still training; cancel its job ${jobId} first.`,
    "model_not_ready",
    "model",
  );
}

/** 400 for a base model's name where a fine-tuned model's code is needed. */
export function baseModelUnchangeable(name: string, change: "deleted" | "changed"): InvalidRequestError {
  return new InvalidRequestError(
    `'${name}' is a base model and can not be ${change}.`,
    "model",
    change === "deleted" ? "model_not_deletable" : "model_not_editable",
  );
}

/** 400: the file is not the tenant's, or does not exist. */
export function fileNotFound(fileId: string, param: string): InvalidRequestError {
  return new InvalidRequestError(`No such file: ${fileId}`, param, "file_not_found");
}

/** 400: the file is still being validated, or failed validation. */
export function fileNotProcessed(
  file: Pick<FileRecord, "fileId" | "status">,
  param: string,
): InvalidRequestError {
  const { fileId, status } = file;
  return new InvalidRequestError(
    status === "error"
      ? `File ${fileId} failed validation and can not be trained on; see GET /v4/files/${fileId}.`
      : `File ${fileId} is not processed yet (status '${status}'); wait until it is.`,
    param,
    "file_not_processed",
  );
}

/** 400: a preference (DPO) file for supervised training; it trains with `method.type: "dpo"`. */
export function preferenceFileForSupervised(fileId: string, param: string): InvalidRequestError {
  return new InvalidRequestError(
    `File ${fileId} holds preference (DPO) pairs; supervised fine-tuning needs "messages" or "input"/"target" lines. To train on preference pairs, create the job with method.type "dpo".`,
    param,
    "invalid_file_format",
  );
}

/** 400: a DPO job needs preference pairs, in its training and its validation file. */
export function supervisedFileForDpo(fileId: string, param: string): InvalidRequestError {
  return new InvalidRequestError(
    `File ${fileId} does not hold preference pairs; a DPO job (method.type "dpo") needs lines of "input", "preferred_output" and "non_preferred_output".`,
    param,
    "invalid_file_format",
  );
}

/** 400: a file that is not a training dataset, such as a job's results file (purpose `fine-tune-results`). */
export function fileNotForTraining(
  file: Pick<FileRecord, "fileId" | "purpose">,
  param: string,
): InvalidRequestError {
  return new InvalidRequestError(
    `File ${file.fileId} has purpose '${file.purpose}'; only files uploaded with purpose 'fine-tune' can be trained or validated on.`,
    param,
    "invalid_file_purpose",
  );
}

/** 400: the file was processed when checked, but no longer when the job was written. */
export function fileNoLongerProcessed(fileId: string, param: string): InvalidRequestError {
  return new InvalidRequestError(
    `File ${fileId} is no longer processed (deleted or changed); upload and validate it again.`,
    param,
    "invalid_file",
  );
}

export function invalidIdempotencyKey(): InvalidRequestError {
  return new InvalidRequestError(
    "Idempotency-Key must be 1–255 printable ASCII characters without spaces.",
    "Idempotency-Key",
    "invalid_idempotency_key",
  );
}

/** 422: the key was first sent with another body. */
export function idempotencyKeyReused(): UnprocessableError {
  return new UnprocessableError(
    "This Idempotency-Key was already used with a different request body; use a new key.",
    "idempotency_key_reused",
  );
}

/** 422: the job the key made is gone, so there is nothing to replay. */
export function idempotencyKeyJobDeleted(jobId: string): UnprocessableError {
  return new UnprocessableError(
    `The job this Idempotency-Key created (${jobId}) has been deleted; use a new key.`,
    "idempotency_key_reused",
  );
}

/**
 * A create lost the Idempotency-Key race, yet the winner's key record can not be read (expired within
 * the request): nothing to answer with but a 500.
 */
export class IdempotencyRaceUnresolvedError extends Error {
  constructor(readonly keyId: string) {
    super(`another request with the Idempotency-Key ${keyId} won, and its record can not be read`);
    this.name = "IdempotencyRaceUnresolvedError";
  }
}

/** 400: `after` names no object of the list. */
export function unknownCursor(
  of: "a job from a previous page" | "an event of this job" | "a checkpoint of this job",
): InvalidRequestError {
  return new InvalidRequestError(`after must be the id of ${of}.`, "after");
}

/** 503: the job was stored but could not be queued; it has been failed, so creating it again is safe. */
export function queueUnavailable(cause: unknown): ServiceUnavailableError {
  const name = cause instanceof Error ? cause.name : typeof cause;
  return causedBy(
    new ServiceUnavailableError(
      `The job could not be queued for training (${name}); create it again.`,
      "queue_unavailable",
    ),
    cause,
  );
}

/** 503: every attempt to cancel lost the conditional update to another status change. */
export function cancelKeptLosing(): ServiceUnavailableError {
  return new ServiceUnavailableError("The job kept changing while being cancelled; try again.");
}

/** 503: every attempt to pause or resume lost the conditional update to another status change. */
export function jobKeptChanging(action: "paused" | "resumed"): ServiceUnavailableError {
  return new ServiceUnavailableError(`The job kept changing while being ${action}; try again.`);
}

/** 503: the resumed job could not be queued; it is paused again, so resuming it again is safe. */
export function resumeQueueUnavailable(cause: unknown): ServiceUnavailableError {
  const name = cause instanceof Error ? cause.name : typeof cause;
  return causedBy(
    new ServiceUnavailableError(
      `The job could not be queued for training (${name}); it is still paused, resume it again.`,
      "queue_unavailable",
    ),
    cause,
  );
}
