import type { DeletionClaim } from "../aws/file-usage.ts";
import type { FilesRepository } from "../aws/files-repository.ts";
import type { ObjectStore } from "../aws/object-store.ts";
import { ConflictError, InvalidRequestError, NotFoundError } from "../core/errors.ts";
import {
  datasetObjectKey,
  FILE_ID_PREFIX,
  type FilePurpose,
  type FileRecord,
  MAX_MULTIPART_FILE_BYTES,
  UPLOAD_URL_TTL_SECONDS,
  uploadHeaders,
} from "../core/files/file-record.ts";
import { parseMultipartFields, parseUploadRequest } from "../core/files/requests.ts";
import { servedContentType, toFileObject } from "../core/files/wire.ts";
import { fitsInlineResponse, mayFitInlineResponse } from "../core/http/api-gateway.ts";
import { LIST_QUERY, listEnvelope, parseListParams } from "../core/http/pagination.ts";
import { jsonBody, type RequestContext, type Route, type RouteResult } from "../core/http/router.ts";
import { isId, newId } from "../core/ids.ts";
import { enforceFileQuota, type FileQuotaPorts } from "../core/tenants/quotas.ts";
import { parseMultipart } from "./multipart.ts";

export interface FilesDependencies {
  readonly files: Pick<FilesRepository, "create" | "get" | "list" | "transition" | "delete">;
  readonly datasets: Pick<ObjectStore, "put" | "presignPut" | "presignGet" | "getBytes" | "delete">;
  /**
   * Claims the file for deletion unless unfinished jobs need it (`claimFileForDeletion` in
   * lambdas/aws/file-usage.ts): once claimed, no job can take the file.
   */
  readonly claimForDeletion: (tenantId: string, fileId: string) => Promise<DeletionClaim>;
  /** The tenant's file quotas and holdings: a new file over either is a 429 `quota_exceeded`. */
  readonly quotas: FileQuotaPorts;
  readonly now?: () => number;
}

/** How long the redirect of GET /content to the object stays valid. */
const CONTENT_URL_TTL_SECONDS = 300;

