import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type {
  APIGatewayAuthorizerResult,
  APIGatewayProxyEvent,
  APIGatewayTokenAuthorizerEvent,
} from "aws-lambda";
import { AuthenticationError, PayloadTooLargeError, toErrorEnvelope } from "../../lambdas/core/errors.ts";
import type { HttpResponse } from "../../lambdas/core/http/response.ts";

export type ProxyHandler = (event: APIGatewayProxyEvent) => Promise<HttpResponse>;
export type Authorizer = (event: APIGatewayTokenAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;

/** What a streaming route gets: the request after the authorizer, the tenant from its context. */
export interface StreamRequest {
  readonly tenantId: string;
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  /** Lower-cased names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/**
 * The response of a streaming route, written straight to the socket: `start` sends the headers, each
 * `write` one chunk (a promise when the socket's buffer is full), `signal` aborts when the client
 * closes the connection before `end`.
 */
export interface StreamSink {
  start(status: number, headers: Record<string, string>): void;
  write(chunk: string | Uint8Array): void | Promise<void>;
  end(): void | Promise<void>;
  readonly signal: AbortSignal;
}

export type StreamHandler = (request: StreamRequest, sink: StreamSink) => Promise<void>;

/**
 * A function behind the gateway: `handler` gets the buffered REST proxy event; `stream` is the stand-in
 * for a Lambda with response streaming (chat), which writes its response as it goes.
 */
export type GatewayRoute =
  | {
      /** Path prefix under which this function answers, e.g. `/v4/files`. */
      readonly prefix: string;
      readonly handler: ProxyHandler;
    }
  | { readonly prefix: string; readonly stream: StreamHandler };

/** API Gateway's own limit on a request body; the same here so local behaviour matches the cloud. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * The local stand-in for API Gateway: runs the same TOKEN authorizer, then hands the function the same
 * REST proxy event (base64 body for binary types, the authorizer context in requestContext).
 */
export function createGateway(authorizer: Authorizer, routes: readonly GatewayRoute[]): Server {
  return createServer((req, res) => {
    void serve(req, res, authorizer, routes);
  });
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  authorizer: Authorizer,
  routes: readonly GatewayRoute[],
) {
  const requestId = randomUUID();
  const url = new URL(req.url ?? "/", "http://localhost");
  try {
    const route = routes.find((r) => url.pathname === r.prefix || url.pathname.startsWith(`${r.prefix}/`));
    if (!route) {
      return send(res, envelope(404, "Unknown path.", "not_found_error", "unknown_url", requestId));
    }
    const body = await readBody(req);
    const authorization = header(req, "authorization");
    if (!authorization) throw new AuthenticationError();
    let context: Record<string, unknown>;
    try {
      const decision = await authorizer({
        type: "TOKEN",
        authorizationToken: authorization,
        methodArn: "arn:aws:execute-api:local:000000000000:local/prod/ANY/",
      });
      context = decision.context ?? {};
    } catch {
      throw new AuthenticationError();
    }
    if ("stream" in route) {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === "string") headers[name] = value;
      const tenantId = context.tenantId;
      if (typeof tenantId !== "string" || !tenantId) throw new AuthenticationError();
      const request: StreamRequest = {
        tenantId,
        requestId,
        method: req.method ?? "GET",
        path: url.pathname,
        headers,
        body,
      };
      return await route.stream(request, socketSink(res));
    }
    const contentType = header(req, "content-type") ?? "";
    const binary = contentType.startsWith("multipart/form-data");
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers))
      if (typeof value === "string") headers[name] = value;
    const query: Record<string, string> = {};
    for (const [name, value] of url.searchParams) query[name] = value;
    const event = {
      resource: route.prefix,
      path: url.pathname,
      httpMethod: req.method ?? "GET",
      headers,
      multiValueHeaders: {},
      queryStringParameters: Object.keys(query).length ? query : null,
      multiValueQueryStringParameters: null,
      pathParameters: null,
      stageVariables: null,
      body: body.length ? body.toString(binary ? "base64" : "utf8") : null,
      isBase64Encoded: binary,
      requestContext: {
        requestId,
        authorizer: context,
        stage: "local",
        httpMethod: req.method ?? "GET",
        path: url.pathname,
      },
    } as unknown as APIGatewayProxyEvent;
    const response = await route.handler(event);
    send(res, response);
  } catch (error) {
    // A streaming route that failed after its headers went out can only close the connection.
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const { status, body } = toErrorEnvelope(error, requestId);
    send(res, {
      statusCode: status,
      headers: { "content-type": "application/json", "x-request-id": requestId },
      body: JSON.stringify(body),
    });
  }
}

function envelope(
  statusCode: number,
  message: string,
  type: string,
  code: string,
  requestId: string,
): HttpResponse {
  return {
    statusCode,
    headers: { "content-type": "application/json", "x-request-id": requestId },
    body: JSON.stringify({ error: { message, type, param: null, code, request_id: requestId } }),
  };
}

function send(res: ServerResponse, response: HttpResponse): void {
  res.writeHead(response.statusCode, response.headers);
  res.end(response.isBase64Encoded ? Buffer.from(response.body, "base64") : response.body);
}

/**
 * The socket as a stream sink: Nagle off so a small SSE event leaves at once, each write handed to the
 * socket as it comes, and an abort when the client closes the connection before the response ended.
 * The headers of `start` go out with the first write when that comes in the same event-loop turn (the
 * usual case when the inference server's headers and first chunk arrive together: one packet and one
 * wake-up of the client instead of two, ~0.3 ms of the time to first byte here), else on their own at
 * the end of that turn, so a client sees them while the first token is still being computed.
 */
function socketSink(res: ServerResponse): StreamSink {
  const controller = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) controller.abort();
  });
  let wrote = false;
  return {
    signal: controller.signal,
    start(status, headers) {
      res.socket?.setNoDelay(true);
      res.writeHead(status, headers);
      setImmediate(() => {
        if (!wrote && !res.destroyed && !res.writableEnded) res.flushHeaders();
      });
    },
    write(chunk) {
      wrote = true;
      if (res.destroyed) return;
      if (res.write(chunk)) return;
      return new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    },
    end() {
      if (res.destroyed || res.writableEnded) return;
      return new Promise<void>((resolve) => {
        res.end(() => resolve());
        res.once("close", () => resolve());
      });
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new PayloadTooLargeError(`Request bodies may be at most ${MAX_BODY_BYTES} bytes.`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
