import type { FileRecord } from "./file-record.ts";

/**
 * The OpenAI `file` object, plus this platform's validation results (`statistics`, `validation`),
 * which the OpenAI SDKs pass through untouched.
 */
export function toFileObject(record: FileRecord) {
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
    validation:
      record.status === "processed" || record.status === "error"
        ? {
            errors: record.errors ?? [],
            error_counts: record.errorCounts ?? {},
            errors_truncated: record.errorsTruncated ?? false,
          }
        : null,
  };
}

export type FileObject = ReturnType<typeof toFileObject>;
