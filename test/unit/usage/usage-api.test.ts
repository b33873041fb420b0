import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { APIGatewayProxyEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { UsageRepository } from "../../../lambdas/aws/usage-repository.ts";
import { handleApiEvent } from "../../../lambdas/core/http/api-gateway.ts";
import { Router } from "../../../lambdas/core/http/router.ts";
import { usageIncrement, usageKeyRange } from "../../../lambdas/core/usage/keys.ts";
import type { ChatUsage, DailyUsage, UsageReader, UsageRecorder } from "../../../lambdas/core/usage/usage.ts";
import { usageRoutes } from "../../../lambdas/usage-api/routes.ts";

const TENANT_A = "tn_aaaaaaaaaaaaaaaa";
const TENANT_B = "tn_bbbbbbbbbbbbbbbb";

/** The usage table in memory, keyed and ranged like the real one (UTF-8 order of the sort key). */
class InMemoryUsage implements UsageRecorder, UsageReader {
  readonly items = new Map<string, DailyUsage & { tenantId: string; usageKey: string }>();

  async record(usage: ChatUsage): Promise<void> {
    const inc = usageIncrement(usage);
    const id = `${inc.tenantId}|${inc.usageKey}`;
    const old = this.items.get(id);
    this.items.set(id, {
      tenantId: inc.tenantId,
      usageKey: inc.usageKey,
      date: inc.date,
      model: inc.model,
      requests: (old?.requests ?? 0) + 1,
      promptTokens: (old?.promptTokens ?? 0) + inc.promptTokens,
      completionTokens: (old?.completionTokens ?? 0) + inc.completionTokens,
    });
  }

  async daily(tenantId: string, start: string, end: string): Promise<DailyUsage[]> {
    const { from, to } = usageKeyRange(start, end);
    const utf8 = (s: string) => Buffer.from(s, "utf8");
    return [...this.items.values()]
      .filter((i) => i.tenantId === tenantId)
      .filter((i) => Buffer.compare(utf8(i.usageKey), utf8(from)) >= 0)
      .filter((i) => Buffer.compare(utf8(i.usageKey), utf8(to)) <= 0)
      .map(({ date, model, requests, promptTokens, completionTokens }) => ({
        date,
        model,
        requests,
        promptTokens,
        completionTokens,
      }));
  }
}

function event(
  tenantId: string | undefined,
  query: Record<string, string> | null,
  path = "/v4/usage",
): APIGatewayProxyEvent {
  return {
    httpMethod: "GET",
    path,
    headers: {},
    queryStringParameters: query,
    body: null,
    isBase64Encoded: false,
    requestContext: { requestId: "req-1", authorizer: tenantId ? { tenantId } : undefined },
  } as unknown as APIGatewayProxyEvent;
}

function setup() {
  const store = new InMemoryUsage();
  const router = new Router(usageRoutes({ usage: store }));
  const get = async (tenantId: string | undefined, query: Record<string, string> | null, path?: string) => {
    const response = await handleApiEvent(router, event(tenantId, query, path), () => {});
    return { status: response.statusCode, body: JSON.parse(response.body) };
  };
  return { store, get };
}

const at = (day: string, hour = 12) => Date.parse(`${day}T${String(hour).padStart(2, "0")}:00:00Z`);

describe("GET /v4/usage", () => {
  it("sums the tenant's chats per UTC day and model, sorted by date then model", async () => {
    const { store, get } = setup();
    const chat = (model: string, day: string, prompt: number, completion: number, hour?: number) =>
      store.record({
        tenantId: TENANT_A,
        model,
        promptTokens: prompt,
        completionTokens: completion,
        at: at(day, hour),
      });
    await chat("tiny-chat", "2026-12-03", 10, 20, 0);
    await chat("tiny-chat", "2026-12-03", 5, 5, 23);
    await chat("tiny-chat", "2026-12-03", 1, 2);
    await chat("acme:ft-1", "2026-12-03", 7, 3);
    await chat("tiny-chat", "2026-12-01", 2, 2);
    await chat("tiny-chat", "2026-11-30", 100, 100);
    await chat("tiny-chat", "2026-12-04", 100, 100);

    const { status, body } = await get(TENANT_A, { start: "2026-12-01", end: "2026-12-03" });
    expect(status).toBe(200);
    expect(body).toEqual({
      object: "list",
      start: "2026-12-01",
      end: "2026-12-03",
      data: [
        {
          object: "usage.daily",
          date: "2026-12-01",
          model: "tiny-chat",
          requests: 1,
          prompt_tokens: 2,
          completion_tokens: 2,
          total_tokens: 4,
        },
        {
          object: "usage.daily",
          date: "2026-12-03",
          model: "acme:ft-1",
          requests: 1,
          prompt_tokens: 7,
          completion_tokens: 3,
          total_tokens: 10,
        },
        {
          object: "usage.daily",
          date: "2026-12-03",
          model: "tiny-chat",
          requests: 3,
          prompt_tokens: 16,
          completion_tokens: 27,
          total_tokens: 43,
        },
      ],
    });
  });

  it("returns nothing of tenant A's usage to tenant B", async () => {
    const { store, get } = setup();
    await store.record({
      tenantId: TENANT_A,
      model: "m",
      promptTokens: 1,
      completionTokens: 1,
      at: at("2026-12-03"),
    });
    const { status, body } = await get(TENANT_B, { start: "2026-12-01", end: "2026-12-31" });
    expect(status).toBe(200);
    expect(body.data).toEqual([]);
  });

  it("takes the tenant from the authorizer only: a tenantId query parameter is a 400", async () => {
    const { get } = setup();
    const { status, body } = await get(TENANT_A, {
      start: "2026-12-01",
      end: "2026-12-31",
      tenantId: TENANT_B,
    });
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ type: "invalid_request_error", param: "tenantId" });
  });

  it("answers a bad query in the OpenAI error envelope with the request id", async () => {
    const { get } = setup();
    const missing = await get(TENANT_A, null);
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({
      error: {
        message: "Missing required parameter 'start'.",
        type: "invalid_request_error",
        param: "start",
        code: "missing_required_parameter",
        request_id: "req-1",
      },
    });
    const reversed = await get(TENANT_A, { start: "2026-12-31", end: "2026-12-01" });
    expect(reversed).toMatchObject({ status: 400, body: { error: { param: "end" } } });
  });

  it("is a 401 without an authorizer context and a 404 under an unknown path", async () => {
    const { get } = setup();
    expect((await get(undefined, { start: "2026-12-01", end: "2026-12-01" })).status).toBe(401);
    const unknown = await get(TENANT_A, null, "/v4/usage/daily");
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: "unknown_url" } } });
  });
});

