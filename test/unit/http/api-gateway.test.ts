import type { APIGatewayProxyEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { handleApiEvent, isText } from "../../../lambdas/core/http/api-gateway.ts";
import { withConsoleCors } from "../../../lambdas/core/http/response.ts";
import { Router } from "../../../lambdas/core/http/router.ts";

function event(path: string, headers: Record<string, string> = {}): APIGatewayProxyEvent {
  return {
    httpMethod: "GET",
    path,
    headers,
    queryStringParameters: null,
    body: null,
    isBase64Encoded: false,
    requestContext: { requestId: "req-1", authorizer: { tenantId: "tn_0123456789abcdef" } },
  } as unknown as APIGatewayProxyEvent;
}

describe("raw responses through API Gateway", () => {
  const router = new Router([
    {
      method: "GET",
      pattern: "/v4/csv",
      handler: async () => ({
        raw: { status: 200, contentType: "text/csv", body: Buffer.from("step,loss\n1,2\n") },
      }),
    },
    {
      method: "GET",
      pattern: "/v4/bin",
      handler: async () => ({
        raw: { status: 200, contentType: "application/octet-stream", body: Buffer.from([0, 255]) },
      }),
    },
  ]);
  const log = () => {};

  it("sends text (CSV, JSONL) as UTF-8, which API Gateway passes on as it is", async () => {
    const response = await handleApiEvent(router, event("/v4/csv"), log);
    expect(response).toMatchObject({ statusCode: 200, body: "step,loss\n1,2\n", isBase64Encoded: false });
    expect(response.headers?.["content-type"]).toBe("text/csv");
  });

  it("sends anything else base64-encoded", async () => {
    const response = await handleApiEvent(router, event("/v4/bin"), log);
    expect(response).toMatchObject({ body: "AP8=", isBase64Encoded: true });
  });

  it("knows the text types", () => {
    expect(
      ["text/csv", "application/jsonl", "application/x-ndjson; charset=utf-8", "application/json"].map(
        isText,
      ),
    ).toEqual([true, true, true, true]);
    expect(isText("application/octet-stream")).toBe(false);
  });
});

describe("CORS for the hosted console", () => {
  const CONSOLE = "https://d111111abcdef8.cloudfront.net";
  const router = new Router([
    { method: "GET", pattern: "/v4/ok", handler: async () => ({ status: 200, body: { ok: true } }) },
  ]);
  const log = () => {};

  it("allows the console's origin on a success and on an error, with Vary: Origin", async () => {
    const ok = await handleApiEvent(router, event("/v4/ok", { Origin: CONSOLE }), log, CONSOLE);
    expect(ok.statusCode).toBe(200);
    expect(ok.headers["access-control-allow-origin"]).toBe(CONSOLE);
    expect(ok.headers.vary).toBe("Origin");
    const missing = await handleApiEvent(router, event("/v4/nothing", { origin: CONSOLE }), log, CONSOLE);
    expect(missing.statusCode).toBe(404);
    expect(missing.headers["access-control-allow-origin"]).toBe(CONSOLE);
    expect(missing.headers.vary).toBe("Origin");
  });

  it("gives another origin no CORS header, but still Vary: Origin", async () => {
    const other = await handleApiEvent(
      router,
      event("/v4/ok", { Origin: "https://evil.example" }),
      log,
      CONSOLE,
    );
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
    expect(other.headers.vary).toBe("Origin");
    // A look-alike (another scheme, a suffix) is another origin.
    for (const origin of ["http://d111111abcdef8.cloudfront.net", `${CONSOLE}.evil.example`]) {
      expect(withConsoleCors({ statusCode: 200, headers: {}, body: "" }, origin, CONSOLE).headers).toEqual({
        vary: "Origin",
      });
    }
  });

  it("leaves responses unchanged where no console origin is configured (the local platform)", async () => {
    const response = await handleApiEvent(router, event("/v4/ok", { Origin: CONSOLE }), log, undefined);
    expect(response.headers["access-control-allow-origin"]).toBeUndefined();
    expect(response.headers.vary).toBeUndefined();
  });
});
