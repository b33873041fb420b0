import type { APIGatewayProxyEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { datasetObjectKey, type FileRecord } from "../../../lambdas/core/files/file-record.ts";
import {
  encodedBodyBytes,
  fitsInlineResponse,
  handleApiEvent,
  LAMBDA_RESPONSE_PAYLOAD_LIMIT_BYTES,
  mayFitInlineResponse,
  PROXY_RESPONSE_MARGIN_BYTES,
} from "../../../lambdas/core/http/api-gateway.ts";
import type { HttpResponse } from "../../../lambdas/core/http/response.ts";
import { Router } from "../../../lambdas/core/http/router.ts";
import { filesRoutes } from "../../../lambdas/files-api/routes.ts";

/**
 * GET /v4/files/{id}/content inlines a file only when the proxy response, as the Lambda runtime
 * serializes it, fits Lambda's 6,291,456-byte response payload limit; otherwise it redirects to a
 * presigned URL. The local gateway has no such limit, so this is checked here, at the handler.
 */

const TENANT = "tn_0123456789abcdef";
const FILE_ID = "file-001k892a2fse5r8e5481r";
/** The most body bytes the proxy response may carry once encoded. */
const BUDGET = LAMBDA_RESPONSE_PAYLOAD_LIMIT_BYTES - PROXY_RESPONSE_MARGIN_BYTES;

/** What the Lambda runtime returns to API Gateway: the handler's result as JSON. */
const payloadBytes = (response: HttpResponse) => Buffer.byteLength(JSON.stringify(response), "utf8");

function event(path: string): APIGatewayProxyEvent {
  return {
    httpMethod: "GET",
    path,
    headers: {},
    queryStringParameters: null,
    body: null,
    isBase64Encoded: false,
    // API Gateway's request ids are UUIDs.
    requestContext: { requestId: "c0ffee00-1234-4bcd-8123-0123456789ab", authorizer: { tenantId: TENANT } },
  } as unknown as APIGatewayProxyEvent;
}

/** The files handler over one stored training file with this content. */
function filesWith(content: Buffer) {
  const record: FileRecord = {
    tenantId: TENANT,
    fileId: FILE_ID,
    filename: "train.jsonl",
    purpose: "fine-tune",
    bytes: content.length,
    contentType: "application/jsonl",
    objectKey: datasetObjectKey(TENANT, FILE_ID),
    createdAt: 1_700_000_000,
    status: "processed",
  };
  const reads: string[] = [];
  const unused = async () => {
    throw new Error("not used");
  };
  const router = new Router(
    filesRoutes({
      files: {
        get: async (t: string, f: string) => (t === TENANT && f === FILE_ID ? record : undefined),
        create: unused,
        list: unused,
        transition: unused,
        delete: unused,
      },
      datasets: {
        getBytes: async (key: string) => {
          reads.push(key);
          return content;
        },
        presignGet: async (key: string) => `https://signed.example/${key}`,
        put: unused,
        presignPut: unused,
        delete: unused,
      },
      claimForDeletion: unused,
      quotas: { quotasOf: unused, fileHoldings: unused },
    }),
  );
  const get = () => handleApiEvent(router, event(`/v4/files/${FILE_ID}/content`), () => {});
  return { get, reads, record };
}

/** A short chat example, quotes in its content: JSON-escaped it takes 121 bytes for 94. */
const LINE =
  '{"messages":[{"role":"user","content":"Say \\"hi\\""},{"role":"assistant","content":"\\"hi\\""}]}\n';

/** JSONL whose body, JSON-escaped, takes exactly `escaped` bytes (lines, then padding spaces). */
function jsonlEscapedTo(escaped: number): Buffer {
  const perLine = encodedBodyBytes("application/jsonl", Buffer.from(LINE));
  const lines = Math.floor(escaped / perLine);
  const content = Buffer.from(LINE.repeat(lines) + " ".repeat(escaped - lines * perLine));
  expect(encodedBodyBytes("application/jsonl", content)).toBe(escaped);
  return content;
}

describe("the encoded size of a raw body", () => {
  it("is the base64 length for binary types", () => {
    const type = "application/octet-stream";
    expect(encodedBodyBytes(type, Buffer.alloc(0))).toBe(0);
    expect(encodedBodyBytes(type, Buffer.alloc(1))).toBe(4);
    expect(encodedBodyBytes(type, Buffer.alloc(3))).toBe(4);
    expect(encodedBodyBytes(type, Buffer.alloc(4))).toBe(8);
    expect(encodedBodyBytes(type, Buffer.from([0, 255, 34, 92, 10]))).toBe(8);
  });

  it("is the UTF-8 length as a JSON string for text: quotes, backslashes, newlines and controls escaped", () => {
    const type = "application/jsonl";
    expect(encodedBodyBytes(type, Buffer.from("abc"))).toBe(3);
    expect(encodedBodyBytes(type, Buffer.from("你好"))).toBe(6);
    expect(encodedBodyBytes(type, Buffer.from('"\\\n'))).toBe(6);
    expect(encodedBodyBytes(type, Buffer.from("\u0001"))).toBe(6);
    expect(encodedBodyBytes("text/csv", Buffer.from("a,b\n1,2\n"))).toBe(10);
  });
});

describe("GET /v4/files/{id}/content: inline only within Lambda's response payload limit", () => {
  it("inlines JSONL whose escaped body just fits, and the whole payload is within the limit", async () => {
    const content = jsonlEscapedTo(BUDGET);
    const { get } = filesWith(content);
    const response = await get();
    expect(response.statusCode).toBe(200);
    expect(response.isBase64Encoded).toBe(false);
    expect(Buffer.from(response.body, "utf8").equals(content)).toBe(true);
    expect(payloadBytes(response)).toBeLessThanOrEqual(LAMBDA_RESPONSE_PAYLOAD_LIMIT_BYTES);
  });

  it("redirects JSONL whose escaped body is one byte over", async () => {
    const { get, reads } = filesWith(jsonlEscapedTo(BUDGET + 1));
    const response = await get();
    expect(response.statusCode).toBe(302);
    expect(response.headers.location).toBe(`https://signed.example/${datasetObjectKey(TENANT, FILE_ID)}`);
    expect(response.body).toBe("");
    // Under 6 MB as stored: only its escaped form is over, so it had to be read to know.
    expect(reads).toHaveLength(1);
  });

  it("redirects a 4.8 MiB chat dataset, which JSON escaping takes over 6 MB", async () => {
    const content = Buffer.from(LINE.repeat(Math.floor((4.8 * 1024 * 1024) / Buffer.byteLength(LINE))));
    expect(content.length).toBeLessThan(5 * 1024 * 1024);
    const { get } = filesWith(content);
    expect((await get()).statusCode).toBe(302);
  });

  it("inlines plain text of exactly the budget and redirects one byte more", async () => {
    const under = filesWith(Buffer.alloc(BUDGET, "x"));
    const inline = await under.get();
    expect(inline.statusCode).toBe(200);
    expect(payloadBytes(inline)).toBeLessThanOrEqual(LAMBDA_RESPONSE_PAYLOAD_LIMIT_BYTES);
    expect((await filesWith(Buffer.alloc(BUDGET + 1, "x")).get()).statusCode).toBe(302);
  });

  it("redirects a file whose stored size alone is over, without reading it", async () => {
    const { get, reads } = filesWith(Buffer.alloc(LAMBDA_RESPONSE_PAYLOAD_LIMIT_BYTES, "x"));
    expect((await get()).statusCode).toBe(302);
    expect(reads).toEqual([]);
  });

  it("still inlines a small file", async () => {
    const response = await filesWith(Buffer.from(LINE)).get();
    expect(response).toMatchObject({ statusCode: 200, body: LINE, isBase64Encoded: false });
  });
});

describe("a binary body and the limit", () => {
  const type = "application/octet-stream";
  /** The largest binary body whose base64 fits the budget: 3 bytes per 4 characters. */
  const largest = Math.floor(BUDGET / 4) * 3;

  it("fits up to the largest body whose base64 fits, and not one byte more", () => {
    expect(mayFitInlineResponse(type, largest)).toBe(true);
    expect(fitsInlineResponse(type, Buffer.alloc(largest))).toBe(true);
    expect(mayFitInlineResponse(type, largest + 1)).toBe(false);
    expect(fitsInlineResponse(type, Buffer.alloc(largest + 1))).toBe(false);
  });

  it("makes a proxy response within the limit at that largest body", async () => {
    const body = Buffer.alloc(largest, 0xab);
    const router = new Router([
      {
        method: "GET",
        pattern: "/v4/bin",
        handler: async () => {
          expect(fitsInlineResponse(type, body)).toBe(true);
          return { raw: { status: 200, contentType: type, body } };
        },
      },
    ]);
    const response = await handleApiEvent(router, event("/v4/bin"), () => {});
    expect(response.isBase64Encoded).toBe(true);
    expect(Buffer.from(response.body, "base64").equals(body)).toBe(true);
    expect(payloadBytes(response)).toBeLessThanOrEqual(LAMBDA_RESPONSE_PAYLOAD_LIMIT_BYTES);
    // The margin is spent on headers and field names only: the body is nearly all of it.
    expect(LAMBDA_RESPONSE_PAYLOAD_LIMIT_BYTES - payloadBytes(response)).toBeLessThan(
      PROXY_RESPONSE_MARGIN_BYTES + 4,
    );
  });

  it("treats text below the budget as possibly fitting and above it as certainly not", () => {
    expect(mayFitInlineResponse("text/csv", BUDGET)).toBe(true);
    expect(mayFitInlineResponse("text/csv", BUDGET + 1)).toBe(false);
  });
});
