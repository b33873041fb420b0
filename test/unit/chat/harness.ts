import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from "aws-lambda";
import { createChatService } from "../../../lambdas/chat/local.ts";
import type { ChatDependencies, ChatLogEntry } from "../../../lambdas/chat/service.ts";
import { DEFAULT_CATALOG } from "../../../lambdas/core/catalog/base-models.ts";
import { TokenBucketLimiter } from "../../../lambdas/core/chat/rate-limit.ts";
import type { ModelRecord } from "../../../lambdas/core/jobs/wire.ts";
import { createGateway } from "../../../local/platform/gateway.ts";

/** What the fake inference server should do with the next requests. */
export type UpstreamMode =
  | "normal"
  | "break-mid-stream"
  | "error-event"
  | "hang-after-first"
  | "status-400"
  | "status-500";

export interface RecordedRequest {
  readonly headers: IncomingMessage["headers"];
  readonly body: Record<string, unknown>;
  /** Resolves when the server saw the client side of this request close before it finished. */
  readonly closedEarly: Promise<void>;
}

/** An OpenAI-compatible server that streams `pieces` as chat.completion.chunk events. */
export class FakeUpstream {
  mode: UpstreamMode = "normal";
  pieces = ["Hel", "lo", " wor", "ld"];
  intervalMs = 0;
  readonly requests: RecordedRequest[] = [];
  /** TCP connections accepted so far (a kept-alive one serves several requests). */
  connections = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<import("node:net").Socket>();

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on("connection", (socket) => {
      this.connections += 1;
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    let closedEarly!: () => void;
    const record: RecordedRequest = {
      headers: req.headers,
      body,
      closedEarly: new Promise<void>((resolve) => {
        closedEarly = resolve;
      }),
    };
    res.on("close", () => {
      if (!res.writableFinished) closedEarly();
    });
    this.requests.push(record);
    const model = String(body.model);
    const base = { id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1_700_000_000, model };

    if (this.mode === "status-400") {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: {
            message: "prompt is longer than the context",
            type: "invalid_request_error",
            param: "messages",
            code: "context_length_exceeded",
          },
        }),
      );
      return;
    }
    if (this.mode === "status-500") {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "CUDA out of memory", type: "server_error", code: 500 } }));
      return;
    }
    if (!body.stream) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "chatcmpl-fake",
          object: "chat.completion",
          created: 1_700_000_000,
          model,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: this.pieces.join("") },
              finish_reason: "stop",
            },
          ],
          usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
        }),
      );
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    const send = (payload: unknown) =>
      res.write(`data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`);
    send({
      ...base,
      choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }],
    });
    for (const [i, piece] of this.pieces.entries()) {
      if (this.intervalMs) await sleep(this.intervalMs);
      if (res.destroyed) return;
      send({ ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] });
      if (i === 0 && this.mode === "break-mid-stream") {
        await sleep(5);
        res.socket?.destroy();
        return;
      }
      if (i === 0 && this.mode === "error-event") {
        send({
          error: {
            message: "the GPU fell over",
            type: "server_error",
            param: null,
            code: "inference_failed",
          },
        });
        res.end();
        return;
      }
      if (i === 0 && this.mode === "hang-after-first") {
        await record.closedEarly;
        return;
      }
    }
    send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
    const options = body.stream_options as { include_usage?: boolean } | undefined;
    if (options?.include_usage) {
      send({ ...base, choices: [], usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 } });
    }
    send("[DONE]");
    res.end();
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const KEYS: Record<string, string> = { "key-a": "tn_a", "key-b": "tn_b" };

/** The TOKEN authorizer's contract, over a fixed key → tenant table. */
export async function stubAuthorizer(
  event: APIGatewayTokenAuthorizerEvent,
): Promise<APIGatewayAuthorizerResult> {
  const tenantId = KEYS[event.authorizationToken.replace(/^Bearer\s+/i, "")];
  if (!tenantId) throw new Error("Unauthorized");
  return {
    principalId: tenantId,
    policyDocument: { Version: "2012-10-17", Statement: [] },
    context: { tenantId },
  };
}

export function modelRecord(overrides: Partial<ModelRecord> & { modelCode: string }): ModelRecord {
  return {
    tenantId: "tn_a",
    jobId: "ftjob-abc",
    baseModel: "tiny-chat",
    method: "lora",
    status: "ready",
    createdAt: 1_700_000_000,
    artifactUri: "s3://artifacts/tenants/tn_a/jobs/ftjob-abc/adapter/",
    ...overrides,
  };
}

export const MODELS: readonly ModelRecord[] = [
  modelRecord({ modelCode: "acme-support-v1" }),
  modelRecord({ modelCode: "acme-pending", status: "pending", artifactUri: null, jobId: "ftjob-pending" }),
  modelRecord({ modelCode: "acme-failed", status: "failed", artifactUri: null, jobId: "ftjob-failed" }),
  modelRecord({
    modelCode: "acme-full",
    method: "full",
    artifactUri: "s3://artifacts/tenants/tn_a/jobs/ftjob-full/model/",
    // chatDeps points UPSTREAM at the test's upstream: the deployment's own server.
    deployment: {
      id: "dep-full",
      status: "deployed",
      tensorParallelSize: 1,
      instanceType: "m7i.large",
      requestedAt: 1_700_000_000,
      deployedAt: 1_700_000_100,
      deadline: 1_700_003_600,
      endpoint: "UPSTREAM",
    },
  }),
  modelRecord({
    modelCode: "acme-full-undeployed",
    method: "full",
    artifactUri: "s3://artifacts/tenants/tn_a/jobs/ftjob-full2/model/",
  }),
];

export function chatDeps(
  upstream: string,
  overrides: Partial<ChatDependencies> = {},
): ChatDependencies & {
  logs: ChatLogEntry[];
} {
  const logs: ChatLogEntry[] = [];
  return {
    catalog: DEFAULT_CATALOG,
    findModel: async (code) => {
      const record = MODELS.find((m) => m.modelCode === code);
      return record?.deployment?.endpoint === "UPSTREAM"
        ? { ...record, deployment: { ...record.deployment, endpoint: upstream } }
        : record;
    },
    endpoints: new Map([["*", upstream]]),
    limiter: new TokenBucketLimiter(1_000),
    log: (entry) => logs.push(entry),
    logs,
    ...overrides,
  };
}

/** The local gateway with the chat route only; returns its `/v4` base URL. */
export async function startGateway(
  deps: ChatDependencies,
): Promise<{ baseUrl: string; stop(): Promise<void> }> {
  const server = createGateway(stubAuthorizer, [createChatService(deps)]);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}/v4`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