describe("usage repository (DynamoDB calls)", () => {
  type Command = { constructor: { name: string }; input: Record<string, unknown> };
  function documents(pages: Record<string, unknown>[] = []) {
    const sent: Command[] = [];
    const client = {
      send: async (command: Command) => {
        sent.push(command);
        return pages.shift() ?? {};
      },
    } as unknown as DynamoDBDocumentClient;
    return { client, sent };
  }

  it("records a chat as one UpdateItem adding to the day's counters", async () => {
    const { client, sent } = documents();
    await new UsageRepository(client, "ft-usage").record({
      tenantId: TENANT_A,
      model: "tiny-chat",
      promptTokens: 12,
      completionTokens: 30,
      at: at("2026-12-03", 23),
    });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.constructor.name).toBe("UpdateCommand");
    expect(sent[0]!.input).toMatchObject({
      TableName: "ft-usage",
      Key: { tenantId: TENANT_A, usageKey: "2026-12-03#tiny-chat" },
      UpdateExpression: expect.stringMatching(
        /^ADD #requests :one, #prompt :prompt, #completion :completion SET /,
      ),
      ExpressionAttributeValues: {
        ":one": 1,
        ":prompt": 12,
        ":completion": 30,
        ":date": "2026-12-03",
        ":model": "tiny-chat",
      },
    });
  });

  it("reads a range with one key-condition query per page, following LastEvaluatedKey", async () => {
    const item = (date: string) => ({
      tenantId: TENANT_A,
      usageKey: `${date}#m`,
      date,
      model: "m",
      requests: 1,
      promptTokens: 2,
      completionTokens: 3,
    });
    const { client, sent } = documents([
      { Items: [item("2026-12-01")], LastEvaluatedKey: { tenantId: TENANT_A, usageKey: "2026-12-01#m" } },
      { Items: [item("2026-12-02")] },
    ]);
    const days = await new UsageRepository(client, "ft-usage").daily(TENANT_A, "2026-12-01", "2026-12-31");
    expect(days.map((d) => d.date)).toEqual(["2026-12-01", "2026-12-02"]);
    expect(sent).toHaveLength(2);
    expect(sent[0]!.input).toMatchObject({
      KeyConditionExpression: "tenantId = :t AND usageKey BETWEEN :from AND :to",
      ExpressionAttributeValues: { ":t": TENANT_A, ":from": "2026-12-01#", ":to": "2026-12-31$" },
    });
    expect(sent[0]!.input.ExclusiveStartKey).toBeUndefined();
    expect(sent[1]!.input.ExclusiveStartKey).toEqual({ tenantId: TENANT_A, usageKey: "2026-12-01#m" });
  });
});
