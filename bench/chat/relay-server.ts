/**
 * The local chat path as its own process for bench/chat/run.ts: the gateway's streaming route, the TOKEN
 * authorizer on the real API-key check (`authenticate`, over an in-memory key table: a SHA-256 of the
 * key and an async lookup, as the api-keys table is read), serveChat with the rate limit on, an async
 * in-memory model record lookup and an in-memory usage recorder, and the relay to UPSTREAM_URL. Prints its port on
 * stdout, then one `usage {…}` line per recorded chat (after the answer, never in its path). The API key
 * comes in BENCH_API_KEY.
 */
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from "aws-lambda";
import { createChatService } from "../../lambdas/chat/local.ts";
import { DEFAULT_CATALOG } from "../../lambdas/core/catalog/base-models.ts";
import { TokenBucketLimiter } from "../../lambdas/core/chat/rate-limit.ts";
import type { ModelRecord } from "../../lambdas/core/jobs/wire.ts";
import { hashApiKey } from "../../lambdas/core/tenants/api-keys.ts";
import { authenticate, type KeyLookup } from "../../lambdas/core/tenants/authorize.ts";
import type { ChatUsage, UsageRecorder } from "../../lambdas/core/usage/usage.ts";
import { createGateway } from "../../local/platform/gateway.ts";

const upstream = process.env.UPSTREAM_URL;
const apiKey = process.env.BENCH_API_KEY;
if (!upstream || !apiKey) throw new Error("UPSTREAM_URL and BENCH_API_KEY must be set");

const TENANT = "tn_bench";
const keyTable = new Map([[hashApiKey(apiKey), { tenantId: TENANT, keyId: "key_bench" }]]);
const keys: KeyLookup = { findByHash: async (keyHash) => keyTable.get(keyHash) };

/** As lambdas/authorizer/index.ts answers, over the in-memory keys. */
async function authorizer(event: APIGatewayTokenAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  const { tenantId, keyId } = await authenticate(event.authorizationToken, keys);
  const [arnPrefix, stage] = event.methodArn.split("/");
  return {
    principalId: tenantId,
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: "Allow", Resource: `${arnPrefix}/${stage}/*/*` }],
    },
    context: { tenantId, keyId },
  };
}

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

const gateway = createGateway(authorizer, [
  createChatService({
    catalog: DEFAULT_CATALOG,
    findModel: async (code) => models.get(code),
    endpoints: new Map([["*", upstream]]),
    // On, as deployed (with room for the benchmark's requests).
    limiter: new TokenBucketLimiter(100_000),
    usage,
  }),
]);
gateway.listen(0, "127.0.0.1");
await once(gateway, "listening");
console.log((gateway.address() as AddressInfo).port);
