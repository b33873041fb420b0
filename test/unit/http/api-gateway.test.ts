import type { APIGatewayProxyEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { handleApiEvent, isText } from "../../../lambdas/core/http/api-gateway.ts";
import { Router } from "../../../lambdas/core/http/router.ts";

function event(path: string): APIGatewayProxyEvent {
  return {
    httpMethod: "GET",
    path,
    headers: {},
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
