import { describe, expect, it } from "vitest";
import { upstreamHttpError } from "../../../lambdas/chat/relay.ts";
import { DEFAULT_CATALOG } from "../../../lambdas/core/catalog/base-models.ts";
import { relayEvent } from "../../../lambdas/core/chat/chunks.ts";
import {
  endpointFor,
  parseInferenceEndpoints,
  resolveModel,
  upstreamTarget,
} from "../../../lambdas/core/chat/models.ts";
import { rateLimitFromEnv, TokenBucketLimiter } from "../../../lambdas/core/chat/rate-limit.ts";
import { DEFAULT_CHAT_LIMITS, parseChatRequest, upstreamBody } from "../../../lambdas/core/chat/request.ts";
import { SseParser } from "../../../lambdas/core/chat/sse.ts";
import type { PlatformError } from "../../../lambdas/core/errors.ts";
import type { ModelRecord } from "../../../lambdas/core/jobs/wire.ts";
import { MODELS, modelRecord } from "./harness.ts";

describe("SseParser", () => {
  const stream = 'data: {"a":1}\n\n: comment\n\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n';

  it("yields each event as soon as its blank line arrives, however the bytes are split", () => {
    const bytes = new TextEncoder().encode(stream);
    for (const size of [1, 2, 3, 7, 64]) {
      const parser = new SseParser();
      const events = [];
      for (let i = 0; i < bytes.length; i += size) events.push(...parser.push(bytes.subarray(i, i + size)));
      expect(events).toEqual([
        { event: null, data: '{"a":1}' },
        { event: "x", data: "line1\nline2" },
        { event: null, data: "[DONE]" },
      ]);
      expect(parser.hasPartialEvent).toBe(false);
    }
  });

  it("reads CRLF and CR line ends, also split between pieces", () => {
    const parser = new SseParser();
    expect(parser.push("data: a\r")).toEqual([]);
    expect(parser.push("\n\r\ndata: b\r\r")).toEqual([
      { event: null, data: "a" },
      { event: null, data: "b" },
    ]);
  });

  it("decodes UTF-8 split inside a character", () => {
    const bytes = new TextEncoder().encode("data: 你好\n\n");
    const parser = new SseParser();
    expect(parser.push(bytes.subarray(0, 7))).toEqual([]);
    expect(parser.push(bytes.subarray(7))).toEqual([{ event: null, data: "你好" }]);
  });

  it("does not emit an event before its blank line", () => {
    const parser = new SseParser();
    expect(parser.push('data: {"a":1}\n')).toEqual([]);
    expect(parser.hasPartialEvent).toBe(true);
    expect(parser.push("\n")).toHaveLength(1);
  });
});

describe("relayEvent", () => {
  const chunk = { id: "c1", object: "chat.completion.chunk", created: 1, model: "tiny-chat", choices: [] };

  it("rewrites model and keeps every other field", () => {
    const out = relayEvent(
      { event: null, data: JSON.stringify({ ...chunk, extra: 1 }) },
      { model: "code", includeUsage: true },
    );
    expect(out.kind).toBe("chunk");
    expect(JSON.parse((out as { text: string }).text.slice(6))).toEqual({
      ...chunk,
      model: "code",
      extra: 1,
    });
  });

  it("drops the usage-only chunk unless asked for, but reports the usage", () => {
    const usage = { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 };
    const event = { event: null, data: JSON.stringify({ ...chunk, usage }) };
    expect(relayEvent(event, { model: "m", includeUsage: false })).toEqual({ kind: "skip", usage });
    expect(relayEvent(event, { model: "m", includeUsage: true })).toMatchObject({ kind: "chunk", usage });
  });

  it("echoes request_id, recognises [DONE], errors and garbage", () => {
    const out = relayEvent(
      { event: null, data: JSON.stringify(chunk) },
      { model: "m", includeUsage: false, requestId: "r1" },
    );
    expect((out as { text: string }).text).toContain('"request_id":"r1"');
    expect(relayEvent({ event: null, data: "[DONE]" }, { model: "m", includeUsage: false })).toEqual({
      kind: "done",
    });
    expect(
      relayEvent({ event: null, data: '{"error":{"message":"x"}}' }, { model: "m", includeUsage: false })
        .kind,
    ).toBe("error");
    expect(relayEvent({ event: null, data: "nope" }, { model: "m", includeUsage: false })).toEqual({
      kind: "invalid",
    });
  });
});

