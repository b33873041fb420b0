import { afterEach, describe, expect, it } from "vitest";
import { apiError, fakeApi, json, run } from "../cli/fake-api.ts";

const ENDPOINT = {
  object: "webhook_endpoint",
  id: "we_000000000000000000000001",
  url: "https://hooks.example.com/in",
  events: ["file.processed", "fine_tuning.job.succeeded"],
  created_at: 1_700_000_000,
};

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function start() {
  const api = await fakeApi((request, res) => {
    const route = `${request.method} ${request.path}`;
    if (route === "POST /v4/webhooks") {
      const body = JSON.parse(request.body.toString("utf8"));
      if (body.events.includes("file.deleted")) {
        return apiError(res, 400, "Invalid events.0: invalid option.", "invalid_request");
      }
      return json(res, 200, { ...ENDPOINT, url: body.url, events: body.events, secret: "whsec_c2VjcmV0" });
    }
    if (route === "GET /v4/webhooks")
      return json(res, 200, { object: "list", data: [ENDPOINT], has_more: false });
    if (route === `GET /v4/webhooks/${ENDPOINT.id}`) {
      return json(res, 200, {
        ...ENDPOINT,
        recent_deliveries: [
          {
            event_id: "evt_1",
            type: "file.processed",
            status: "delivered",
            attempts: 3,
            last_status_code: 200,
            last_error: null,
          },
        ],
      });
    }
    if (route === `DELETE /v4/webhooks/${ENDPOINT.id}`) {
      return json(res, 200, { object: "webhook_endpoint.deleted", id: ENDPOINT.id, deleted: true });
    }
    if (route === `POST /v4/webhooks/${ENDPOINT.id}/test`) {
      return json(res, 202, {
        object: "webhook_endpoint.test",
        id: ENDPOINT.id,
        event_id: "evt_t",
        status: "queued",
      });
    }
    return apiError(res, 404, "No such webhook endpoint.", "not_found");
  });
  close = api.close;
  return api;
}

describe("ftctl webhooks", () => {
  it("creates an endpoint with the listed events and prints its secret once", async () => {
    const api = await start();
    const result = await run(api.base, [
      "webhooks",
      "create",
      "https://hooks.example.com/in",
      "--events",
      "file.processed,fine_tuning.job.succeeded",
    ]);
    expect(result.code).toBe(0);
    expect(JSON.parse(api.seen[0]!.body.toString("utf8"))).toEqual({
      url: "https://hooks.example.com/in",
      events: ["file.processed", "fine_tuning.job.succeeded"],
    });
    expect(result.out).toContain("whsec_c2VjcmV0");
  });

  it("lists, shows recent deliveries, tests and deletes", async () => {
    const api = await start();
    expect((await run(api.base, ["webhooks", "list"])).out).toContain(ENDPOINT.id);
    expect((await run(api.base, ["webhooks", "get", ENDPOINT.id])).out).toMatch(
      /evt_1\s+file\.processed\s+delivered\s+attempts 3\s+200/,
    );
    expect((await run(api.base, ["webhooks", "test", ENDPOINT.id])).out).toContain("evt_t");
    expect((await run(api.base, ["webhooks", "delete", ENDPOINT.id])).out).toBe(`Deleted ${ENDPOINT.id}.`);
  });

  it("shows the API's error and a usage error without --events", async () => {
    const api = await start();
    const refused = await run(api.base, [
      "webhooks",
      "create",
      "https://x.example",
      "--events",
      "file.deleted",
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain("events.0");
    const usage = await run(api.base, ["webhooks", "create", "https://x.example"]);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain("--events");
  });
});
