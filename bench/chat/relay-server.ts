/**
 * The local chat path as its own process for bench/chat/run.ts: the gateway's streaming route with a
 * stub TOKEN authorizer, serveChat and the relay to UPSTREAM_URL. Prints its port on stdout.
 */
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createChatService } from "../../lambdas/chat/local.ts";
import { DEFAULT_CATALOG } from "../../lambdas/core/catalog/base-models.ts";
import { TokenBucketLimiter } from "../../lambdas/core/chat/rate-limit.ts";
import { createGateway } from "../../local/platform/gateway.ts";

const upstream = process.env.UPSTREAM_URL;
if (!upstream) throw new Error("UPSTREAM_URL is not set");

const gateway = createGateway(
  async () => ({
    principalId: "tn_bench",
    policyDocument: { Version: "2012-10-17", Statement: [] },
    context: { tenantId: "tn_bench" },
  }),
  [
    createChatService({
      catalog: DEFAULT_CATALOG,
      findModel: async (code) =>
        code === "bench-model"
          ? {
              modelCode: code,
              tenantId: "tn_bench",
              jobId: "ftjob-bench",
              baseModel: "tiny-chat",
              method: "lora",
              status: "ready",
              createdAt: 0,
              artifactUri: "s3://bench/adapter/",
            }
          : undefined,
      endpoints: new Map([["*", upstream]]),
      limiter: new TokenBucketLimiter(0),
    }),
  ],
);
gateway.listen(0, "127.0.0.1");
await once(gateway, "listening");
console.log((gateway.address() as AddressInfo).port);
