import { type FileRecord, isTrainingFile, RESULTS_FILE_CONTENT_TYPE } from "./file-record.ts";

/**
 * The OpenAI `file` object, plus this platform's validation results (`statistics`, `validation`),
 * which the OpenAI SDKs pass through untouched. A results file (`fine-tune-results`) was never
 * validated: its `validation` is null.
 */
export function toFileObject(record: FileRecord) {
  const validated = isTrainingFile(record) && (record.status === "processed" || record.status === "error");
  return {
    id: record.fileId,
    object: "file" as const,
    bytes: record.bytes,
    created_at: record.createdAt,
    filename: record.filename,
    purpose: record.purpose,
    status: record.status,
    status_details: record.statusDetails ?? null,
    format: record.format ?? null,
    statistics: record.statistics ?? null,
    validation: validated
      ? {
          errors: record.errors ?? [],
          error_counts: record.errorCounts ?? {},
          errors_truncated: record.errorsTruncated ?? false,
        }
      : null,
  };
}

export type FileObject = ReturnType<typeof toFileObject>;

/**
 * The `content-type` of `GET /files/{id}/content`: a dataset is JSON Lines whatever type its upload
 * declared (the validator read it as such); a results file is CSV.
 */
export function servedContentType(record: Pick<FileRecord, "purpose">): string {
  return isTrainingFile(record) ? "application/jsonl" : RESULTS_FILE_CONTENT_TYPE;
}
