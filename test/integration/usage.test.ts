import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { UsageRepository } from "../../lambdas/aws/usage-repository.ts";
import type { ChatUsage } from "../../lambdas/core/usage/usage.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { localClients, uniquePrefix } from "./aws.ts";

/**
 * Chat token usage against LocalStack: the repository's atomic counters and key-range query on the
 * real table, and `GET /v4/usage` through the local gateway with tenants' API keys.
 */
describe("usage per tenant, day and model", () => {
  let platform: LocalPlatform;
  let usage: UsageRepository;
  let tenantA: { tenantId: string; apiKey: string };
  let tenantB: { tenantId: string; apiKey: string };

  beforeAll(async () => {
    const { documents } = localClients();
    platform = await startPlatform({ prefix: uniquePrefix("usage"), port: 0 });
    usage = new UsageRepository(documents, platform.resources.tables.usage);
    const admin = new TenantAdmin(new ApiKeysRepository(documents, platform.resources.tables["api-keys"]));
    tenantA = await admin.createTenant("usage a");
    tenantB = await admin.createTenant("usage b");
  });

  afterAll(async () => {
    await platform?.stop();
  });

  const at = (iso: string) => Date.parse(iso);
  const chat = (
    tenantId: string,
    model: string,
    when: string,
    prompt: number,
    completion: number,
  ): ChatUsage => ({
    tenantId,
    model,
    promptTokens: prompt,
    completionTokens: completion,
    at: at(when),
  });
  const get = (key: string | undefined, query: string) =>
    fetch(`${platform.baseUrl}/usage${query}`, key ? { headers: { authorization: `Bearer ${key}` } } : {});

  it("adds concurrent chats of one day and model without losing any", async () => {
    const { tenantId } = tenantA;
    await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        usage.record(chat(tenantId, "tiny-chat", "2026-03-10T08:00:00Z", i, 2)),
      ),
    );
    const days = await usage.daily(tenantId, "2026-03-10", "2026-03-10");
    expect(days).toEqual([
      { date: "2026-03-10", model: "tiny-chat", requests: 25, promptTokens: 300, completionTokens: 50 },
    ]);
  });

  it("reads the days of the range, both ends, every model, and no day outside", async () => {
    const { tenantId } = tenantB;
    const models = ["tiny-chat", "acme:ft#1", "模型-ft", "😀-model"];
    for (const model of models) {
      await usage.record(chat(tenantId, model, "2026-04-30T23:59:59.999Z", 1000, 1000));
      await usage.record(chat(tenantId, model, "2026-05-01T00:00:00Z", 1, 2));
      await usage.record(chat(tenantId, model, "2026-05-31T23:59:59Z", 3, 4));
      await usage.record(chat(tenantId, model, "2026-06-01T00:00:00Z", 1000, 1000));
    }
    const days = await usage.daily(tenantId, "2026-05-01", "2026-05-31");
    expect(days).toHaveLength(2 * models.length);
    expect(new Set(days.map((d) => d.date))).toEqual(new Set(["2026-05-01", "2026-05-31"]));
    expect(new Set(days.map((d) => d.model))).toEqual(new Set(models));
    expect(days.every((d) => d.requests === 1 && d.promptTokens + d.completionTokens < 10)).toBe(true);
  });

  it("answers GET /v4/usage with the calling tenant's days, sorted by date then model", async () => {
    const { tenantId, apiKey } = tenantA;
    await usage.record(chat(tenantId, "glm-4-9b-chat", "2026-03-11T12:00:00Z", 10, 5));
    await usage.record(chat(tenantId, "acme:ft-1", "2026-03-11T12:00:00Z", 7, 3));
    const response = await get(apiKey, "?start=2026-03-01&end=2026-03-31");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      object: "list",
      start: "2026-03-01",
      end: "2026-03-31",
      data: [
        {
          object: "usage.daily",
          date: "2026-03-10",
          model: "tiny-chat",
          requests: 25,
          prompt_tokens: 300,
          completion_tokens: 50,
          total_tokens: 350,
        },
        {
          object: "usage.daily",
          date: "2026-03-11",
          model: "acme:ft-1",
          requests: 1,
          prompt_tokens: 7,
          completion_tokens: 3,
          total_tokens: 10,
        },
        {
          object: "usage.daily",
          date: "2026-03-11",
          model: "glm-4-9b-chat",
          requests: 1,
          prompt_tokens: 10,
          completion_tokens: 5,
          total_tokens: 15,
        },
      ],
    });
  });

  it("returns none of tenant A's usage to tenant B", async () => {
    const response = await get(tenantB.apiKey, "?start=2026-03-01&end=2026-03-31");
    expect(response.status).toBe(200);
    expect(((await response.json()) as { data: unknown[] }).data).toEqual([]);
  });

  it("answers 400 for a bad range and 401 without a key, in the OpenAI error envelope", async () => {
    const reversed = await get(tenantA.apiKey, "?start=2026-03-31&end=2026-03-01");
    expect(reversed.status).toBe(400);
    expect(await reversed.json()).toMatchObject({
      error: { type: "invalid_request_error", param: "end", request_id: expect.any(String) },
    });
    const unknown = await get(tenantA.apiKey, "?start=2026-03-01&end=2026-03-02&tenant=x");
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: { param: "tenant", code: "unknown_parameter" } });
    expect((await get(undefined, "?start=2026-03-01&end=2026-03-02")).status).toBe(401);
  });
});