describe("TokenBucketLimiter", () => {
  it("admits the limit at once, then one per 60/limit seconds, per key", () => {
    const limiter = new TokenBucketLimiter(60);
    for (let i = 0; i < 60; i++) expect(limiter.take("a", 0).allowed).toBe(true);
    expect(limiter.take("a", 0)).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect(limiter.take("b", 0).allowed).toBe(true);
    expect(limiter.take("a", 999).allowed).toBe(false);
    expect(limiter.take("a", 2_000).allowed).toBe(true);
  });

  it("says how long to wait with a slow refill", () => {
    const limiter = new TokenBucketLimiter(2);
    limiter.take("a", 0);
    limiter.take("a", 0);
    expect(limiter.take("a", 0)).toEqual({ allowed: false, retryAfterSeconds: 30 });
  });

  it("is off at 0 and forgets idle keys beyond its bound", () => {
    const off = new TokenBucketLimiter(0);
    for (let i = 0; i < 1000; i++) expect(off.take("a", 0).allowed).toBe(true);
    const small = new TokenBucketLimiter(10, 2);
    small.take("a", 0);
    small.take("b", 0);
    small.take("c", 60_000);
    expect(small.take("c", 60_000).allowed).toBe(true);
  });

  it("reads CHAT_RATE_LIMIT_PER_MINUTE", () => {
    expect(rateLimitFromEnv(undefined)).toBe(120);
    expect(rateLimitFromEnv("30")).toBe(30);
    expect(() => rateLimitFromEnv("-1")).toThrow(/whole number/);
  });
});

