import type { APIGatewayProxyEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import {
  AuthenticationError,
  ConflictError,
  InvalidRequestError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitError,
  toErrorEnvelope,
  UnprocessableError,
  UnsupportedMediaTypeError,
} from "../../../lambdas/core/errors.ts";
import { handleApiEvent } from "../../../lambdas/core/http/api-gateway.ts";
import { Router } from "../../../lambdas/core/http/router.ts";

describe("error envelope", () => {
  it.each([
    [new InvalidRequestError("bad", "limit"), 400, "invalid_request_error", "invalid_request", "limit"],
    [new AuthenticationError(), 401, "authentication_error", "invalid_api_key", null],
    [
      new NotFoundError("gone", "file_not_found", "file_id"),
      404,
      "not_found_error",
      "file_not_found",
      "file_id",
    ],
    [
      new ConflictError("taken", "model_code_taken", "model_code"),
      409,
      "conflict_error",
      "model_code_taken",
      "model_code",
    ],
    [new PayloadTooLargeError("big", "file"), 413, "invalid_request_error", "payload_too_large", "file"],
    [
      new UnprocessableError("other body", "idempotency_key_reused"),
      422,
      "invalid_request_error",
      "idempotency_key_reused",
      null,
    ],
    [new RateLimitError(), 429, "rate_limit_error", "rate_limit_exceeded", null],
    [
      new MethodNotAllowedError("PUT", "/v4/files", ["GET", "POST"]),
      405,
      "invalid_request_error",
      "method_not_allowed",
      null,
    ],
    [
      new UnsupportedMediaTypeError("json only"),
      415,
      "invalid_request_error",
      "unsupported_media_type",
      null,
    ],
  ])("maps %s to its status, type, code and param", (error, status, type, code, param) => {
    const mapped = toErrorEnvelope(error, "req-1");
    expect(mapped.status).toBe(status);
    expect(mapped.body.error).toEqual({ message: error.message, type, code, param, request_id: "req-1" });
  });

  it("turns an unknown error into a generic 500 that leaks no message or stack", () => {
    const mapped = toErrorEnvelope(new Error("password=hunter2 at db.ts:12"), "req-2");
    expect(mapped.status).toBe(500);
    expect(JSON.stringify(mapped.body)).not.toContain("hunter2");
    expect(mapped.body.error.code).toBe("internal_error");
    expect(mapped.body.error.message).toContain("req-2");
  });
});

function event(method: string, path: string, tenantId?: string): APIGatewayProxyEvent {
  return {
    httpMethod: method,
    path,
    headers: {},
    queryStringParameters: null,
    body: null,
    isBase64Encoded: false,
    requestContext: { requestId: "rid", ...(tenantId ? { authorizer: { tenantId } } : {}) },
  } as unknown as APIGatewayProxyEvent;
}

describe("API Gateway glue", () => {
  const router = new Router([
    {
      method: "GET",
      pattern: "/v4/things/{id}",
      handler: async (r) => ({ status: 200, body: { id: r.params.id, tenant: r.tenantId } }),
    },
    {
      method: "GET",
      pattern: "/v4/boom",
      handler: async () => {
        throw new TypeError("cannot read properties of undefined");
      },
    },
  ]);
  const log = () => {};

  it("passes path parameters and the authorizer's tenant to the route", async () => {
    const response = await handleApiEvent(router, event("GET", "/v4/things/a%20b", "tn_1"), log);
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ id: "a b", tenant: "tn_1" });
    expect(response.headers["x-request-id"]).toBe("rid");
  });

  it("returns 401 when no tenant reached the function", async () => {
    const response = await handleApiEvent(router, event("GET", "/v4/things/x"), log);
    expect(response.statusCode).toBe(401);
  });

  it("returns 404 unknown_url in the envelope for an unknown path, and 405 with Allow for a method the path lacks", async () => {
    const unknown = await handleApiEvent(router, event("GET", "/v4/nothing", "tn_1"), log);
    expect(unknown.statusCode).toBe(404);
    expect(JSON.parse(unknown.body).error.code).toBe("unknown_url");
    const wrong = await handleApiEvent(router, event("DELETE", "/v4/things/x", "tn_1"), log);
    expect(wrong.statusCode).toBe(405);
    expect(wrong.headers.allow).toBe("GET");
    expect(JSON.parse(wrong.body).error).toMatchObject({ code: "method_not_allowed", request_id: "rid" });
  });

  it("logs an unexpected error and answers 500 with the request id", async () => {
    const logged: string[] = [];
    const response = await handleApiEvent(router, event("GET", "/v4/boom", "tn_1"), (m) => logged.push(m));
    expect(response.statusCode).toBe(500);
    expect(JSON.parse(response.body).error.request_id).toBe("rid");
    expect(logged).toEqual(["unhandled error"]);
  });
});
