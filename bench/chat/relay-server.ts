/**
 * The local chat path as its own process for bench/chat/run.ts: the gateway's streaming route, the TOKEN
 * authorizer's own check (`authorize`: the key's SHA-256 looked up in an in-memory key table, the
 * tenant's usage key in another), serveChat with both rate limits on (requests per instance, tokens in
 * shared windows kept in memory), an async in-memory model record lookup and an in-memory usage
 * recorder, and the relay to UPSTREAM_URL. The API key comes in BENCH_API_KEY. Prints its port on
 * stdout, then one `usage {…}` line per recorded chat (written after the answer, never in its path).
 */
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createChatService } from "../../lambdas/chat/local.ts";
import { DEFAULT_CATALOG } from "../../lambdas/core/catalog/base-models.ts";
import { TokenBucketLimiter } from "../../lambdas/core/chat/rate-limit.ts";
import { TokenRateLimiter, type TokenWindowStore } from "../../lambdas/core/chat/token-rate.ts";
import type { ModelRecord } from "../../lambdas/core/jobs/wire.ts";
import { hashApiKey } from "../../lambdas/core/tenants/api-keys.ts";
import { authorize, type KeyLookup, type UsageKeyLookup } from "../../lambdas/core/tenants/authorize.ts";
import type { ChatUsage, UsageRecorder } from "../../lambdas/core/usage/usage.ts";
import { createGateway } from "../../local/platform/gateway.ts";

const upstream = process.env.UPSTREAM_URL;
const apiKey = process.env.BENCH_API_KEY;
if (!upstream || !apiKey) throw new Error("UPSTREAM_URL and BENCH_API_KEY must be set");

const TENANT = "tn_bench";
const keyTable = new Map([[hashApiKey(apiKey), { tenantId: TENANT, keyId: "key_bench" }]]);
const keys: KeyLookup = { findByHash: async (keyHash) => keyTable.get(keyHash) };
const usageKeys: UsageKeyLookup = { usageKeyValue: async () => "bench-usage-key" };

/** The TOKEN authorizer as lambdas/authorizer/index.ts runs it, over the in-memory tables. */
const authorizer: Parameters<typeof createGateway>[0] = (event) =>
  authorize(event.authorizationToken, event.methodArn, keys, usageKeys);

const models = new Map<string, ModelRecord>([
  [
    "bench-model",
    {
      modelCode: "bench-model",
      tenantId: TENANT,
      jobId: "ftjob-bench",
      baseModel: "tiny-chat",
      method: "lora",
      status: "ready",
      createdAt: 0,
      artifactUri: "s3://bench/adapter/",
    },
  ],
]);

/** The daily totals of the usage table, in memory; each record is reported to the benchmark. */
const totals = new Map<string, { promptTokens: number; completionTokens: number }>();
const usage: UsageRecorder = {
  async record(chat: ChatUsage) {
    const key = `${chat.tenantId}#${new Date(chat.at).toISOString().slice(0, 10)}#${chat.model}`;
    const total = totals.get(key) ?? { promptTokens: 0, completionTokens: 0 };
    total.promptTokens += chat.promptTokens;
    total.completionTokens += chat.completionTokens;
    totals.set(key, total);
    process.stdout.write(`usage ${JSON.stringify(chat)}\n`);
  },
};

/** The shared per-minute token windows (a DynamoDB table in AWS), in memory; on, as deployed. */
const windows = new Map<string, number>();
const tokenWindows: TokenWindowStore = {
  used: async (tenantId, window) => windows.get(`${tenantId}#${window}`) ?? 0,
  add: async (tenantId, window, tokens) => {
    const key = `${tenantId}#${window}`;
    windows.set(key, (windows.get(key) ?? 0) + tokens);
  },
};

const gateway = createGateway(authorizer, [
  createChatService({
    catalog: DEFAULT_CATALOG,
    findModel: async (code) => models.get(code),
    endpoints: new Map([["*", upstream]]),
    // On, as deployed (with room for the benchmark's requests).
    limiter: new TokenBucketLimiter(100_000),
    tokenRate: new TokenRateLimiter(tokenWindows, 100_000_000),
    usage,
  }),
]);
gateway.listen(0, "127.0.0.1");
await once(gateway, "listening");
console.log((gateway.address() as AddressInfo).port);
