import OpenAI, { APIError } from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TokenBucketLimiter } from "../../../lambdas/core/chat/rate-limit.ts";
import { chatDeps, FakeUpstream, sleep, startGateway } from "./harness.ts";

/**
 * The chat path as a client sees it: the official openai client → local gateway (stub TOKEN authorizer)
 * → serveChat → relay → a fake OpenAI-compatible inference server.
 */
const upstream = new FakeUpstream();
let gateway: Awaited<ReturnType<typeof startGateway>>;
let deps: ReturnType<typeof chatDeps>;
let clientA: OpenAI;
let clientB: OpenAI;

beforeAll(async () => {
  const url = await upstream.start();
  deps = chatDeps(url);
  gateway = await startGateway(deps);
  clientA = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "key-a", maxRetries: 0 });
  clientB = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "key-b", maxRetries: 0 });
});

afterAll(async () => {
  await gateway.stop();
  await upstream.stop();
});

afterEach(() => {
  upstream.mode = "normal";
  upstream.intervalMs = 0;
  upstream.requests.length = 0;
});

const messages = [{ role: "user" as const, content: "Say hello" }];

async function errorOf(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof APIError) return error;
    throw error;
  }
  throw new Error("expected an APIError");
}

describe("streaming chat through the local gateway", () => {
  it("streams the fine-tuned model's chunks with model rewritten to the model code", async () => {
    const stream = await clientA.chat.completions.create({
      model: "acme-support-v1",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("Hello world");
    expect(new Set(chunks.map((c) => c.model))).toEqual(new Set(["acme-support-v1"]));
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
    });
  });

  it("sends chunks that also have the zhipuai ChatCompletionChunk shape", async () => {
    const stream = await clientA.chat.completions.create({
      model: "acme-support-v1",
      messages,
      stream: true,
    });
    for await (const chunk of stream) {
      expect(typeof chunk.id).toBe("string");
      expect(typeof chunk.created).toBe("number");
      expect(chunk.model).toBe("acme-support-v1");
      expect(chunk.object).toBe("chat.completion.chunk");
      for (const choice of chunk.choices) {
        expect(typeof choice.index).toBe("number");
        expect(choice.delta).toBeTypeOf("object");
        expect(choice).toHaveProperty("finish_reason");
      }
    }
  });

  it("gives every chunk a Zhipu request_id as its id and request_id, and records user_id", async () => {
    const stream = await clientA.chat.completions.create({
      model: "acme-support-v1",
      messages,
      stream: true,
      request_id: "req-stream-1",
      user_id: "end-user-7",
      response_format: null,
      thinking: null,
    } as unknown as OpenAI.ChatCompletionCreateParamsStreaming);
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      expect(chunk.id).toBe("req-stream-1");
      expect((chunk as unknown as { request_id: string }).request_id).toBe("req-stream-1");
    }
    expect(chunks).toBeGreaterThan(1);
    expect(deps.logs.at(-1)).toMatchObject({
      outcome: "completed",
      user: "end-user-7",
      clientRequestId: "req-stream-1",
    });
    expect(upstream.requests[0]?.body).not.toHaveProperty("user");
  });

  it("leaves out the usage chunk when the client did not ask for it", async () => {
    const stream = await clientA.chat.completions.create({ model: "tiny-chat", messages, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
    // …while the platform still asked the upstream for it, to log it.
    expect(upstream.requests[0]?.body.stream_options).toEqual({ include_usage: true });
    expect(deps.logs.at(-1)).toMatchObject({ outcome: "completed", usage: { total_tokens: 9 } });
  });

  it("tells the inference server which adapter to load for a LoRA model", async () => {
    const stream = await clientA.chat.completions.create({
      model: "acme-support-v1",
      messages,
      stream: true,
    });
    for await (const _ of stream);
    const sent = upstream.requests[0]!;
    expect(sent.body.model).toBe("acme-support-v1");
    expect(sent.headers["x-ft-base-model"]).toBe("tiny-chat");
    expect(sent.headers["x-ft-method"]).toBe("lora");
    expect(sent.headers["x-ft-artifact-uri"]).toBe("s3://artifacts/tenants/tn_a/jobs/ftjob-abc/adapter/");
  });

  it("sends a base model by its name, without x-ft headers", async () => {
    const stream = await clientB.chat.completions.create({ model: "tiny-chat", messages, stream: true });
    for await (const _ of stream);
    const sent = upstream.requests[0]!;
    expect(sent.body.model).toBe("tiny-chat");
    expect(sent.headers["x-ft-artifact-uri"]).toBeUndefined();
  });

  it("carries x-request-id on the streamed response", async () => {
    const { response } = await clientA.chat.completions
      .create({ model: "tiny-chat", messages, stream: true })
      .withResponse();
    expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    await response.body?.cancel();
  });
});

describe("non-streaming chat", () => {
  it("relays the chat.completion with model rewritten", async () => {
    const completion = await clientA.chat.completions.create({ model: "acme-full", messages });
    expect(completion.object).toBe("chat.completion");
    expect(completion.model).toBe("acme-full");
    expect(completion.choices[0]?.message.content).toBe("Hello world");
    expect(completion.usage?.total_tokens).toBe(9);
    expect(upstream.requests[0]?.headers["x-ft-method"]).toBe("full");
  });

  it("answers with a Zhipu request_id as the completion's id and request_id, and accepts do_sample", async () => {
    const completion = await clientA.chat.completions.create({
      model: "tiny-chat",
      messages,
      // zhipuai SDK fields
      request_id: "req-123",
      do_sample: false,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect((completion as unknown as { request_id: string }).request_id).toBe("req-123");
    expect(completion.id).toBe("req-123");
    expect(upstream.requests[0]?.body.temperature).toBe(0);
    expect(upstream.requests[0]?.body).not.toHaveProperty("do_sample");
  });
});

describe("model resolution", () => {
  it("returns 404 model_not_found when tenant B uses tenant A's model code", async () => {
    const error = await errorOf(clientB.chat.completions.create({ model: "acme-support-v1", messages }));
    expect(error.status).toBe(404);
    expect(error.code).toBe("model_not_found");
    expect(error.param).toBe("model");
    const unknown = await errorOf(clientB.chat.completions.create({ model: "nobody-has-this", messages }));
    // The same answer for a code that does not exist at all: nothing leaks.
    expect(unknown.message.replace("nobody-has-this", "X")).toBe(
      error.message.replace("acme-support-v1", "X"),
    );
    expect(upstream.requests).toHaveLength(0);
  });

  it("returns 409 model_not_deployed for a full-parameter model that is not deployed", async () => {
    const error = await clientA.chat.completions
      .create({ model: "acme-full-undeployed", messages })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(409);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("model_not_deployed");
    expect(upstream.requests).toHaveLength(0);
  });

  it("returns 409 model_not_ready while the job is still training", async () => {
    const error = await errorOf(
      clientA.chat.completions.create({ model: "acme-pending", messages, stream: true }),
    );
    expect(error.status).toBe(409);
    expect(error.code).toBe("model_not_ready");
    expect(error.message).toContain("ftjob-pending");
  });

  it("returns 409 model_failed for a model whose job failed", async () => {
    const error = await errorOf(clientA.chat.completions.create({ model: "acme-failed", messages }));
    expect(error.status).toBe(409);
    expect(error.code).toBe("model_failed");
  });

  it("refuses max_tokens beyond the model's context", async () => {
    const error = await errorOf(
      clientA.chat.completions.create({ model: "tiny-chat", messages, max_tokens: 1000 }),
    );
    expect(error.status).toBe(400);
    expect(error.param).toBe("max_tokens");
  });
});

describe("upstream failures", () => {
  it("throws in the openai client when the upstream stream breaks off mid-way", async () => {
    upstream.mode = "break-mid-stream";
    const stream = await clientA.chat.completions.create({ model: "tiny-chat", messages, stream: true });
    const seen: string[] = [];
    const error = await errorOf(
      (async () => {
        for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? "");
      })(),
    );
    expect(seen.join("")).toBe("Hel");
    expect(error.code).toBe("upstream_error");
    expect(error.message).toContain("broke off");
  });

  it("passes an upstream error event through as the stream's last event", async () => {
    upstream.mode = "error-event";
    const stream = await clientA.chat.completions.create({ model: "tiny-chat", messages, stream: true });
    const error = await errorOf(
      (async () => {
        for await (const _ of stream);
      })(),
    );
    expect(error.code).toBe("inference_failed");
    expect(error.message).toContain("GPU");
  });

  it("passes an upstream 400 through with its code and param", async () => {
    upstream.mode = "status-400";
    const error = await errorOf(
      clientA.chat.completions.create({ model: "tiny-chat", messages, stream: true }),
    );
    expect(error.status).toBe(400);
    expect(error.code).toBe("context_length_exceeded");
    expect(error.param).toBe("messages");
  });

  it("answers 502 upstream_error for an upstream 500", async () => {
    upstream.mode = "status-500";
    const error = await errorOf(clientA.chat.completions.create({ model: "tiny-chat", messages }));
    expect(error.status).toBe(502);
    expect(error.code).toBe("upstream_error");
    expect(error.message).toContain("HTTP 500");
  });

  it("answers 503 upstream_unavailable when the inference server can not be reached", async () => {
    const closed = new FakeUpstream();
    const url = await closed.start();
    await closed.stop();
    const down = await startGateway(chatDeps(url));
    try {
      const client = new OpenAI({ baseURL: down.baseUrl, apiKey: "key-a", maxRetries: 0 });
      const error = await errorOf(
        client.chat.completions.create({ model: "tiny-chat", messages, stream: true }),
      );
      expect(error.status).toBe(503);
      expect(error.code).toBe("upstream_unavailable");
      expect(error.message).toContain("ECONNREFUSED");
      expect((error.error as { request_id?: string }).request_id).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await down.stop();
    }
  });
});

describe("client disconnect", () => {
  it("closes the upstream request when the client aborts the stream", async () => {
    upstream.mode = "hang-after-first";
    const stream = await clientA.chat.completions.create({ model: "tiny-chat", messages, stream: true });
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) break; // break aborts the request
    }
    const closed = await Promise.race([
      upstream.requests[0]!.closedEarly.then(() => true),
      sleep(5_000).then(() => false),
    ]);
    expect(closed).toBe(true);
    await sleep(20);
    expect(deps.logs.at(-1)).toMatchObject({ outcome: "client_gone" });
  });
});

