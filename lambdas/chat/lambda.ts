import type { Writable } from "node:stream";
import type { APIGatewayProxyEvent, Context, LambdaFunctionURLEvent, StreamifyHandler } from "aws-lambda";
import { AuthenticationError, toErrorEnvelope } from "../core/errors.ts";
import { authenticate, type KeyLookup } from "../core/tenants/authorize.ts";
import { type ChatDependencies, type ChatSink, serveChat } from "./service.ts";

/**
 * The Lambda side of the chat function. With response streaming the runtime hands the handler a
 * writable `responseStream`; `awslambda.HttpResponseStream.from(stream, {statusCode, headers})` writes
 * the metadata prelude (JSON, then 8 NUL bytes) on the first write, and what follows is the body as it
 * is written. Both invokers read that same format: a Function URL with InvokeMode RESPONSE_STREAM, and
 * API Gateway REST with the integration's response transfer mode STREAM (InvokeWithResponseStream).
 */

/**
 * The runtime's `awslambda` global is typed by @types/aws-lambda (`awslambda.streamifyResponse`,
 * `awslambda.HttpResponseStream.from`); a response stream is a Node Writable.
 */
type ResponseStream = Writable;

/** Either invoker's event: the Function URL's payload v2.0, or the REST API's proxy event (v1). */
export type ChatEvent = LambdaFunctionURLEvent | APIGatewayProxyEvent;

export interface ChatLambdaDependencies {
  /** The api-keys table, for Function URL calls (REST calls are authorized by the TOKEN authorizer). */
  readonly keys: KeyLookup;
  /** Built on first use, so configuration errors surface in the first response's log. */
  readonly chat: () => ChatDependencies;
  /** Milliseconds kept back from the function's timeout, to end the stream with an error event in time. */
  readonly deadlineMarginMs?: number;
}

/**
 * The streaming handler (before `awslambda.streamifyResponse`): works out the tenant — from the
 * authorizer's context on a REST event, from the `Authorization` header on a Function URL event, never
 * from the body — and runs serveChat with the response stream as its sink.
 */
export function createChatLambdaHandler(deps: ChatLambdaDependencies): StreamifyHandler<ChatEvent, void> {
  return async (event, responseStream, context) => {
    const sink = lambdaSink(responseStream);
    const request = normalize(event, context);
    let tenantId: string;
    try {
      tenantId = await tenantOf(event, request.headers, deps.keys);
    } catch (error) {
      const { status, body } = toErrorEnvelope(error, request.requestId);
      sink.start(status, { "content-type": "application/json", "x-request-id": request.requestId });
      await sink.write(JSON.stringify(body));
      await sink.end();
      return;
    }
    const deadline =
      typeof context.getRemainingTimeInMillis === "function"
        ? Date.now() + context.getRemainingTimeInMillis() - (deps.deadlineMarginMs ?? 2_000)
        : undefined;
    await serveChat(
      { ...request, tenantId, ...(deadline !== undefined ? { deadline } : {}) },
      sink,
      deps.chat(),
    );
  };
}

function isFunctionUrlEvent(event: ChatEvent): event is LambdaFunctionURLEvent {
  return "http" in (event.requestContext ?? {}) && !("httpMethod" in event && event.httpMethod);
}

function normalize(event: ChatEvent, context: Context) {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  const body = event.body
    ? Buffer.from(event.body, event.isBase64Encoded ? "base64" : "utf8")
    : Buffer.alloc(0);
  if (isFunctionUrlEvent(event)) {
    return {
      requestId: event.requestContext.requestId ?? context.awsRequestId,
      method: event.requestContext.http.method,
      path: event.requestContext.http.path,
      headers,
      body,
    };
  }
  return {
    requestId: event.requestContext?.requestId ?? context.awsRequestId,
    method: event.httpMethod,
    path: event.path,
    headers,
    body,
  };
}

async function tenantOf(event: ChatEvent, headers: Record<string, string>, keys: KeyLookup): Promise<string> {
  if (isFunctionUrlEvent(event)) return (await authenticate(headers.authorization, keys)).tenantId;
  const tenantId = (event.requestContext?.authorizer as Record<string, unknown> | null | undefined)?.tenantId;
  // Never reached behind the authorizer; a guard against a method wired without one.
  if (typeof tenantId !== "string" || !tenantId) throw new AuthenticationError();
  return tenantId;
}

/**
 * The response stream as a ChatSink. The runtime does not report a client that went away (a known gap
 * of Lambda response streaming), so `signal` fires only when the stream itself errors or closes early;
 * the deadline bounds the rest.
 */
function lambdaSink(responseStream: ResponseStream): ChatSink {
  const controller = new AbortController();
  let ended = false;
  let out: ResponseStream | undefined;
  const gone = () => {
    if (!ended) controller.abort();
  };
  responseStream.on("error", gone);
  responseStream.on("close", gone);
  return {
    signal: controller.signal,
    start(status, headers) {
      out = awslambda.HttpResponseStream.from(responseStream, { statusCode: status, headers });
    },
    write(chunk) {
      const stream = out ?? responseStream;
      if (stream.destroyed) return;
      if (stream.write(chunk)) return;
      return new Promise<void>((resolve) => {
        const done = () => {
          stream.off("drain", done);
          stream.off("close", done);
          resolve();
        };
        stream.on("drain", done);
        stream.on("close", done);
      });
    },
    end() {
      ended = true;
      const stream = out ?? responseStream;
      if (stream.writableEnded || stream.destroyed) return;
      return new Promise<void>((resolve) => {
        stream.end(() => resolve());
        stream.once("close", () => resolve());
        stream.once("error", () => resolve());
      });
    },
  };
}