describe("parseChatRequest", () => {
  const messages = [{ role: "user", content: "hi" }];
  const parse = (body: unknown) => parseChatRequest(Buffer.from(JSON.stringify(body)));

  it("normalises an OpenAI request", () => {
    const request = parse({
      model: "m",
      messages: [
        { role: "developer", content: "be brief" },
        ...messages,
        { role: "assistant", content: null },
      ],
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 10,
      stop: "x",
      temperature: null,
    });
    expect(request).toMatchObject({
      model: "m",
      stream: true,
      includeUsage: true,
      maxTokens: 10,
      stop: ["x"],
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi" },
        { role: "assistant", content: "" },
      ],
    });
    expect(request).not.toHaveProperty("temperature");
    expect(upstreamBody(request, "up")).toEqual({
      model: "up",
      messages: request.messages,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 10,
      stop: ["x"],
    });
  });

  it("reads the zhipuai SDK's fields", () => {
    const request = parse({
      model: "m",
      messages,
      request_id: "r",
      do_sample: false,
      temperature: 0.9,
      user_id: "u",
    });
    expect(request).toMatchObject({ requestId: "r", temperature: 0, endUser: "u" });
  });

  // Every field the zhipuai SDK (2.1.5) and the openai SDK can put in a chat body, as they send it.
  const everySdkField = {
    model: "m",
    messages,
    stream: true,
    stream_options: { include_usage: true },
    temperature: 0.01,
    top_p: 0.99,
    max_tokens: 64,
    max_completion_tokens: 64,
    stop: ["。", "\n\n"],
    seed: 7,
    user: "end-user-1",
    n: 1,
    presence_penalty: 0.5,
    frequency_penalty: 0.5,
    request_id: "req-1",
    do_sample: false,
    user_id: "end-user-1",
    sensitive_word_check: { type: "ALL", status: "DISABLE" },
    tools: [{ type: "web_search", web_search: { enable: false } }],
    tool_choice: "auto",
    meta: { user_info: "a tenant app user", bot_info: "a bot", bot_name: "bot", user_name: "user" },
    response_format: { type: "text" },
    thinking: { type: "disabled" },
    extra: { target: { path: "a.py", language: "Python", code_prefix: "", code_suffix: "" } },
  };

  it("accepts every field either SDK can send, with values", () => {
    const request = parse(everySdkField);
    expect(request).toMatchObject({
      stream: true,
      includeUsage: true,
      temperature: 0,
      topP: 0.99,
      maxTokens: 64,
      stop: ["。", "\n\n"],
      seed: 7,
      requestId: "req-1",
      endUser: "end-user-1",
    });
    // The ignored fields do not reach the inference server, nor does the end user.
    const upstream = upstreamBody(request, "up");
    for (const ignored of ["tools", "tool_choice", "meta", "response_format", "thinking", "extra", "user"]) {
      expect(upstream).not.toHaveProperty(ignored);
    }
    expect(upstream).toMatchObject({ temperature: 0, seed: 7, stop: ["。", "\n\n"], max_tokens: 64 });
  });

  it("reads every field either SDK can send as absent when it is null", () => {
    const nulls = Object.fromEntries(
      Object.keys(everySdkField)
        .filter((key) => key !== "model" && key !== "messages")
        .map((key) => [key, null]),
    );
    const request = parse({ model: "m", messages, ...nulls });
    expect(request).toEqual({
      model: "m",
      messages,
      stream: false,
      includeUsage: false,
      promptChars: request.promptChars,
    });
    expect(upstreamBody(request, "up")).toEqual({ model: "up", messages, stream: false });
  });

  it("reads the body the zhipuai SDK sends by default (response_format and thinking null)", () => {
    const request = parse({ model: "m", messages, response_format: null, thinking: null });
    expect(request.model).toBe("m");
  });

  it("still refuses a field that neither SDK sends", () => {
    expect(() => parse({ model: "m", messages, max_token: 5 })).toThrow(
      expect.objectContaining({ status: 400, code: "unknown_parameter", param: "max_token" }),
    );
    expect(() => parse({ model: "m", messages, logit_bias_x: null })).toThrow(
      expect.objectContaining({ status: 400, code: "unknown_parameter" }),
    );
  });

  it.each([
    ["thinking", { type: "sometimes" }],
    ["response_format", { type: "xml" }],
    ["tools", "web_search"],
    ["tool_choice", 3],
    ["meta", { user_info: 1 }],
    ["user_id", ""],
  ])("checks the shape of the accepted %s", (field, value) => {
    expect(() => parse({ model: "m", messages, [field]: value })).toThrow(
      expect.objectContaining({ status: 400, param: expect.stringContaining(field) }),
    );
  });

  it("bounds the prompt and the body", () => {
    const limits = { ...DEFAULT_CHAT_LIMITS, maxPromptChars: 5 };
    expect(() =>
      parseChatRequest(
        Buffer.from(JSON.stringify({ model: "m", messages: [{ role: "user", content: "123456" }] })),
        limits,
      ),
    ).toThrow(expect.objectContaining({ status: 400, code: "prompt_too_long", param: "messages" }));
    expect(() => parseChatRequest(Buffer.alloc(DEFAULT_CHAT_LIMITS.maxBodyBytes + 1))).toThrow(
      expect.objectContaining({ status: 413 }),
    );
  });

  it("needs a user message", () => {
    expect(() => parse({ model: "m", messages: [{ role: "system", content: "x" }] })).toThrow(/user message/);
  });

  it("names the unknown parameter", () => {
    expect(() => parse({ model: "m", messages, max_token: 5 })).toThrow(
      expect.objectContaining({ code: "unknown_parameter", param: "max_token" }),
    );
  });
});

