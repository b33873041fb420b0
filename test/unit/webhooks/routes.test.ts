import { describe, expect, it } from "vitest";
import { handleApiEvent } from "../../../lambdas/core/http/api-gateway.ts";
import { Router } from "../../../lambdas/core/http/router.ts";
import { MAX_ENDPOINTS_PER_TENANT } from "../../../lambdas/core/webhooks/endpoint.ts";
import type { Resolver, UrlPolicy } from "../../../lambdas/core/webhooks/url-policy.ts";
import { webhooksRoutes } from "../../../lambdas/webhooks-api/routes.ts";
import { apiEvent } from "../http/harness.ts";
import { FakeEndpoints, FakeLog, FakeQueue } from "./fakes.ts";

// biome-ignore lint/suspicious/noExplicitAny: wire objects, read field by field in assertions
type Json = Record<string, any>;

const A = "tn_aaaaaaaaaaaaaaaa";
const B = "tn_bbbbbbbbbbbbbbbb";
const dns: Record<string, string[]> = {
  "hooks.example.com": ["93.184.216.34"],
  "rebind.example.com": ["127.0.0.1"],
};
const resolve: Resolver = async (host) => dns[host] ?? Promise.reject(new Error("ENOTFOUND"));

/** The webhooks API over fakes, called as API Gateway calls it; AWS rules unless told otherwise. */
function webhooksApi(policy: UrlPolicy = { allowPrivate: false }) {
  const endpoints = new FakeEndpoints();
  const deliveries = new FakeLog();
  const queue = new FakeQueue();
  let ids = 0;
  const router = new Router(
    webhooksRoutes({
      endpoints,
      deliveries,
      queue,
      policy,
      resolve,
      now: () => 1_700_000_000,
      newId: () => `we_${String(++ids).padStart(24, "0")}`,
    }),
  );
  const call = async (tenant: string, method: string, path: string, body?: unknown) => {
    const response = await handleApiEvent(
      router,
      apiEvent(
        {
          method,
          path,
          headers: body === undefined ? {} : { "Content-Type": "application/json" },
          body: body === undefined ? null : JSON.stringify(body),
        },
        tenant,
      ),
      () => {},
    );
    return { status: response.statusCode, body: JSON.parse(response.body) as Json };
  };
  return { call, endpoints, deliveries, queue };
}

const hook = { url: "https://hooks.example.com/in", events: ["fine_tuning.job.succeeded", "file.error"] };

