import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { DynamoDBRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EndpointRecord } from "../../../lambdas/core/webhooks/endpoint.ts";
import { HttpWebhookSender } from "../../../lambdas/webhook-delivery/http-sender.ts";
import { fanOutHandler, toStatusChange } from "../../../lambdas/webhook-fanout/index.ts";
import { FakeEndpoints, FakeQueue } from "./fakes.ts";

const headers = { "webhook-id": "evt_1", "webhook-timestamp": "1700000000", "webhook-signature": "v1,abc" };

describe("the delivery function's HTTP sender", () => {
  const seen: { headers: IncomingHttpHeaders; body: string }[] = [];
  let status = 200;
  let url = "";
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      seen.push({ headers: request.headers, body });
      response.writeHead(status).end("ignored");
    });
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it("POSTs the raw body as JSON with the signature headers and reports the status", async () => {
    const sender = new HttpWebhookSender({ allowPrivate: true });
    status = 202;
    expect(await sender.send(url, headers, '{"a":1}')).toEqual({ statusCode: 202 });
    expect(seen.at(-1)).toMatchObject({
      body: '{"a":1}',
      headers: { ...headers, "content-type": "application/json" },
    });
  });

  it("resolves a host name through its checked lookup (localhost on the local platform)", async () => {
    const sender = new HttpWebhookSender({ allowPrivate: true });
    status = 200;
    const before = seen.length;
    expect(await sender.send(url.replace("127.0.0.1", "localhost"), headers, "{}")).toEqual({
      statusCode: 200,
    });
    expect(seen.length).toBe(before + 1);
  });

  it("reports a refused connection as an error", async () => {
    const sender = new HttpWebhookSender({ allowPrivate: true });
    const result = await sender.send("http://127.0.0.1:1/hook", headers, "{}");
    expect(result).toEqual({ error: expect.stringMatching(/ECONNREFUSED/) });
  });

  it("refuses, under the AWS rules, a host that now resolves to a private address (DNS rebinding)", async () => {
    // The host passed registration with a public address; at delivery it answers loopback.
    const sender = new HttpWebhookSender({ allowPrivate: false }, async () => ["127.0.0.1"]);
    const before = seen.length;
    const port = new URL(url).port;
    const result = await sender.send(`https://rebind.example.com:${port}/hook`, headers, "{}");
    expect(result).toEqual({ error: expect.stringMatching(/loopback address \(127\.0\.0\.1\)/) });
    expect(seen.length).toBe(before);
  });

  it("refuses, under the AWS rules, http and literal private addresses without connecting", async () => {
    const sender = new HttpWebhookSender({ allowPrivate: false });
    expect(await sender.send(url.replace("http:", "https:"), headers, "{}")).toEqual({
      error: expect.stringMatching(/public addresses only/),
    });
    expect(await sender.send("http://hooks.example.com/", headers, "{}")).toEqual({
      error: expect.stringMatching(/https/),
    });
  });
});

describe("the fan-out function", () => {
  const tables = { "p-jobs": "jobs", "p-files": "files" } as const;
  const record = (table: string, oldImage: object | undefined, newImage: object | undefined, seq: string) =>
    ({
      eventName: oldImage ? "MODIFY" : "INSERT",
      eventSourceARN: `arn:aws:dynamodb:us-east-1:123456789012:table/${table}/stream/2026-01-01T00:00:00.000`,
      dynamodb: {
        SequenceNumber: seq,
        ApproximateCreationDateTime: 1_700_000_000,
        ...(oldImage ? { OldImage: marshall(oldImage) } : {}),
        ...(newImage ? { NewImage: marshall(newImage) } : {}),
      },
    }) as unknown as DynamoDBRecord;

  it("reads a Lambda stream record as a status change of its table", () => {
    const change = toStatusChange(
      record(
        "p-files",
        { tenantId: "tn_a", fileId: "file-1", status: "uploaded" },
        { tenantId: "tn_a", fileId: "file-1", status: "processed" },
        "7",
      ),
      tables,
    );
    expect(change).toEqual({
      source: "files",
      oldImage: { tenantId: "tn_a", fileId: "file-1", status: "uploaded" },
      newImage: { tenantId: "tn_a", fileId: "file-1", status: "processed" },
      sequenceNumber: "7",
      createdAt: 1_700_000_000,
    });
    expect(toStatusChange(record("other", undefined, { status: "x" }, "8"), tables)).toBeUndefined();
  });

  it("queues deliveries for event changes only, and reports the failed record for the stream to retry", async () => {
    const endpoints = new FakeEndpoints();
    await endpoints.put({
      tenantId: "tn_a",
      endpointId: "we_1",
      url: "https://hooks.example.com/",
      events: ["fine_tuning.job.succeeded", "file.processed"],
      secret: "whsec_x",
      createdAt: 1,
    } satisfies EndpointRecord);
    const queue = new FakeQueue();
    const handler = fanOutHandler(() => ({ endpoints, queue, tables }));
    const job = (status: string) => ({ tenantId: "tn_a", jobId: "ftjob-1", status });
    const response = await handler({
      Records: [
        record("p-jobs", job("queued"), job("running"), "1"),
        record("p-jobs", job("running"), job("succeeded"), "2"),
        record("p-jobs", job("succeeded"), job("succeeded"), "3"),
      ],
    });
    expect(response).toEqual({ batchItemFailures: [] });
    expect(queue.sent.map((s) => s.message.event.type)).toEqual(["fine_tuning.job.succeeded"]);

    const broken = fanOutHandler(() => ({
      endpoints: { list: () => Promise.reject(new Error("throttled")) },
      queue,
      tables,
    }));
    const failed = await broken({
      Records: [
        record("p-jobs", job("queued"), job("running"), "4"),
        record("p-jobs", job("running"), job("failed"), "5"),
      ],
    });
    expect(failed).toEqual({ batchItemFailures: [{ itemIdentifier: "5" }] });
  });
});
