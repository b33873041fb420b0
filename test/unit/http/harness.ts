import type { APIGatewayProxyEvent } from "aws-lambda";
import { expect } from "vitest";
import { type ChatDependencies, serveChat } from "../../../lambdas/chat/service.ts";
import { DEFAULT_CATALOG } from "../../../lambdas/core/catalog/base-models.ts";
import { TokenBucketLimiter } from "../../../lambdas/core/chat/rate-limit.ts";
import type { FileRecord } from "../../../lambdas/core/files/file-record.ts";
import { handleApiEvent } from "../../../lambdas/core/http/api-gateway.ts";
import { type Route, Router } from "../../../lambdas/core/http/router.ts";
import type { DailyUsage } from "../../../lambdas/core/usage/usage.ts";
import { filesRoutes } from "../../../lambdas/files-api/routes.ts";
import { jobsRoutes } from "../../../lambdas/jobs-api/routes.ts";
import { usageRoutes } from "../../../lambdas/usage-api/routes.ts";
import { webhooksRoutes } from "../../../lambdas/webhooks-api/routes.ts";
import { fakeDependencies, TENANT } from "../jobs-api/fakes.ts";
import { InMemoryQuotaSettings } from "../tenants/quota-fakes.ts";
import { FakeEndpoints, FakeLog, FakeQueue } from "../webhooks/fakes.ts";

/**
 * The three API functions' routers over in-memory fakes, called as API Gateway calls them, and the chat
 * function's service: what the HTTP-hygiene tests (the rules and their properties) send requests to.
 */

export { TENANT };

export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  /** As API Gateway passes them: original case. */
  readonly headers?: Record<string, string>;
  readonly query?: Record<string, string> | null;
  readonly body?: string | Buffer | null;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly text: string;
}

export function apiEvent(request: ApiRequest, tenantId = TENANT): APIGatewayProxyEvent {
  const binary = Buffer.isBuffer(request.body);
  return {
    httpMethod: request.method,
    path: request.path,
    headers: request.headers ?? {},
    queryStringParameters: request.query ?? null,
    body:
      request.body === undefined || request.body === null
        ? null
        : binary
          ? request.body.toString("base64")
          : request.body,
    isBase64Encoded: binary,
    requestContext: { requestId: "req-1", authorizer: { tenantId } },
  } as unknown as APIGatewayProxyEvent;
}

/** In-memory files and datasets, enough for every files route. */
function filesDependencies() {
  const records = new Map<string, FileRecord>();
  const key = (tenantId: string, fileId: string) => `${tenantId}/${fileId}`;
  return {
    files: {
      async create(record: FileRecord) {
        records.set(key(record.tenantId, record.fileId), record);
      },
      async get(tenantId: string, fileId: string) {
        return records.get(key(tenantId, fileId));
      },
      async list(tenantId: string, limit: number) {
        const all = [...records.values()].filter((r) => r.tenantId === tenantId);
        return { items: all.slice(0, limit), hasMore: all.length > limit };
      },
      async transition() {
        return true;
      },
      async delete(tenantId: string, fileId: string) {
        records.delete(key(tenantId, fileId));
      },
    },
    datasets: {
      async put() {},
      async presignPut(objectKey: string) {
        return `https://signed.example/${objectKey}`;
      },
      async presignGet(objectKey: string) {
        return `https://signed.example/${objectKey}`;
      },
      async getBytes() {
        return Buffer.from("{}\n");
      },
      async delete() {},
    },
    claimForDeletion: async () => ({ claimed: true as const }),
    quotas: {
      quotasOf: new InMemoryQuotaSettings().quotasOf,
      fileHoldings: async () => ({ files: 0, storedBytes: 0 }),
    },
  };
}

