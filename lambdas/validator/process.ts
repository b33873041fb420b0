import type { S3EventRecord } from "aws-lambda";
import type { FilesRepository } from "../aws/files-repository.ts";
import { ObjectNotFoundError, type ObjectStore } from "../aws/object-store.ts";
import type { ValidationSample } from "../aws/observability.ts";
import type { ValidationReport } from "../core/datasets/validate.ts";
import { parseDatasetObjectKey } from "../core/files/file-record.ts";

export interface ValidatorDependencies {
  readonly files: Pick<FilesRepository, "get" | "transition">;
  readonly datasets: Pick<ObjectStore, "stream">;
  readonly validate: (source: ReadableStream<Uint8Array>) => Promise<ValidationReport>;
  readonly log: (level: "info" | "warn", message: string, details: Record<string, unknown>) => void;
  readonly now?: () => number;
  /** Counts a file this delivery validated (the `FilesValidated` metric); not the skipped ones. */
  readonly recordValidation?: (sample: ValidationSample) => void;
}

export type Outcome = "processed" | "error" | "skipped";

/** Validates the objects named by one SQS message (an S3 event notification, possibly several records). */
export async function processS3Notification(body: string, deps: ValidatorDependencies): Promise<Outcome[]> {
  const notification = JSON.parse(body) as { Records?: S3EventRecord[]; Event?: string };
  // S3 sends a test event when the notification is configured; nothing to validate.
  if (!notification.Records) return [];
  const outcomes: Outcome[] = [];
  for (const record of notification.Records) {
    if (!record.eventName?.startsWith("ObjectCreated")) continue;
    outcomes.push(await validateObject(decodeKey(record.s3.object.key), record.s3.object.eTag ?? "", deps));
  }
  return outcomes;
}

/** S3 event keys are URL-encoded with `+` for spaces. */
function decodeKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, " "));
}

async function validateObject(key: string, eTag: string, deps: ValidatorDependencies): Promise<Outcome> {
  const now = () => Math.floor((deps.now?.() ?? Date.now()) / 1000);
  const owner = parseDatasetObjectKey(key);
  if (!owner) {
    // Written outside the layout the API hands out (by an operator, or a forged key): never a file.
    deps.log("warn", "ignoring object outside the tenant file layout", { key });
    return "skipped";
  }
  const file = await deps.files.get(owner.tenantId, owner.fileId);
  if (!file || file.objectKey !== key) {
    deps.log("warn", "ignoring object with no file record", { key });
    return "skipped";
  }
  if (file.status === "processed" || file.status === "error") {
    // A redelivered event for a file already validated changes nothing.
    deps.log("info", "file already validated", { key, status: file.status });
    return "skipped";
  }
  const fail = async (code: string, message: string, bytes?: number): Promise<Outcome> => {
    await deps.files.transition(owner.tenantId, owner.fileId, ["pending_upload", "uploaded"], "error", {
      validatedAt: now(),
      validatedETag: eTag,
      statusDetails: message,
      errors: [{ line: 0, path: "", code, message }],
      errorCounts: { [code]: 1 },
      errorsTruncated: false,
    });
    deps.recordValidation?.({ outcome: "error", bytes });
    return "error";
  };

  let object: Awaited<ReturnType<ObjectStore["stream"]>>;
  try {
    object = await deps.datasets.stream(key);
  } catch (error) {
    if (error instanceof ObjectNotFoundError)
      return fail(
        "object_missing",
        "The object was deleted before it could be validated; upload the file again.",
      );
    throw error;
  }
  if (file.status === "pending_upload" && object.bytes !== file.bytes) {
    await object.body.cancel();
    return fail(
      "size_mismatch",
      `The uploaded object has ${object.bytes} bytes but ${file.bytes} were declared.`,
      object.bytes,
    );
  }
  const report = await deps.validate(object.body);
  const status = report.status;
  const changed = await deps.files.transition(
    owner.tenantId,
    owner.fileId,
    ["pending_upload", "uploaded"],
    status,
    {
      bytes: object.bytes,
      validatedAt: now(),
      validatedETag: object.eTag || eTag,
      format: report.format,
      statistics: report.statistics as unknown as Record<string, unknown>,
      errors: report.errors,
      errorCounts: report.errorCounts,
      errorsTruncated: report.truncatedErrors,
      statusDetails:
        status === "error"
          ? `Validation found ${Object.values(report.errorCounts).reduce((a, b) => a + b, 0)} error(s); see validation.errors.`
          : undefined,
    },
  );
  if (!changed) {
    deps.log("info", "file changed while validating; result dropped", { key });
    return "skipped";
  }
  deps.recordValidation?.({ outcome: status, lines: report.statistics.lines, bytes: object.bytes });
  return status;
}
