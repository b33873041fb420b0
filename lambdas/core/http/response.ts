import { errorHeaders, PlatformError, toErrorEnvelope } from "../errors.ts";

/** The API Gateway (REST, proxy integration) response shape; the local gateway relays the same. */
export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded?: boolean;
}

export function jsonResponse(statusCode: number, body: unknown, requestId: string): HttpResponse {
  return {
    statusCode,
    headers: { "content-type": "application/json", "x-request-id": requestId },
    body: JSON.stringify(body),
  };
}

/**
 * The one place where errors become HTTP: platform errors keep their status and code, anything else
 * is a 500 with a generic message and the request id (the details go to the log, never the client).
 * A 405 also carries the path's methods as `Allow`.
 */
export function errorResponse(
  error: unknown,
  requestId: string,
  log?: (message: string, details: Record<string, unknown>) => void,
): HttpResponse {
  if (!(error instanceof PlatformError) && log) {
    log("unhandled error", {
      error:
        error instanceof Error
          ? { name: error.name, message: error.message, stack: error.stack }
          : String(error),
    });
  }
  const { status, body } = toErrorEnvelope(error, requestId);
  const response = jsonResponse(status, body, requestId);
  return { ...response, headers: { ...response.headers, ...errorHeaders(error) } };
}
