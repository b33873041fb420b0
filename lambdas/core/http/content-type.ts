import { UnsupportedMediaTypeError } from "../errors.ts";

/**
 * Whether a `Content-Type` header declares JSON: `application/json`, any case, with an optional
 * `charset` that must be UTF-8 (RFC 8259 §8.1: JSON exchanged between systems is UTF-8, and the body
 * is read as UTF-8 whatever the header says). Other parameters are ignored.
 */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type, ...parameters] = header.split(";");
  if (type!.trim().toLowerCase() !== "application/json") return false;
  return parameters.every((parameter) => {
    const [name, value = ""] = parameter.split("=", 2) as [string, string?];
    if (name.trim().toLowerCase() !== "charset") return true;
    return ["utf-8", "utf8"].includes(
      value
        .trim()
        .replace(/^"(.*)"$/, "$1")
        .toLowerCase(),
    );
  });
}

/**
 * A 415 `unsupported_media_type` unless the request declares a JSON body: a form-encoded body (curl's
 * `-d` without a content type) or a text one is refused rather than guessed at.
 */
export function requireJsonContentType(header: string | undefined): void {
  if (isJsonContentType(header)) return;
  const declared = header === undefined ? "no content type" : `content type '${header.slice(0, 100)}'`;
  throw new UnsupportedMediaTypeError(
    `The request body must be JSON sent as 'Content-Type: application/json' (charset utf-8 or none); it was sent with ${declared}.`,
  );
}

/** {@link requireJsonContentType} for a body that has bytes; an empty one has nothing to declare. */
export function requireJsonBody(body: Buffer, header: string | undefined): void {
  if (body.length > 0) requireJsonContentType(header);
}
