import { Writable } from "node:stream";
import type { APIGatewayProxyEvent, Context, LambdaFunctionURLEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatLambdaHandler } from "../../../lambdas/chat/lambda.ts";
import { hashApiKey } from "../../../lambdas/core/tenants/api-keys.ts";
import { chatDeps, FakeUpstream } from "./harness.ts";

/**
 * The Lambda wrapper with a fake `awslambda` global that frames responses as the runtime does: the
 * metadata JSON, 8 NUL bytes, then the body.
 */
class CapturingStream extends Writable {
  readonly parts: Buffer[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void) {
    this.parts.push(Buffer.from(chunk));
    callback();
  }
  response(): { metadata: { statusCode: number; headers: Record<string, string> }; body: string } {
    const all = Buffer.concat(this.parts);
    const split = all.indexOf(Buffer.alloc(8));
    return {
      metadata: JSON.parse(all.subarray(0, split).toString("utf8")),
      body: all.subarray(split + 8).toString("utf8"),
    };
  }
}

const fakeAwsLambda = {
  streamifyResponse: <T>(handler: T) => handler,
  HttpResponseStream: {
    from(stream: Writable, metadata: Record<string, unknown>) {
      stream.write(Buffer.concat([Buffer.from(JSON.stringify(metadata)), Buffer.alloc(8)]));
      return stream;
    },
  },
};

const context = {
  awsRequestId: "aws-req-1",
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

const upstream = new FakeUpstream();
let handler: ReturnType<typeof createChatLambdaHandler>;
const body = JSON.stringify({
  model: "acme-support-v1",
  messages: [{ role: "user", content: "hi" }],
  stream: true,
});

beforeAll(async () => {
  (globalThis as unknown as { awslambda: typeof fakeAwsLambda }).awslambda = fakeAwsLambda;
  const url = await upstream.start();
  const keys = new Map([[hashApiKey("ftk_good"), { tenantId: "tn_a", keyId: "key_1" }]]);
  handler = createChatLambdaHandler({
    keys: { findByHash: async (hash) => keys.get(hash) },
    chat: () => chatDeps(url),
  });
});

afterAll(async () => {
  await upstream.stop();
  delete (globalThis as { awslambda?: unknown }).awslambda;
});

function functionUrlEvent(authorization: string | undefined): LambdaFunctionURLEvent {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: "/v4/chat/completions",
    rawQueryString: "",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
    body: Buffer.from(body).toString("base64"),
    isBase64Encoded: true,
    requestContext: {
      requestId: "url-req-1",
      http: {
        method: "POST",
        path: "/v4/chat/completions",
        protocol: "HTTP/1.1",
        sourceIp: "1.2.3.4",
        userAgent: "t",
      },
    },
  } as unknown as LambdaFunctionURLEvent;
}

function restEvent(tenantId: string): APIGatewayProxyEvent {
  return {
    resource: "/v4/chat/completions",
    path: "/v4/chat/completions",
    httpMethod: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer whatever" },
    body,
    isBase64Encoded: false,
    requestContext: { requestId: "rest-req-1", authorizer: { tenantId } },
  } as unknown as APIGatewayProxyEvent;
}

describe("chat Lambda handler", () => {
  it("answers a Function URL call with a bad key with a 401 envelope", async () => {
    const stream = new CapturingStream();
    await handler(functionUrlEvent("Bearer ftk_bad"), stream as never, context);
    const { metadata, body: text } = stream.response();
    expect(metadata.statusCode).toBe(401);
    expect(metadata.headers["x-request-id"]).toBe("url-req-1");
    expect(JSON.parse(text).error).toMatchObject({ code: "invalid_api_key", request_id: "url-req-1" });
    expect(upstream.requests).toHaveLength(0);
  });

  it("answers a Function URL call without a key with 401", async () => {
    const stream = new CapturingStream();
    await handler(functionUrlEvent(undefined), stream as never, context);
    expect(stream.response().metadata.statusCode).toBe(401);
  });

  it("streams for a Function URL call with a good key, the tenant taken from the key", async () => {
    const stream = new CapturingStream();
    await handler(functionUrlEvent("Bearer ftk_good"), stream as never, context);
    const { metadata, body: text } = stream.response();
    expect(metadata.statusCode).toBe(200);
    expect(metadata.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(text).toContain('"model":"acme-support-v1"');
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(stream.writableEnded).toBe(true);
  });

  it("takes the tenant of a REST event from the authorizer context", async () => {
    const owner = new CapturingStream();
    await handler(restEvent("tn_a"), owner as never, context);
    expect(owner.response().metadata.statusCode).toBe(200);

    const other = new CapturingStream();
    await handler(restEvent("tn_b"), other as never, context);
    const { metadata, body: text } = other.response();
    expect(metadata.statusCode).toBe(404);
    expect(JSON.parse(text).error).toMatchObject({ code: "model_not_found", request_id: "rest-req-1" });
  });

  it("answers 401 for a REST event that reached it without an authorizer tenant", async () => {
    const stream = new CapturingStream();
    await handler(restEvent(""), stream as never, context);
    expect(stream.response().metadata.statusCode).toBe(401);
  });
});
