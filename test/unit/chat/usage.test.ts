import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChatUsage } from "../../../lambdas/core/usage/usage.ts";
import { chatDeps, FakeUpstream, startGateway } from "./harness.ts";

/** Every answered chat's tokens reach the usage recorder, after the response; a failing recorder costs the client nothing. */
const upstream = new FakeUpstream();
const recorded: ChatUsage[] = [];
let failing = false;
const errors: string[] = [];
let gateway: Awaited<ReturnType<typeof startGateway>>;
let client: OpenAI;

beforeAll(async () => {
  const url = await upstream.start();
  gateway = await startGateway(
    chatDeps(url, {
      now: () => 1_764_720_000_000,
      usage: {
        async record(usage) {
          if (failing) throw new Error("table unavailable");
          recorded.push(usage);
        },
      },
      logError: (message) => errors.push(message),
    }),
  );
  client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "key-a", maxRetries: 0 });
});

afterAll(async () => {
  await gateway.stop();
  await upstream.stop();
});

const messages = [{ role: "user" as const, content: "Say hello" }];

describe("usage recording", () => {
  it("records the tokens of streamed and non-streamed chats under the tenant and the model called", async () => {
    const stream = await client.chat.completions.create({ model: "acme-support-v1", messages, stream: true });
    for await (const _ of stream) {
      // drain
    }
    const completion = await client.chat.completions.create({ model: "tiny-chat", messages });
    expect(recorded).toEqual([
      expect.objectContaining({ tenantId: "tn_a", model: "acme-support-v1", at: 1_764_720_000_000 }),
      {
        tenantId: "tn_a",
        model: "tiny-chat",
        promptTokens: completion.usage!.prompt_tokens,
        completionTokens: completion.usage!.completion_tokens,
        at: 1_764_720_000_000,
      },
    ]);
    expect(recorded[0]!.promptTokens + recorded[0]!.completionTokens).toBeGreaterThan(0);
  });

  it("records nothing for a refused chat", async () => {
    recorded.length = 0;
    await client.chat.completions.create({ model: "acme-pending", messages }).catch(() => undefined);
    expect(recorded).toEqual([]);
  });

  it("still answers when the usage write fails, and logs it for the operator", async () => {
    failing = true;
    const completion = await client.chat.completions.create({ model: "tiny-chat", messages });
    failing = false;
    expect(completion.choices[0]?.message.content).toBe("Hello world");
    expect(errors).toContain("usage not recorded");
  });
});
