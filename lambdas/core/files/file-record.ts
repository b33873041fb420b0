import { resultsFileObjectKey } from "../contract.ts";
import { JOB_ID_PREFIX } from "../jobs/ids.ts";
import { isTerminal, type JobStatus } from "../jobs/state-machine.ts";

/** Lifecycle of a training file. `pending_upload` precedes a presigned PUT; the rest follow OpenAI. */
export type FileStatus = "pending_upload" | "uploaded" | "processed" | "error";

export interface FileValidationIssue {
  readonly line: number;
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

/**
 * What a file is for, as OpenAI names it: `fine-tune` (a tenant's upload, validated, trained on) or
 * `fine-tune-results` (a job's per-step metrics CSV, made by the platform, never trained on).
 */
export type FilePurpose = "fine-tune" | "fine-tune-results";

/** The stored record in the `files` table (tenantId + fileId). */
export interface FileRecord {
  readonly tenantId: string;
  readonly fileId: string;
  readonly filename: string;
  readonly purpose: FilePurpose;
  readonly bytes: number;
  readonly contentType: string;
  readonly objectKey: string;
  readonly createdAt: number;
  readonly status: FileStatus;
  /**
   * Set by the validator: the ETag of the exact object it read. A job records it and the trainer
   * downloads with `If-Match` on it, so a job trains the bytes that were validated or fails.
   */
  readonly validatedETag?: string;
  /**
   * Every job created on this file (a DynamoDB string set, added to in the job's create transaction;
   * never shrinks). The delete reads these jobs to know whether one still needs the file.
   */
  readonly usedByJobs?: ReadonlySet<string>;
  /** Set when a delete claimed the file (epoch seconds): from then on no job may take it. */
  readonly deletingAt?: number;
  readonly validatedAt?: number;
  readonly statusDetails?: string;
  readonly format?: string | null;
  readonly statistics?: Record<string, unknown>;
  readonly errors?: readonly FileValidationIssue[];
  readonly errorCounts?: Record<string, number>;
  readonly errorsTruncated?: boolean;
}

export const FILE_ID_PREFIX = "file";

/** `tenants/{tenant}/files/{fileId}.jsonl` and `….csv`, as `contract/platform.json` lays them out. */
export { datasetObjectKey, resultsFileObjectKey } from "../contract.ts";

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

/** The headers a presigned upload signs, which the client must send exactly (`upload_headers`). */
export interface UploadHeaders {
  readonly "content-type": string;
  readonly "content-length": string;
  /** S3 conditional write: the PUT succeeds only while no object has the key (412 otherwise). */
  readonly "if-none-match": "*";
}

/**
 * The headers of a file's presigned PUT. Signing them pins the declared type and size, and
 * `If-None-Match: *` makes the URL good for one upload: once the object exists, a second PUT to the
 * same URL (to swap validated bytes for others of the same size) is refused with 412.
 */
export function uploadHeaders(record: Pick<FileRecord, "contentType" | "bytes">): UploadHeaders {
  return {
    "content-type": record.contentType,
    "content-length": String(record.bytes),
    "if-none-match": "*",
  };
}

/** A job of {@link FileRecord.usedByJobs} as a consistent read found it: undefined when it is gone. */
export interface FileUser {
  readonly jobId: string;
  readonly status: JobStatus | undefined;
}

/**
 * The jobs among a file's users that still need it: those that have not ended. An ended job never
 * needs the file again (terminal statuses never change), and a job that is gone was deleted, which only
 * an ended job can be.
 */
export function jobsStillUsing(users: readonly FileUser[]): string[] {
  return users.filter((user) => user.status !== undefined && !isTerminal(user.status)).map((u) => u.jobId);
}

/** The purpose of a job's results file. */
export const RESULTS_FILE_PURPOSE = "fine-tune-results" satisfies FilePurpose;
/** How a results file is stored and served. */
export const RESULTS_FILE_CONTENT_TYPE = "text/csv";

/**
 * True for a file a job may train or validate on: a tenant's upload (`fine-tune`). A results file is
 * `processed` too, but it is a CSV of metrics, not a dataset. The jobs API answers 400 for any other.
 */
export function isTrainingFile(record: Pick<FileRecord, "purpose">): boolean {
  return record.purpose === "fine-tune";
}

/**
 * The id of a job's results file: `file-` + the job id's 21 time-and-random characters. Derived, not
 * drawn, so that a redelivered success event finds the same file instead of making a second one; it
 * sorts among the tenant's files by the job's creation time.
 */
export function resultsFileId(jobId: string): string {
  const match = new RegExp(`^${JOB_ID_PREFIX}-([0-9a-v]{21})$`).exec(jobId);
  if (!match) throw new Error(`not a job id: ${jobId}`);
  return `${FILE_ID_PREFIX}-${match[1]}`;
}

/** The record of a job's results file: `processed` from the start, as nothing validates it. */
export function resultsFileRecord(args: {
  tenantId: string;
  jobId: string;
  bytes: number;
  createdAt: number;
}): FileRecord {
  const fileId = resultsFileId(args.jobId);
  return {
    tenantId: args.tenantId,
    fileId,
    filename: `${args.jobId}-results.csv`,
    purpose: RESULTS_FILE_PURPOSE,
    bytes: args.bytes,
    contentType: RESULTS_FILE_CONTENT_TYPE,
    objectKey: resultsFileObjectKey(args.tenantId, fileId),
    createdAt: args.createdAt,
    status: "processed",
  };
}
