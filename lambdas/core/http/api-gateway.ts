import type { APIGatewayProxyEvent } from "aws-lambda";
import { AuthenticationError } from "../errors.ts";
import { errorResponse, type HttpResponse, jsonResponse } from "./response.ts";
import type { RequestContext, RouteResult, Router } from "./router.ts";

/**
 * Runs a router for an API Gateway REST proxy event: the glue every API function shares, so the
 * handlers themselves only list their routes. The local gateway builds the same events.
 */
export async function handleApiEvent(
  router: Router,
  event: APIGatewayProxyEvent,
  log: (message: string, details: Record<string, unknown>) => void,
): Promise<HttpResponse> {
  const requestId = event.requestContext?.requestId ?? "unknown";
  try {
    const tenantId = event.requestContext?.authorizer?.tenantId as string | undefined;
    // Never reached behind the authorizer; a guard against a route wired without one.
    if (!tenantId) throw new AuthenticationError();
    const { route, params } = router.match(event.httpMethod, event.path);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(event.headers ?? {})) {
      if (value !== undefined) headers[name.toLowerCase()] = value;
    }
    const query: Record<string, string> = {};
    for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
      if (value !== undefined) query[name] = value;
    }
    const request: RequestContext = {
      tenantId,
      requestId,
      method: event.httpMethod,
      path: event.path,
      params,
      query,
      headers,
      body: event.body ? Buffer.from(event.body, event.isBase64Encoded ? "base64" : "utf8") : Buffer.alloc(0),
    };
    return toHttp(await route.handler(request), requestId);
  } catch (error) {
    return errorResponse(error, requestId, log);
  }
}

function toHttp(result: RouteResult, requestId: string): HttpResponse {
  if ("redirect" in result) {
    return { statusCode: 302, headers: { location: result.redirect, "x-request-id": requestId }, body: "" };
  }
  if ("raw" in result) {
    // Text goes as text: API Gateway decodes a base64 body only for its `binaryMediaTypes` (and a client
    // whose Accept names one), so a CSV or JSONL file sent base64 would reach the client still encoded.
    const text = isText(result.raw.contentType);
    return {
      statusCode: result.raw.status,
      headers: { "content-type": result.raw.contentType, "x-request-id": requestId },
      body: result.raw.body.toString(text ? "utf8" : "base64"),
      isBase64Encoded: !text,
    };
  }
  return jsonResponse(result.status, result.body, requestId);
}

/** Content types sent as UTF-8 text (files are validated UTF-8; results files are CSV). */
export function isText(contentType: string): boolean {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  return (
    type.startsWith("text/") ||
    ["application/json", "application/jsonl", "application/x-ndjson"].includes(type)
  );
}
