import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  TokenRateLimiter,
  type TokenWindowStore,
  tokensPerMinuteFromEnv,
  tokenWindowOf,
} from "../../../lambdas/core/chat/token-rate.ts";
import { chatDeps, FakeUpstream, startGateway } from "./harness.ts";

/** The shared counters in memory: what the chat-rate table holds, item by item. */
class InMemoryTokenWindows implements TokenWindowStore {
  readonly items = new Map<string, { tokens: number; expiresAt: number }>();
  failing = false;
  async used(tenantId: string, window: number): Promise<number> {
    return this.items.get(`${tenantId}#${window}`)?.tokens ?? 0;
  }
  async add(tenantId: string, window: number, tokens: number, expiresAt: number): Promise<void> {
    if (this.failing) throw new Error("table unavailable");
    const key = `${tenantId}#${window}`;
    this.items.set(key, { tokens: (this.items.get(key)?.tokens ?? 0) + tokens, expiresAt });
  }
}

const MINUTE = 60_000;
const T0 = 1_764_720_000_000; // a whole minute

describe("TokenRateLimiter", () => {
  it("admits while the tenant's tokens of the minute are below the limit, then refuses until the next minute", async () => {
    const limiter = new TokenRateLimiter(new InMemoryTokenWindows(), 100);
    expect(await limiter.admit("tn_a", T0)).toEqual({ allowed: true });
    await limiter.consume("tn_a", 99, T0);
    expect(await limiter.admit("tn_a", T0 + 1_000)).toEqual({ allowed: true });
    await limiter.consume("tn_a", 30, T0 + 1_000);
    expect(await limiter.admit("tn_a", T0 + 15_500)).toEqual({ allowed: false, retryAfterSeconds: 45 });
    expect(await limiter.admit("tn_a", T0 + MINUTE)).toEqual({ allowed: true });
  });

  it("keeps tenants apart", async () => {
    const limiter = new TokenRateLimiter(new InMemoryTokenWindows(), 10);
    await limiter.consume("tn_a", 10, T0);
    expect((await limiter.admit("tn_a", T0)).allowed).toBe(false);
    expect((await limiter.admit("tn_b", T0)).allowed).toBe(true);
  });

  it("counts a chat in the window it was admitted in, and lets the item expire after it", async () => {
    const store = new InMemoryTokenWindows();
    await new TokenRateLimiter(store, 10).consume("tn_a", 5, T0 + 59_000);
    const window = tokenWindowOf(T0);
    expect(store.items.get(`tn_a#${window}`)).toEqual({ tokens: 5, expiresAt: (T0 + MINUTE) / 1000 + 1200 });
  });

  it("is shared: two limiters (two instances) over one store see each other's tokens", async () => {
    const store = new InMemoryTokenWindows();
    const one = new TokenRateLimiter(store, 50);
    const two = new TokenRateLimiter(store, 50);
    await one.consume("tn_a", 50, T0);
    expect((await two.admit("tn_a", T0)).allowed).toBe(false);
  });

  it("reads and writes nothing when the limit is 0 (off)", async () => {
    const store = new InMemoryTokenWindows();
    const limiter = new TokenRateLimiter(store, 0);
    await limiter.consume("tn_a", 1_000, T0);
    expect(await limiter.admit("tn_a", T0)).toEqual({ allowed: true });
    expect(store.items.size).toBe(0);
  });
});

describe("tokensPerMinuteFromEnv", () => {
  it("defaults to 100,000, reads whole numbers, 0 included, and refuses others", () => {
    expect(tokensPerMinuteFromEnv(undefined)).toBe(100_000);
    expect(tokensPerMinuteFromEnv("0")).toBe(0);
    expect(tokensPerMinuteFromEnv("2500")).toBe(2500);
    expect(() => tokensPerMinuteFromEnv("1e3.5")).toThrow(/CHAT_TOKENS_PER_MINUTE/);
    expect(() => tokensPerMinuteFromEnv("-1")).toThrow(/CHAT_TOKENS_PER_MINUTE/);
  });
});

describe("the chat under a shared token rate", () => {
  const upstream = new FakeUpstream();
  const store = new InMemoryTokenWindows();
  const errors: string[] = [];
  let now = T0 + 20_000;
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  const messages = [{ role: "user" as const, content: "Say hello" }];

  beforeAll(async () => {
    const url = await upstream.start();
    gateway = await startGateway(
      chatDeps(url, {
        now: () => now,
        tokenRate: new TokenRateLimiter(store, 1),
        logError: (message) => errors.push(message),
      }),
    );
  });

  afterAll(async () => {
    await gateway.stop();
    await upstream.stop();
  });

  it("adds an answered chat's prompt and completion tokens, then answers 429 rate_limit_exceeded with retry-after", async () => {
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "key-a", maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: "tiny-chat", messages });
    const total = completion.usage!.prompt_tokens + completion.usage!.completion_tokens;
    expect(await store.used("tn_a", tokenWindowOf(now))).toBe(total);

    const error = (await client.chat.completions
      .create({ model: "tiny-chat", messages })
      .catch((e) => e)) as APIError;
    expect(error).toBeInstanceOf(APIError);
    expect(error.status).toBe(429);
    expect(error.code).toBe("rate_limit_exceeded");
    expect(error.message).toMatch(/Rate limit of 1 chat tokens per minute/);
    expect(error.headers?.get("retry-after")).toBe("40");
    // Another tenant has its own window.
    const other = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "key-b", maxRetries: 0 });
    await expect(other.chat.completions.create({ model: "tiny-chat", messages })).resolves.toBeTruthy();
    // The next minute admits again.
    now += 40_000;
    await expect(client.chat.completions.create({ model: "tiny-chat", messages })).resolves.toBeTruthy();
  });

  it("still answers when the count cannot be written, and logs it for the operator", async () => {
    now += 5 * MINUTE;
    store.failing = true;
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "key-a", maxRetries: 0 });
    await expect(client.chat.completions.create({ model: "tiny-chat", messages })).resolves.toBeTruthy();
    expect(errors).toContain("chat tokens not counted for the rate limit");
    store.failing = false;
  });
});