/** The files API: `/v4/files…`, each route a small function of the request and the tenant. */
export function filesRoutes(deps: FilesDependencies): Route[] {
  const now = () => Math.floor((deps.now?.() ?? Date.now()) / 1000);

  async function ownFile(request: RequestContext): Promise<FileRecord> {
    const fileId = request.params.file_id ?? "";
    const record = isId(FILE_ID_PREFIX, fileId) ? await deps.files.get(request.tenantId, fileId) : undefined;
    // Another tenant's file and a file that never existed answer the same.
    if (!record) throw new NotFoundError(`No such file: ${fileId}`, "file_not_found", "file_id");
    return record;
  }

  return [
    {
      method: "POST",
      pattern: "/v4/files",
      handler: async (request): Promise<RouteResult> => {
        const upload = await parseMultipart(
          request.body,
          request.headers["content-type"],
          MAX_MULTIPART_FILE_BYTES,
        );
        const { purpose, filename } = parseMultipartFields(upload.fields, upload.filename);
        await enforceFileQuota(deps.quotas, request.tenantId, upload.data.length);
        const fileId = newId(FILE_ID_PREFIX);
        const record: FileRecord = {
          tenantId: request.tenantId,
          fileId,
          filename,
          purpose,
          bytes: upload.data.length,
          contentType: "application/jsonl",
          objectKey: datasetObjectKey(request.tenantId, fileId),
          createdAt: now(),
          status: "uploaded",
        };
        // The record first: the object's arrival triggers validation, which needs the record.
        await deps.files.create(record);
        try {
          await deps.datasets.put(record.objectKey, upload.data, record.contentType);
        } catch (error) {
          await deps.files.transition(request.tenantId, fileId, ["uploaded"], "error", {
            statusDetails: "The upload could not be stored; upload the file again.",
          });
          throw error;
        }
        return { status: 200, body: toFileObject(record) };
      },
    },
    {
      method: "POST",
      pattern: "/v4/files/uploads",
      handler: async (request) => {
        const body = parseUploadRequest(jsonBody(request));
        // The declared size: the presigned PUT pins it (uploadHeaders), so the object can not be larger.
        await enforceFileQuota(deps.quotas, request.tenantId, body.bytes);
        const fileId = newId(FILE_ID_PREFIX);
        const record: FileRecord = {
          tenantId: request.tenantId,
          fileId,
          filename: body.filename,
          purpose: body.purpose,
          bytes: body.bytes,
          contentType: body.mime_type,
          objectKey: datasetObjectKey(request.tenantId, fileId),
          createdAt: now(),
          status: "pending_upload",
        };
        await deps.files.create(record);
        // One upload per URL: the headers include If-None-Match, so a second PUT gets 412.
        const headers = uploadHeaders(record);
        const url = await deps.datasets.presignPut(record.objectKey, headers, UPLOAD_URL_TTL_SECONDS);
        return {
          status: 200,
          body: {
            ...toFileObject(record),
            upload_url: url,
            upload_method: "PUT",
            upload_headers: { ...headers },
            expires_at: now() + UPLOAD_URL_TTL_SECONDS,
          },
        };
      },
    },
    {
      method: "GET",
      pattern: "/v4/files",
      query: [...LIST_QUERY, "purpose", "order"],
      handler: async (request) => {
        const { limit, after } = parseListParams(request.query, {
          defaultLimit: 20,
          maxLimit: 100,
          idPattern: /^file-[0-9a-v]{21}$/,
        });
        const purpose = listedPurpose(request.query);
        if (purpose === "none") return { status: 200, body: listEnvelope([], false) };
        const page = await deps.files.list(request.tenantId, limit, after, purpose);
        return { status: 200, body: listEnvelope(page.items.map(toFileObject), page.hasMore) };
      },
    },
    {
      method: "GET",
      pattern: "/v4/files/{file_id}",
      handler: async (request) => ({ status: 200, body: toFileObject(await ownFile(request)) }),
    },
    {
      method: "GET",
      pattern: "/v4/files/{file_id}/content",
      handler: async (request) => {
        const record = await ownFile(request);
        if (record.status === "pending_upload") {
          throw new ConflictError(
            "The file has not arrived yet: PUT it to its upload_url, then wait until its status is no longer pending_upload.",
            "file_not_uploaded",
            "file_id",
          );
        }
        // Inline only what fits Lambda's response payload once encoded (JSON-escaped text, base64
        // binary); anything larger through a presigned URL, which has no such limit.
        const contentType = servedContentType(record);
        const redirect = async (): Promise<RouteResult> => ({
          redirect: await deps.datasets.presignGet(
            record.objectKey,
            CONTENT_URL_TTL_SECONDS,
            record.filename,
          ),
        });
        if (!mayFitInlineResponse(contentType, record.bytes)) return redirect();
        const body = await deps.datasets.getBytes(record.objectKey);
        if (!fitsInlineResponse(contentType, body)) return redirect();
        return { raw: { status: 200, contentType, body } };
      },
    },
    {
      method: "DELETE",
      pattern: "/v4/files/{file_id}",
      handler: async (request) => {
        const record = await ownFile(request);
        const claim = await deps.claimForDeletion(request.tenantId, record.fileId);
        if (!claim.claimed) {
          throw new ConflictError(
            `The file is used by unfinished fine-tuning jobs (${claim.jobIds.join(", ")}); cancel them or wait until they finish.`,
            "file_in_use",
            "file_id",
          );
        }
        // The object first: a claimed record without its object is visible, can not be trained on, and
        // the next delete finishes it; the reverse would leak data.
        await deps.datasets.delete(record.objectKey);
        await deps.files.delete(request.tenantId, record.fileId);
        return { status: 200, body: { id: record.fileId, object: "file", deleted: true } };
      },
    },
  ];
}

/**
 * Purposes the OpenAI and zhipuai SDKs can ask `GET /files` for; this platform stores `fine-tune`
 * (uploads) and `fine-tune-results` (jobs' metrics CSVs) only.
 */
const KNOWN_PURPOSES = new Set([
  "fine-tune",
  "fine-tune-results",
  "assistants",
  "assistants_output",
  "batch",
  "batch_output",
  "vision",
  "user_data",
  "evals",
  "retrieval",
  "file-extract",
]);

const STORED_PURPOSES: readonly FilePurpose[] = ["fine-tune", "fine-tune-results"];

/**
 * `purpose` of `GET /files` (the zhipuai SDK's `files.list(purpose=…)`): absent lists all the tenant's
 * files, a stored purpose lists the files of that purpose, another known purpose lists none, an
 * unknown one is a 400. `order` may be `desc` only: the list is kept newest first.
 */
function listedPurpose(query: Readonly<Record<string, string>>): FilePurpose | undefined | "none" {
  if (query.order !== undefined && query.order !== "desc") {
    throw new InvalidRequestError("order must be 'desc': files are listed newest first.", "order");
  }
  const purpose = query.purpose;
  if (purpose === undefined) return undefined;
  const stored = STORED_PURPOSES.find((p) => p === purpose);
  if (stored) return stored;
  if (KNOWN_PURPOSES.has(purpose)) return "none";
  throw new InvalidRequestError(
    `purpose must be one of ${[...KNOWN_PURPOSES].join(", ")}; this platform stores ${STORED_PURPOSES.map((p) => `'${p}'`).join(" and ")} files.`,
    "purpose",
  );
}