/** Every route of the files, jobs, usage and webhooks functions over fakes, and which function has each. */
export function platformRoutes(): { files: Route[]; jobs: Route[]; usage: Route[]; webhooks: Route[] } {
  const usage = {
    async daily(): Promise<DailyUsage[]> {
      return [];
    },
  };
  return {
    files: filesRoutes(filesDependencies()),
    jobs: jobsRoutes(fakeDependencies().deps),
    usage: usageRoutes({ usage }),
    webhooks: webhooksRoutes({
      endpoints: new FakeEndpoints(),
      deliveries: new FakeLog(),
      queue: new FakeQueue(),
      // The AWS rules, over a resolver that answers one public address for any name.
      policy: { allowPrivate: false },
      resolve: async () => ["93.184.216.34"],
      now: () => 1_767_225_600,
    }),
  };
}

/** One function's handler as API Gateway invokes it: a proxy event in, a proxy response out. */
export function apiFunction(routes: readonly Route[]) {
  const router = new Router(routes);
  return async (request: ApiRequest, tenantId = TENANT): Promise<ApiResponse> => {
    const response = await handleApiEvent(router, apiEvent(request, tenantId), () => {});
    return {
      status: response.statusCode,
      headers: response.headers,
      text: response.isBase64Encoded ? Buffer.from(response.body, "base64").toString("utf8") : response.body,
    };
  };
}

/** The OpenAI error envelope with the request id, and the status it came with. */
export function expectEnvelope(response: ApiResponse, status?: number): Record<string, unknown> {
  if (status !== undefined) expect(response.status).toBe(status);
  expect(response.headers["content-type"]).toBe("application/json");
  const body = JSON.parse(response.text) as { error: Record<string, unknown> };
  expect(body.error).toEqual({
    message: expect.any(String),
    type: expect.any(String),
    param: body.error.param === null ? null : expect.any(String),
    code: expect.any(String),
    request_id: "req-1",
  });
  return body.error;
}

/** An OpenAI-compatible inference server that answers every request at once, streamed or whole. */
const upstream: typeof fetch = async (_url, init) => {
  const request = JSON.parse(String(init?.body)) as { model: string; stream?: boolean };
  const base = { id: "cmpl-1", created: 1, model: request.model };
  const usage = { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 };
  if (request.stream) {
    const chunk = {
      ...base,
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
    };
    const last = { ...base, object: "chat.completion.chunk", choices: [], usage };
    return new Response(
      `data: ${JSON.stringify(chunk)}\n\ndata: ${JSON.stringify(last)}\n\ndata: [DONE]\n\n`,
      {
        headers: { "content-type": "text/event-stream" },
      },
    );
  }
  const completion = {
    ...base,
    object: "chat.completion",
    choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
    usage,
  };
  return new Response(JSON.stringify(completion), { headers: { "content-type": "application/json" } });
};

/**
 * The chat function as its handlers call it (serveChat), over an upstream that always answers: the
 * response as the client would see it, and whether serveChat threw (it never should).
 */
export function chatFunction() {
  const deps: ChatDependencies = {
    catalog: DEFAULT_CATALOG,
    // No fine-tuned model exists: a code is a 404, a base model name reaches the upstream.
    findModel: async () => undefined,
    endpoints: new Map([["*", "http://inference.invalid/v1"]]),
    limiter: new TokenBucketLimiter(0),
    fetch: upstream,
    logError: (message, details) => {
      throw new Error(`chat logged an unexpected error: ${message} ${JSON.stringify(details)}`);
    },
  };
  return async (request: ApiRequest): Promise<ApiResponse> => {
    let status = 0;
    let headers: Record<string, string> = {};
    const parts: string[] = [];
    const headerEntries = Object.entries(request.headers ?? {}).map(([name, value]) => [
      name.toLowerCase(),
      value,
    ]);
    await serveChat(
      {
        tenantId: TENANT,
        requestId: "req-1",
        method: request.method,
        path: request.path,
        headers: Object.fromEntries(headerEntries),
        body: Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body ?? ""),
      },
      {
        signal: new AbortController().signal,
        start: (code, sent) => {
          status = code;
          headers = sent;
        },
        write: (chunk) => {
          parts.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
        },
        end: () => {},
      },
      deps,
    );
    return { status, headers, text: parts.join("") };
  };
}
