import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONFIG_ENV } from "../../infra/resources/definitions.ts";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { newJobId } from "../../lambdas/core/jobs/ids.ts";
import type { ModelRecord } from "../../lambdas/core/jobs/wire.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { jobRecord } from "../fixtures/jobs.ts";
import { localClients, uniquePrefix } from "./aws.ts";

// biome-ignore lint/suspicious/noExplicitAny: wire objects, read field by field in assertions
type Json = Record<string, any>;

/** One request the receiver got, with what it answered and what the openai SDK made of it. */
interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly answered: number;
  /** The event `client.webhooks.unwrap` returned, or its error's message. */
  readonly verified: Json | string;
}

/**
 * Webhooks end to end on the local platform against LocalStack: real status changes (a file
 * validated, a file refused, a job cancelled through the API) flow through the tables' streams, the
 * fan-out, the webhook-deliveries queue and the delivery function to a receiver on 127.0.0.1 that
 * verifies every delivery with the openai SDK's `webhooks.unwrap`. Retries use a 1-second schedule
 * (WEBHOOK_RETRY_* in the environment); production waits 10 s, 30 s, ... for about 24 h.
 */
describe("signed webhooks on the local platform", () => {
  let platform: LocalPlatform;
  let receiver: Server;
  let receiverUrl: string;
  let keyA: string;
  let keyB: string;
  let tenantA: string;
  const received: Received[] = [];
  /** Path → the endpoint's secret, to verify with. */
  const secrets = new Map<string, string>();
  /** Path → how many requests it fails with a 500 before it answers 200. */
  const failFirst = new Map<string, number>();
  const { documents, sqs } = localClients();

  const api = async (key: string, path: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const response = await fetch(`${platform.baseUrl}${path}`, {
      ...rest,
      ...(json !== undefined ? { method: rest.method ?? "POST", body: JSON.stringify(json) } : {}),
      headers: {
        authorization: `Bearer ${key}`,
        ...(json !== undefined ? { "content-type": "application/json" } : {}),
        ...rest.headers,
      },
    });
    return { status: response.status, body: (await response.json()) as Json };
  };

  const createEndpoint = async (path: string, events: string[]) => {
    const created = await api(keyA, "/webhooks", { json: { url: `${receiverUrl}${path}`, events } });
    expect(created.status).toBe(200);
    secrets.set(path, created.body.secret);
    return created.body;
  };

  const upload = async (fixture: string) => {
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", new Blob([readFileSync(`test/fixtures/datasets/${fixture}`)]), fixture);
    const response = await fetch(`${platform.baseUrl}/files`, {
      method: "POST",
      body: form,
      headers: { authorization: `Bearer ${keyA}` },
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { id: string }).id;
  };

  /** The requests to `path` about `dataId`, once `done` holds for them (polls for up to a minute). */
  const waitFor = async (path: string, dataId: string, done: (requests: Received[]) => boolean) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const requests = received.filter(
        (r) => r.path === path && typeof r.verified === "object" && r.verified.data?.id === dataId,
      );
      if (done(requests)) return requests;
      if (Date.now() > deadline) throw new Error(`no complete delivery to ${path} about ${dataId}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };
  const delivered = (requests: Received[]) => requests.some((r) => r.answered === 200);

  beforeAll(async () => {
    // Short retries for this process's delivery function: 1 s, then 2 s.
    process.env[CONFIG_ENV.webhookRetryBaseSeconds] = "1";
    process.env[CONFIG_ENV.webhookRetryFactor] = "2";
    process.env[CONFIG_ENV.webhookRetryWindowSeconds] = "30";
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", async () => {
        const path = request.url ?? "";
        const body = Buffer.concat(chunks).toString("utf8");
        let verified: Json | string;
        try {
          const client = new OpenAI({ apiKey: "x", webhookSecret: secrets.get(path) ?? "whsec_none" });
          verified = (await client.webhooks.unwrap(body, request.headers as Record<string, string>)) as Json;
        } catch (error) {
          verified = (error as Error).message;
        }
        const left = failFirst.get(path) ?? 0;
        if (left > 0) failFirst.set(path, left - 1);
        const answered = typeof verified === "string" ? 400 : left > 0 ? 500 : 200;
        received.push({ path, headers: request.headers, body, answered, verified });
        response.writeHead(answered).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

    platform = await startPlatform({ prefix: uniquePrefix("webhooks"), port: 0 });
    const admin = new TenantAdmin(new ApiKeysRepository(documents, platform.resources.tables["api-keys"]));
    const a = await admin.createTenant("webhooks a");
    keyA = a.apiKey;
    tenantA = a.tenantId;
    keyB = (await admin.createTenant("webhooks b")).apiKey;
  });

  afterAll(async () => {
    await platform?.stop();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  it("creates an endpoint whose whsec_ secret is shown once, and keeps it from other tenants", async () => {
    const endpoint = await createEndpoint("/files", ["file.processed", "file.error"]);
    expect(endpoint).toMatchObject({
      object: "webhook_endpoint",
      id: expect.stringMatching(/^we_[0-9a-f]{24}$/),
      url: `${receiverUrl}/files`,
      events: ["file.processed", "file.error"],
      created_at: expect.any(Number),
    });
    expect(Buffer.from(endpoint.secret.replace(/^whsec_/, ""), "base64")).toHaveLength(24);
    const listed = await api(keyA, "/webhooks");
    expect(listed.body.data.map((e: Json) => e.id)).toContain(endpoint.id);
    expect(listed.body.data.every((e: Json) => e.secret === undefined)).toBe(true);
    expect((await api(keyA, `/webhooks/${endpoint.id}`)).body.secret).toBeUndefined();
    expect((await api(keyB, `/webhooks/${endpoint.id}`)).status).toBe(404);
    expect((await api(keyB, `/webhooks/${endpoint.id}`, { method: "DELETE" })).status).toBe(404);
    expect((await api(keyB, "/webhooks")).body.data).toEqual([]);
  });

  it("refuses a bad request in the error envelope naming the parameter", async () => {
    const bad = await api(keyA, "/webhooks", { json: { url: `${receiverUrl}/x`, events: ["file.deleted"] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ type: "invalid_request_error", param: "events.0" });
    const empty = await api(keyA, "/webhooks", { json: { url: `${receiverUrl}/x`, events: [] } });
    expect(empty.body.error.param).toBe("events");
  });

  it("sends file.processed and file.error for real uploads, each verified by webhooks.unwrap", async () => {
    const good = await upload("valid-messages.jsonl");
    const bad = await upload("unknown-role.jsonl");
    const [processed] = await waitFor("/files", good, delivered);
    const [failed] = await waitFor("/files", bad, delivered);
    expect(processed!.verified).toMatchObject({
      object: "event",
      id: expect.stringMatching(/^evt_/),
      type: "file.processed",
      created_at: expect.any(Number),
      data: { id: good },
    });
    expect(processed!.headers["webhook-id"]).toBe((processed!.verified as Json).id);
    expect(failed!.verified).toMatchObject({ type: "file.error", data: { id: bad } });
    expect(received.filter((r) => r.path === "/files").every((r) => typeof r.verified === "object")).toBe(
      true,
    );
  });

  /** A queued job of tenant A (with its pending model), as the jobs API leaves it before dispatch. */
  const queuedJob = async (): Promise<string> => {
    const jobId = newJobId();
    const job = jobRecord({ tenantId: tenantA, jobId, modelCode: `wh-${jobId.slice(-8)}`, status: "queued" });
    const model: ModelRecord = {
      modelCode: job.modelCode,
      tenantId: tenantA,
      jobId,
      baseModel: job.model,
      method: job.method,
      status: "pending",
      createdAt: job.createdAt,
      artifactUri: null,
    };
    await documents.send(new PutCommand({ TableName: platform.resources.tables.jobs, Item: job }));
    await documents.send(new PutCommand({ TableName: platform.resources.tables.models, Item: model }));
    return jobId;
  };

  it("sends fine_tuning.job.cancelled when a job is cancelled through the API", async () => {
    await createEndpoint("/jobs", ["fine_tuning.job.cancelled", "fine_tuning.job.paused"]);
    const jobId = await queuedJob();
    const cancelled = await api(keyA, `/fine_tuning/jobs/${jobId}/cancel`, { method: "POST" });
    expect(cancelled.body.status).toBe("cancelled");
    const [event] = await waitFor("/jobs", jobId, delivered);
    expect(event!.verified).toMatchObject({ type: "fine_tuning.job.cancelled", data: { id: jobId } });
  });

  it("sends fine_tuning.job.paused when a queued job is paused through the API", async () => {
    const jobId = await queuedJob();
    const paused = await api(keyA, `/fine_tuning/jobs/${jobId}/pause`, { method: "POST" });
    expect(paused.body.status).toBe("paused");
    const [event] = await waitFor("/jobs", jobId, delivered);
    expect(event!.verified).toMatchObject({ type: "fine_tuning.job.paused", data: { id: jobId } });
  });

  it("retries a receiver that answers 500 twice: one webhook-id, three attempts, delivered once", async () => {
    const endpoint = await createEndpoint("/flaky", ["file.processed"]);
    failFirst.set("/flaky", 2);
    const file = await upload("valid-messages.jsonl");
    const requests = await waitFor("/flaky", file, delivered);
    expect(requests.map((r) => r.answered)).toEqual([500, 500, 200]);
    expect(new Set(requests.map((r) => r.headers["webhook-id"]))).toHaveProperty("size", 1);
    // Every attempt is signed anew (its own timestamp) and verifies.
    expect(requests.every((r) => typeof r.verified === "object")).toBe(true);
    const eventId = requests[0]!.headers["webhook-id"];
    // The attempts are recorded on the endpoint.
    const deadline = Date.now() + 10_000;
    let shown: Json | undefined;
    while (Date.now() < deadline) {
      shown = (await api(keyA, `/webhooks/${endpoint.id}`)).body;
      if (shown.recent_deliveries?.[0]?.status === "delivered") break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(shown!.recent_deliveries[0]).toMatchObject({
      event_id: eventId,
      type: "file.processed",
      status: "delivered",
      attempts: 3,
      last_status_code: 200,
      delivered_at: expect.any(Number),
    });
  });

  it("hands a delivery to the dead-letter queue once its retry window is spent", async () => {
    const endpoint = await createEndpoint("/down", ["file.error"]);
    failFirst.set("/down", Number.POSITIVE_INFINITY);
    const file = await upload("unknown-role.jsonl");
    // 30 s window: attempts at 0, 1, 3, 7 and 15 s; the next (31 s) would fall after it.
    const deadline = Date.now() + 90_000;
    let dead: Json | undefined;
    while (!dead && Date.now() < deadline) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: platform.resources.dlqUrls["webhook-deliveries"],
          WaitTimeSeconds: 5,
          MaxNumberOfMessages: 10,
        }),
      );
      dead = Messages.map((m) => JSON.parse(m.Body ?? "{}") as Json).find((m) => m.event?.data?.id === file);
    }
    expect(dead).toMatchObject({
      endpointId: endpoint.id,
      attempt: 5,
      event: { type: "file.error", data: { id: file } },
      deadLetterReason: "HTTP 500",
    });
    const requests = received.filter((r) => r.path === "/down");
    expect(requests.map((r) => r.answered)).toEqual([500, 500, 500, 500, 500]);
    expect(new Set(requests.map((r) => r.headers["webhook-id"]))).toEqual(new Set([dead!.event.id]));
    const shown = (await api(keyA, `/webhooks/${endpoint.id}/deliveries`)).body;
    expect(shown.data[0]).toMatchObject({
      event_id: dead!.event.id,
      status: "failed",
      attempts: 5,
      last_status_code: 500,
      delivered_at: null,
      next_attempt_at: null,
    });
  });

  it("sends a signed webhook.test event on request", async () => {
    const endpoint = await createEndpoint("/test", ["fine_tuning.job.failed"]);
    const test = await api(keyA, `/webhooks/${endpoint.id}/test`, { method: "POST" });
    expect(test.status).toBe(202);
    const [event] = await waitFor("/test", endpoint.id, delivered);
    expect(event!.verified).toMatchObject({ type: "webhook.test", id: test.body.event_id });
    expect((await api(keyA, `/webhooks/${endpoint.id}`, { method: "DELETE" })).body).toMatchObject({
      deleted: true,
    });
    expect((await api(keyA, `/webhooks/${endpoint.id}`)).status).toBe(404);
  });
});
