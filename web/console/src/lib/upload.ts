/**
 * How a file travels: up to {@link MULTIPART_LIMIT_BYTES} as multipart through `POST /v4/files` (API
 * Gateway's payload limit, lambdas/core/files/file-record.ts), larger through `POST /v4/files/uploads`
 * and a PUT to the presigned URL it answers.
 */
export const MULTIPART_LIMIT_BYTES = 4 * 1024 * 1024;

export type UploadPath = "multipart" | "presigned";

export function uploadPath(bytes: number): UploadPath {
  return bytes <= MULTIPART_LIMIT_BYTES ? "multipart" : "presigned";
}

/** The content type a presigned upload declares: one the API accepts for JSONL. */
export function declaredMimeType(type: string): string {
  return ["application/jsonl", "application/x-ndjson", "application/json", "text/plain"].includes(type)
    ? type
    : "application/jsonl";
}

/** Whole percent of an upload, 0–100. */
export function percent(loaded: number, total: number): number {
  if (total <= 0) return 0;
  return Math.max(0, Math.min(100, Math.round((loaded / total) * 100)));
}
