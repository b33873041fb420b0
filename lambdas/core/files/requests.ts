import { z } from "zod";
import { InvalidRequestError, PayloadTooLargeError } from "../errors.ts";
import { toInvalidRequest } from "../http/request-errors.ts";
import { JSONL_CONTENT_TYPES, MAX_UPLOAD_FILE_BYTES } from "./file-record.ts";

const filename = z
  .string()
  .min(1)
  .max(255)
  .refine((name) => !/[/\\]/.test(name) && ![...name].some((c) => c.charCodeAt(0) < 32), {
    message: "must not contain slashes or control characters",
  });

const uploadRequest = z
  .object({
    filename,
    purpose: z.literal("fine-tune"),
    bytes: z.number().int().positive(),
    mime_type: z.enum(JSONL_CONTENT_TYPES).default("application/jsonl"),
  })
  .strict();

export type UploadRequest = z.infer<typeof uploadRequest>;

/** `POST /v4/files/uploads`: a declared name, size and type, checked before any URL is signed. */
export function parseUploadRequest(body: Record<string, unknown>): UploadRequest {
  const parsed = uploadRequest.safeParse(body, { reportInput: true });
  if (!parsed.success) throw toInvalidRequest(parsed.error);
  if (parsed.data.bytes > MAX_UPLOAD_FILE_BYTES) {
    throw new PayloadTooLargeError(`Files may be at most ${MAX_UPLOAD_FILE_BYTES} bytes.`, "bytes");
  }
  return parsed.data;
}

/** Validates the multipart form fields of `POST /v4/files`. */
export function parseMultipartFields(
  fields: Record<string, string>,
  name: string | undefined,
): { purpose: "fine-tune"; filename: string } {
  for (const key of Object.keys(fields)) {
    if (key !== "purpose")
      throw new InvalidRequestError(`Unknown form field '${key}'.`, key, "unknown_parameter");
  }
  if (fields.purpose !== "fine-tune") {
    throw new InvalidRequestError("purpose must be 'fine-tune'.", "purpose");
  }
  const checked = filename.safeParse(name ?? "");
  if (!checked.success)
    throw new InvalidRequestError("The file part needs a filename without slashes.", "file");
  return { purpose: "fine-tune", filename: checked.data };
}
