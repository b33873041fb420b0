import type { APIGatewayProxyEvent } from "aws-lambda";
import { AuthenticationError } from "../errors.ts";
import {
  CONSOLE_ORIGIN_ENV,
  errorResponse,
  type HttpResponse,
  jsonResponse,
  withConsoleCors,
} from "./response.ts";
import { type RequestContext, type RouteResult, type Router, rejectUnknownQuery } from "./router.ts";

/**
 * Runs a router for an API Gateway REST proxy event: the glue every API function shares, so the
 * handlers themselves only list their routes. The local gateway builds the same events. Where the
 * console is hosted on its own origin (`CONSOLE_ORIGIN`, set by the CDK app), its requests get CORS
 * headers ({@link withConsoleCors}); the preflights never reach a function (API Gateway answers them).
 */
export async function handleApiEvent(
  router: Router,
  event: APIGatewayProxyEvent,
  log: (message: string, details: Record<string, unknown>) => void,
  consoleOrigin: string | undefined = process.env[CONSOLE_ORIGIN_ENV],
): Promise<HttpResponse> {
  const origin = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === "origin")?.[1];
  return withConsoleCors(await route(router, event, log), origin ?? undefined, consoleOrigin);
}

async function route(
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
    rejectUnknownQuery(query, route.query ?? [], `${route.method} ${route.pattern}`);
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
    return {
      statusCode: result.raw.status,
      headers: { "content-type": result.raw.contentType, "x-request-id": requestId },
      ...encodeRawBody(result.raw.contentType, result.raw.body),
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

/**
 * A raw body as the proxy response carries it. Text goes as text: API Gateway decodes a base64 body
 * only for its `binaryMediaTypes` (and a client whose Accept names one), so a CSV or JSONL file sent
 * base64 would reach the client still encoded.
 */
export function encodeRawBody(contentType: string, body: Buffer): { body: string; isBase64Encoded: boolean } {
  const text = isText(contentType);
  return { body: body.toString(text ? "utf8" : "base64"), isBase64Encoded: !text };
}

/**
 * Lambda's limit on a synchronous invocation's response payload: the proxy response as the runtime
 * serializes it (JSON). A larger one fails the invocation, and API Gateway answers 502.
 */
export const LAMBDA_RESPONSE_PAYLOAD_LIMIT_BYTES = 6_291_456;

/**
 * Room left in the payload for everything but the body: status code, headers (content type, request
 * id) and the field names and punctuation of the proxy response's JSON; a few hundred bytes in fact.
 */
export const PROXY_RESPONSE_MARGIN_BYTES = 8 * 1024;

/**
 * The bytes a raw body takes in the serialized proxy response: base64 for binary types
 * (`4 * ceil(n / 3)`, no character of which JSON escapes); for text, its UTF-8 as a JSON string, where
 * every quote, backslash and newline takes two bytes and other control characters six. JSONL is full of
 * quotes: a typical chat dataset grows by about a fifth, so under 5 MiB of it can exceed the limit.
 */
export function encodedBodyBytes(contentType: string, body: Buffer): number {
  if (!isText(contentType)) return base64Bytes(body.length);
  // The quotes JSON.stringify adds around the string are not part of the body.
  return Buffer.byteLength(JSON.stringify(body.toString("utf8")), "utf8") - 2;
}

/**
 * Whether a raw body of this type fits Lambda's response payload limit when returned inline; a route
 * answers with a redirect to the object (a presigned URL) when it does not.
 */
export function fitsInlineResponse(contentType: string, body: Buffer): boolean {
  return (
    encodedBodyBytes(contentType, body) + PROXY_RESPONSE_MARGIN_BYTES <= LAMBDA_RESPONSE_PAYLOAD_LIMIT_BYTES
  );
}

/**
 * Whether a body of `bytes` bytes could fit at all, before reading it: its encoded size is at least
 * `bytes` for text (escaping and UTF-8 repair only ever add) and exactly the base64 length for binary.
 * False means it certainly does not fit; true still needs {@link fitsInlineResponse} on the bytes.
 */
export function mayFitInlineResponse(contentType: string, bytes: number): boolean {
  const least = isText(contentType) ? bytes : base64Bytes(bytes);
  return least + PROXY_RESPONSE_MARGIN_BYTES <= LAMBDA_RESPONSE_PAYLOAD_LIMIT_BYTES;
}

const base64Bytes = (bytes: number): number => 4 * Math.ceil(bytes / 3);
