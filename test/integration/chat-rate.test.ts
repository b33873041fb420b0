import { DescribeTimeToLiveCommand } from "@aws-sdk/client-dynamodb";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONFIG_ENV, TABLE_ENV } from "../../infra/resources/definitions.ts";
import { tokenRateFromEnv } from "../../lambdas/aws/chat-rate-repository.ts";
import { tokenWindowOf } from "../../lambdas/core/chat/token-rate.ts";
import type { BootstrappedResources } from "../../local/bootstrap.ts";
import { chatDeps, FakeUpstream, startGateway } from "../unit/chat/harness.ts";
import { freshResources, localClients } from "./aws.ts";

/**
 * The chat's token rate is one per tenant across function instances: two chat services (two "Lambda
 * instances", each with its own dependencies and its own request bucket) over one chat-rate table in
 * LocalStack see each other's tokens.
 */
describe("the chat's shared token rate", () => {
  const upstream = new FakeUpstream();
  let resources: BootstrappedResources;
  let instances: Awaited<ReturnType<typeof startGateway>>[] = [];
  const messages = [{ role: "user" as const, content: "Say hello" }];

  beforeAll(async () => {
    resources = await freshResources("chatrate");
    const url = await upstream.start();
    const { documents } = localClients();
    const env = {
      [TABLE_ENV["chat-rate"]]: resources.tables["chat-rate"],
      [CONFIG_ENV.chatTokensPerMinute]: "1",
    };
    // Each instance builds its dependencies from the environment, as the chat function does at cold start.
    instances = await Promise.all(
      [1, 2].map(() => startGateway(chatDeps(url, { tokenRate: tokenRateFromEnv(documents, env) }))),
    );
  });

  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop()));
    await upstream.stop();
  });

  const client = (instance: number, key = "key-a") =>
    new OpenAI({ baseURL: instances[instance]!.baseUrl, apiKey: key, maxRetries: 0 });

  it("refuses on instance two the tenant whose tokens instance one counted, with retry-after, and not another tenant", async () => {
    const completion = await client(0).chat.completions.create({ model: "tiny-chat", messages });
    const tokens = completion.usage!.prompt_tokens + completion.usage!.completion_tokens;

    const error = (await client(1)
      .chat.completions.create({ model: "tiny-chat", messages })
      .catch((e) => e)) as APIError;
    expect(error).toBeInstanceOf(APIError);
    expect(error.status).toBe(429);
    expect(error.code).toBe("rate_limit_exceeded");
    expect(error.message).toMatch(/Rate limit of 1 chat tokens per minute/);
    const retryAfter = Number(error.headers?.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    await expect(
      client(1, "key-b").chat.completions.create({ model: "tiny-chat", messages }),
    ).resolves.toBeTruthy();

    // The window's item: the tenant's tokens of this minute, with an expiry for the table's TTL.
    const { documents, dynamo } = localClients();
    const window = tokenWindowOf(Date.now());
    const { Item } = await documents.send(
      new GetCommand({ TableName: resources.tables["chat-rate"], Key: { windowKey: `tn_a#${window}` } }),
    );
    // The chat and the check may straddle a minute's edge: then the item is the previous window's.
    if (Item) {
      expect(Item.tokens).toBe(tokens);
      expect(Item.expiresAt).toBeGreaterThan(Date.now() / 1000);
    }
    const ttl = await dynamo.send(
      new DescribeTimeToLiveCommand({ TableName: resources.tables["chat-rate"] }),
    );
    expect(ttl.TimeToLiveDescription?.AttributeName).toBe("expiresAt");
  });
});
