import busboy from "busboy";
import { InvalidRequestError, PayloadTooLargeError } from "../core/errors.ts";

export interface MultipartUpload {
  readonly fields: Record<string, string>;
  readonly filename: string | undefined;
  readonly contentType: string;
  readonly data: Buffer;
}

/** Parses a `multipart/form-data` body with exactly one file part named `file`. */
export async function parseMultipart(
  body: Buffer,
  contentTypeHeader: string | undefined,
  maxFileBytes: number,
): Promise<MultipartUpload> {
  if (!contentTypeHeader?.toLowerCase().startsWith("multipart/form-data")) {
    throw new InvalidRequestError(
      "POST /v4/files expects multipart/form-data with a 'file' part and purpose=fine-tune.",
      null,
      "invalid_content_type",
    );
  }
  return new Promise<MultipartUpload>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: { "content-type": contentTypeHeader },
        limits: { files: 1, fileSize: maxFileBytes, fields: 10, fieldSize: 1024 },
      });
    } catch {
      reject(
        new InvalidRequestError("Malformed multipart/form-data content type.", null, "invalid_content_type"),
      );
      return;
    }
    const fields: Record<string, string> = {};
    const chunks: Buffer[] = [];
    let filename: string | undefined;
    let contentType = "application/jsonl";
    let sawFile = false;
    let failure: Error | undefined;
    parser.on("field", (name, value) => {
      fields[name] = value;
    });
    parser.on("file", (name, stream, info) => {
      // A form cut short destroys the part's stream with an error as well as the parser's; unheard,
      // it would be an uncaught exception that ends the process (a 502), not this request's 400.
      stream.on("error", () => {
        failure ??= new InvalidRequestError("Malformed multipart/form-data body.", null, "invalid_multipart");
      });
      if (name !== "file") {
        failure ??= new InvalidRequestError(`Unexpected file part '${name}'; name it 'file'.`, name);
        stream.resume();
        return;
      }
      sawFile = true;
      filename = info.filename;
      contentType = info.mimeType;
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("limit", () => {
        failure ??= new PayloadTooLargeError(
          `Files sent to POST /v4/files may be at most ${maxFileBytes} bytes; use POST /v4/files/uploads for larger ones.`,
          "file",
        );
      });
    });
    parser.on("filesLimit", () => {
      failure ??= new InvalidRequestError("Send exactly one file per request.", "file");
    });
    parser.on("error", () =>
      reject(new InvalidRequestError("Malformed multipart/form-data body.", null, "invalid_multipart")),
    );
    parser.on("close", () => {
      if (failure) reject(failure);
      else if (!sawFile) reject(new InvalidRequestError("Missing the 'file' part.", "file"));
      else resolve({ fields, filename, contentType, data: Buffer.concat(chunks) });
    });
    parser.end(body);
  });
}
