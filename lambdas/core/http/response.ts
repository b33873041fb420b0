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

/**
 * The environment variable naming the console's origin (`https://<distribution domain>`), set on every
 * function behind the REST API when the console is hosted (infra/constructs/console.ts).
 */
export const CONSOLE_ORIGIN_ENV = "CONSOLE_ORIGIN";

/**
 * CORS for the console, and for no one else: a request whose `Origin` is exactly the configured console
 * origin gets `Access-Control-Allow-Origin` for it; any other origin gets no CORS header, so browsers
 * keep the response from its page. `Vary: Origin` goes on every response once an origin is configured,
 * so that a cache never hands one origin's answer to another. No origin configured (the local platform,
 * which serves the console on the API's own origin): the response is unchanged.
 */
export function withConsoleCors(
  response: HttpResponse,
  requestOrigin: string | undefined,
  consoleOrigin: string | undefined,
): HttpResponse {
  if (!consoleOrigin) return response;
  const headers: Record<string, string> = { ...response.headers, vary: "Origin" };
  if (requestOrigin === consoleOrigin) headers["access-control-allow-origin"] = consoleOrigin;
  return { ...response, headers };
}
