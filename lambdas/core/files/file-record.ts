/** Lifecycle of a training file. `pending_upload` precedes a presigned PUT; the rest follow OpenAI. */
export type FileStatus = "pending_upload" | "uploaded" | "processed" | "error";

export interface FileValidationIssue {
  readonly line: number;
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

/** The stored record in the `files` table (tenantId + fileId). */
export interface FileRecord {
  readonly tenantId: string;
  readonly fileId: string;
  readonly filename: string;
  readonly purpose: "fine-tune";
  readonly bytes: number;
  readonly contentType: string;
  readonly objectKey: string;
  readonly createdAt: number;
  readonly status: FileStatus;
  /** Set by the validator: which object version it validated (idempotency of redelivered events). */
  readonly validatedETag?: string;
  readonly validatedAt?: number;
  readonly statusDetails?: string;
  readonly format?: string | null;
  readonly statistics?: Record<string, unknown>;
  readonly errors?: readonly FileValidationIssue[];
  readonly errorCounts?: Record<string, number>;
  readonly errorsTruncated?: boolean;
}

export const FILE_ID_PREFIX = "file";

/** `tenants/{tenant}/files/{fileId}.jsonl`, as `contract/platform.json` lays it out. */
export { datasetObjectKey } from "../contract.ts";

/** The tenant and file of a dataset object key, or undefined for any key outside that layout. */
export function parseDatasetObjectKey(key: string): { tenantId: string; fileId: string } | undefined {
  const match = /^tenants\/(tn_[0-9a-f]{16})\/files\/(file-[0-9a-v]{21})\.jsonl$/.exec(key);
  return match ? { tenantId: match[1]!, fileId: match[2]! } : undefined;
}

/** Files up to this size may come as multipart through API Gateway (6 MB Lambda payload, base64). */
export const MAX_MULTIPART_FILE_BYTES = 4 * 1024 * 1024;
/** Files up to this size may be uploaded through a presigned PUT. */
export const MAX_UPLOAD_FILE_BYTES = 1024 * 1024 * 1024;
/** Content types accepted for JSONL uploads; the presigned PUT pins the one declared. */
export const JSONL_CONTENT_TYPES = [
  "application/jsonl",
  "application/x-ndjson",
  "application/json",
  "text/plain",
] as const;
/** How long a presigned upload URL stays valid. */
export const UPLOAD_URL_TTL_SECONDS = 3600;