describe("request validation", () => {
  async function post(body: unknown, raw?: string) {
    const response = await fetch(`${gateway.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer key-a", "content-type": "application/json" },
      body: raw ?? JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as { error: Record<string, unknown> } };
  }

  it.each([
    [{ model: "tiny-chat", messages, temperature: 3 }, "temperature", "invalid_request"],
    [{ model: "tiny-chat", messages, top_p: 1.5 }, "top_p", "invalid_request"],
    [{ model: "tiny-chat", messages, max_tokens: 0 }, "max_tokens", "invalid_request"],
    [{ model: "tiny-chat", messages, n: 2 }, "n", "invalid_request"],
    [{ model: "tiny-chat", messages, stop: ["a", "b", "c", "d", "e"] }, "stop", "invalid_request"],
    [{ model: "tiny-chat", messages, functions: [] }, "functions", "unknown_parameter"],
    [{ model: "tiny-chat", messages, tools: "web_search" }, "tools", "invalid_request"],
    [{ model: "tiny-chat", messages: [] }, "messages", "invalid_request"],
    [{ messages }, "model", "missing_required_parameter"],
    [
      { model: "tiny-chat", messages: [{ role: "robot", content: "hi" }] },
      "messages.0.role",
      "invalid_request",
    ],
    [
      {
        model: "tiny-chat",
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "http://x" } }] }],
      },
      "messages.0.content",
      "invalid_request",
    ],
  ])("answers 400 for %j", async (body, param, code) => {
    const { status, body: envelope } = await post(body);
    expect(status).toBe(400);
    expect(envelope.error.param).toBe(param);
    expect(envelope.error.code).toBe(code);
    expect(envelope.error.request_id).toBeTypeOf("string");
  });

  it("answers 400 invalid_json for a body that is not JSON", async () => {
    const { status, body } = await post(undefined, "{nope");
    expect(status).toBe(400);
    expect(body.error.code).toBe("invalid_json");
  });

  it("answers 413 for a body over 1 MiB", async () => {
    const big = "x".repeat(1024 * 1024);
    const { status, body } = await post({ model: "tiny-chat", messages: [{ role: "user", content: big }] });
    expect(status).toBe(413);
    expect(body.error.code).toBe("payload_too_large");
  });

  it("flattens text content parts", async () => {
    const completion = await clientA.chat.completions.create({
      model: "tiny-chat",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Say " },
            { type: "text", text: "hello" },
          ],
        },
      ],
    });
    expect(completion.choices[0]?.message.content).toBe("Hello world");
    expect(upstream.requests[0]?.body.messages).toEqual([{ role: "user", content: "Say hello" }]);
  });

  it("answers 401 without a valid API key", async () => {
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "wrong", maxRetries: 0 });
    const error = await errorOf(client.chat.completions.create({ model: "tiny-chat", messages }));
    expect(error.status).toBe(401);
  });
});

describe("rate limit", () => {
  it("answers 429 rate_limit_exceeded with retry-after once a tenant used up its minute", async () => {
    const limited = await startGateway(
      chatDeps((await upstreamUrl()) ?? "", { limiter: new TokenBucketLimiter(2) }),
    );
    try {
      const client = new OpenAI({ baseURL: limited.baseUrl, apiKey: "key-a", maxRetries: 0 });
      const other = new OpenAI({ baseURL: limited.baseUrl, apiKey: "key-b", maxRetries: 0 });
      await client.chat.completions.create({ model: "tiny-chat", messages });
      await client.chat.completions.create({ model: "tiny-chat", messages });
      const error = await errorOf(client.chat.completions.create({ model: "tiny-chat", messages }));
      expect(error.status).toBe(429);
      expect(error.code).toBe("rate_limit_exceeded");
      expect(Number(error.headers?.get("retry-after"))).toBeGreaterThanOrEqual(1);
      // Another tenant has its own bucket.
      await expect(other.chat.completions.create({ model: "tiny-chat", messages })).resolves.toBeTruthy();
    } finally {
      await limited.stop();
    }
  });
});

async function upstreamUrl(): Promise<string | undefined> {
  const endpoint = deps.endpoints.get("*");
  return endpoint;
}