describe("model resolution and endpoints", () => {
  const deps = {
    catalog: DEFAULT_CATALOG,
    findModel: async (code: string) => MODELS.find((m) => m.modelCode === code),
  };

  it("resolves a base model without a lookup", async () => {
    const resolved = await resolveModel("tiny-chat", "tn_x", {
      ...deps,
      findModel: async () => {
        throw new Error("not called");
      },
    });
    expect(resolved.fineTuned).toBeUndefined();
    expect(upstreamTarget(resolved)).toEqual({ model: "tiny-chat", headers: {} });
  });

  it("gives another tenant's code and an unknown code the same 404", async () => {
    const a = await resolveModel("acme-support-v1", "tn_b", deps).catch((e: PlatformError) => e);
    const b = await resolveModel("acme-support-v2", "tn_b", deps).catch((e: PlatformError) => e);
    expect(a).toMatchObject({ status: 404, code: "model_not_found" });
    expect(b).toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("sends a deployed full model to its deployment's own server, a LoRA model to its base's, else *", async () => {
    const endpoints = parseInferenceEndpoints(
      JSON.stringify({ "*": "http://default/v1", "tiny-chat": "http://tiny/v1/" }),
    );
    const full = await resolveModel("acme-full", "tn_a", deps);
    const lora = await resolveModel("acme-support-v1", "tn_a", deps);
    const base = await resolveModel("qwen2.5-7b-instruct", "tn_a", deps);
    expect(endpointFor(full, endpoints)).toBe("UPSTREAM");
    expect(endpointFor(lora, endpoints)).toBe("http://tiny/v1");
    expect(endpointFor(base, endpoints)).toBe("http://default/v1");
    expect(() => endpointFor(base, new Map())).toThrow(
      expect.objectContaining({ status: 503, code: "model_not_served" }),
    );
  });

  it("answers 409 model_not_deployed, naming the deploy call, for a full model that is not deployed", async () => {
    const full = MODELS.find((m) => m.modelCode === "acme-full")!;
    const cases = [
      [undefined, "is not deployed; deploy it with POST /v4/models/acme-full/deploy"],
      ["undeployed", "is not deployed; deploy it with POST /v4/models/acme-full/deploy"],
      ["failed", "its last deployment failed; deploy it again with POST /v4/models/acme-full/deploy"],
      [
        "deploying",
        "is being deployed; retry when GET /v4/models/acme-full shows deployment.status 'deployed'",
      ],
    ] as const;
    for (const [status, message] of cases) {
      const record = {
        ...full,
        deployment: status ? { ...full.deployment!, status, endpoint: undefined } : undefined,
      } as ModelRecord;
      const error = await resolveModel("acme-full", "tn_a", { ...deps, findModel: async () => record }).catch(
        (e) => e,
      );
      expect(error).toMatchObject({ status: 409, code: "model_not_deployed", param: "model" });
      expect(error.message).toContain(message);
    }
  });

  it("refuses a malformed INFERENCE_ENDPOINTS", () => {
    expect(parseInferenceEndpoints(undefined).size).toBe(0);
    expect(() => parseInferenceEndpoints("[1]")).toThrow(/JSON object/);
    expect(() => parseInferenceEndpoints('{"*": "ftp://x"}')).toThrow(/http/);
    expect(() => parseInferenceEndpoints('{"*": "not a url"}')).toThrow(/not a URL/);
  });

  it("answers 503 when a model's base model left the catalog", async () => {
    const orphan = modelRecord({ modelCode: "orphan", baseModel: "gone-model" });
    const error = await resolveModel("orphan", "tn_a", { ...deps, findModel: async () => orphan }).catch(
      (e) => e,
    );
    expect(error).toMatchObject({ status: 503, code: "model_not_served" });
  });
});

describe("upstreamHttpError", () => {
  it("maps upstream statuses", () => {
    expect(upstreamHttpError(400, '{"error":{"message":"bad","code":"x","param":"p"}}')).toMatchObject({
      status: 400,
      code: "x",
      param: "p",
      message: "bad",
    });
    // vLLM's flat error with a numeric code
    expect(upstreamHttpError(400, '{"object":"error","message":"bad","code":400}')).toMatchObject({
      status: 400,
      code: "upstream_rejected",
    });
    expect(upstreamHttpError(404, "")).toMatchObject({ status: 404, type: "not_found_error" });
    expect(upstreamHttpError(401, "")).toMatchObject({ status: 502, code: "upstream_error" });
    expect(upstreamHttpError(503, "<html>")).toMatchObject({ status: 503, code: "upstream_unavailable" });
    expect(upstreamHttpError(500, "")).toMatchObject({ status: 502 });
  });
});