describe("webhooks API", () => {
  it("creates an endpoint and shows its whsec_ secret only in that answer", async () => {
    const { call } = webhooksApi();
    const created = await call(A, "POST", "/v4/webhooks", hook);
    expect(created.status).toBe(200);
    expect(created.body).toEqual({
      object: "webhook_endpoint",
      id: "we_000000000000000000000001",
      url: hook.url,
      events: hook.events,
      created_at: 1_700_000_000,
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{32}$/),
    });
    const listed = await call(A, "GET", "/v4/webhooks");
    expect(listed.body).toMatchObject({ object: "list", has_more: false });
    const { secret: _secret, ...shown } = created.body;
    expect(listed.body.data).toEqual([shown]);
    const got = await call(A, "GET", `/v4/webhooks/${created.body.id}`);
    expect(got.body.secret).toBeUndefined();
    expect(got.body.recent_deliveries).toEqual([]);
  });

  it("returns 404 when tenant B reads, tests or deletes tenant A's endpoint", async () => {
    const { call, endpoints } = webhooksApi();
    const { body } = await call(A, "POST", "/v4/webhooks", hook);
    for (const [method, path] of [
      ["GET", `/v4/webhooks/${body.id}`],
      ["GET", `/v4/webhooks/${body.id}/deliveries`],
      ["POST", `/v4/webhooks/${body.id}/test`],
      ["DELETE", `/v4/webhooks/${body.id}`],
    ] as const) {
      const response = await call(B, method, path);
      expect(response.status).toBe(404);
      expect(response.body.error).toMatchObject({ type: "not_found_error", param: "webhook_id" });
    }
    expect((await call(B, "GET", "/v4/webhooks")).body.data).toEqual([]);
    expect(endpoints.items.size).toBe(1);
  });

  it.each([
    [{ events: ["file.error"] }, "url", "missing_required_parameter"],
    [{ url: hook.url }, "events", "missing_required_parameter"],
    [{ url: hook.url, events: [] }, "events", "invalid_request"],
    [{ url: hook.url, events: ["file.deleted"] }, "events.0", "invalid_request"],
    [{ url: hook.url, events: ["webhook.test"] }, "events.0", "invalid_request"],
    [{ ...hook, secret: "whsec_mine" }, "secret", "unknown_parameter"],
    [{ url: "http://hooks.example.com/in", events: ["file.error"] }, "url", "insecure_url"],
    [{ url: "https://nowhere.example.com/", events: ["file.error"] }, "url", "unresolvable_host"],
  ])("refuses %j with a 400 naming %s", async (body, param, code) => {
    const response = await webhooksApi().call(A, "POST", "/v4/webhooks", body);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ type: "invalid_request_error", param, code });
  });

  it.each([
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://[::ffff:10.0.0.1]/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://rebind.example.com/hook",
  ])("refuses the private-address URL %s under the AWS rules", async (url) => {
    const { call, endpoints } = webhooksApi({ allowPrivate: false });
    const response = await call(A, "POST", "/v4/webhooks", { url, events: ["file.error"] });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ param: "url", code: "private_address" });
    expect(endpoints.items.size).toBe(0);
  });

  it("accepts http to localhost on the local platform", async () => {
    const response = await webhooksApi({ allowPrivate: true }).call(A, "POST", "/v4/webhooks", {
      url: "http://localhost:9000/hook",
      events: ["file.error"],
    });
    expect(response.status).toBe(200);
  });

  it(`answers 429 for a tenant's endpoint beyond ${MAX_ENDPOINTS_PER_TENANT}`, async () => {
    const { call } = webhooksApi();
    for (let i = 0; i < MAX_ENDPOINTS_PER_TENANT; i++) {
      expect((await call(A, "POST", "/v4/webhooks", hook)).status).toBe(200);
    }
    const over = await call(A, "POST", "/v4/webhooks", hook);
    expect(over.status).toBe(429);
    expect(over.body.error).toMatchObject({ code: "webhook_endpoint_limit" });
    expect(over.body.error.message).toContain(String(MAX_ENDPOINTS_PER_TENANT));
    expect((await call(B, "POST", "/v4/webhooks", hook)).status).toBe(200);
  });

  it("queues a webhook.test event for the endpoint, and deletes it", async () => {
    const { call, queue } = webhooksApi();
    const { body } = await call(A, "POST", "/v4/webhooks", hook);
    const test = await call(A, "POST", `/v4/webhooks/${body.id}/test`);
    expect(test.status).toBe(202);
    expect(queue.sent).toEqual([
      {
        delaySeconds: 0,
        message: {
          tenantId: A,
          endpointId: body.id,
          attempt: 1,
          event: {
            object: "event",
            id: test.body.event_id,
            type: "webhook.test",
            created_at: 1_700_000_000,
            data: { id: body.id },
          },
        },
      },
    ]);
    expect((await call(A, "DELETE", `/v4/webhooks/${body.id}`)).body).toEqual({
      object: "webhook_endpoint.deleted",
      id: body.id,
      deleted: true,
    });
    expect((await call(A, "GET", `/v4/webhooks/${body.id}`)).status).toBe(404);
  });

  it("answers 405 with Allow for a method the path does not take", async () => {
    const response = await webhooksApi().call(A, "PUT", "/v4/webhooks");
    expect(response.status).toBe(405);
  });
});
