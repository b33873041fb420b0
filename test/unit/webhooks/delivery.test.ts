import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { deliver, fanOut } from "../../../lambdas/core/webhooks/delivery.ts";
import type { EndpointRecord } from "../../../lambdas/core/webhooks/endpoint.ts";
import type { WebhookEvent } from "../../../lambdas/core/webhooks/events.ts";
import type { DeliveryMessage } from "../../../lambdas/core/webhooks/ports.ts";
import { DEFAULT_RETRY_SCHEDULE } from "../../../lambdas/core/webhooks/retry.ts";
import { newWebhookSecret } from "../../../lambdas/core/webhooks/signing.ts";
import { FakeEndpoints, FakeLog, FakeQueue, ScriptedSender } from "./fakes.ts";

const NOW = Math.floor(Date.now() / 1000);
const event: WebhookEvent = {
  object: "event",
  id: "evt_0123456789abcdef01234567",
  type: "fine_tuning.job.succeeded",
  created_at: NOW - 5,
  data: { id: "ftjob-1" },
};
const endpoint = (over: Partial<EndpointRecord> = {}): EndpointRecord => ({
  tenantId: "tn_a",
  endpointId: "we_1",
  url: "https://hooks.example.com/in",
  events: ["fine_tuning.job.succeeded"],
  secret: newWebhookSecret(),
  createdAt: NOW - 100,
  ...over,
});
const message = (over: Partial<DeliveryMessage> = {}): DeliveryMessage => ({
  tenantId: "tn_a",
  endpointId: "we_1",
  event,
  attempt: 1,
  ...over,
});

async function setup(script: ConstructorParameters<typeof ScriptedSender>[0], now = NOW) {
  const endpoints = new FakeEndpoints();
  const record = endpoint();
  await endpoints.put(record);
  const log = new FakeLog();
  const queue = new FakeQueue();
  const sender = new ScriptedSender(script);
  const deps = { endpoints, log, queue, sender, schedule: DEFAULT_RETRY_SCHEDULE, now: () => now };
  return { record, endpoints, log, queue, sender, deps };
}

describe("fan-out", () => {
  it("queues one first attempt per endpoint of the tenant subscribed to the type", async () => {
    const endpoints = new FakeEndpoints();
    await endpoints.put(endpoint({ endpointId: "we_1" }));
    await endpoints.put(endpoint({ endpointId: "we_2", events: ["file.processed"] }));
    await endpoints.put(
      endpoint({ endpointId: "we_3", events: ["file.error", "fine_tuning.job.succeeded"] }),
    );
    await endpoints.put(endpoint({ tenantId: "tn_b", endpointId: "we_4" }));
    const queue = new FakeQueue();
    expect(await fanOut({ tenantId: "tn_a", event }, { endpoints, queue })).toBe(2);
    expect(queue.sent.map((s) => [s.message.endpointId, s.message.attempt, s.delaySeconds])).toEqual([
      ["we_1", 1, 0],
      ["we_3", 1, 0],
    ]);
    expect(queue.sent.every((s) => s.message.tenantId === "tn_a" && s.message.event === event)).toBe(true);
  });
});

describe("delivery", () => {
  it("POSTs the event signed for the endpoint's secret and records it delivered", async () => {
    const { record, log, queue, sender, deps } = await setup([{ statusCode: 204 }]);
    expect(await deliver(message(), deps)).toEqual({ outcome: "delivered", statusCode: 204 });
    const [call] = sender.calls;
    expect(call!.url).toBe(record.url);
    const unwrapped = await new OpenAI({ apiKey: "x", webhookSecret: record.secret }).webhooks.unwrap(
      call!.body,
      {
        ...call!.headers,
      },
    );
    expect(unwrapped).toEqual(event);
    expect(call!.headers["webhook-id"]).toBe(event.id);
    expect(log.attempts).toMatchObject([
      { status: "delivered", statusCode: 204, error: null, attemptedAt: NOW },
    ]);
    expect(queue.sent).toEqual([]);
  });

  it("queues the next attempt after the schedule's delay on a 500 or a network error", async () => {
    const { log, queue, deps } = await setup([{ statusCode: 500 }]);
    expect(await deliver(message(), deps)).toMatchObject({ outcome: "retry", delaySeconds: 10 });
    expect(queue.sent).toEqual([
      { message: { ...message(), attempt: 2, firstAttemptAt: NOW }, delaySeconds: 10 },
    ]);
    expect(log.attempts[0]).toMatchObject({
      status: "pending",
      statusCode: 500,
      error: "HTTP 500",
      nextAttemptAt: NOW + 10,
    });

    const failing = await setup([{ error: "connect ECONNREFUSED" }]);
    await deliver(message({ attempt: 3, firstAttemptAt: NOW - 40 }), failing.deps);
    expect(failing.queue.sent[0]).toMatchObject({
      message: { attempt: 4, firstAttemptAt: NOW - 40 },
      delaySeconds: 90,
    });
    expect(failing.log.attempts[0]).toMatchObject({ statusCode: null, error: "connect ECONNREFUSED" });
  });

  it("does not count a redirect as delivered", async () => {
    const { deps } = await setup([{ statusCode: 302 }]);
    expect(await deliver(message(), deps)).toMatchObject({ outcome: "retry" });
  });

  it("waits longer than 15 minutes in hops: notBefore, and an early message is sent on again", async () => {
    const { queue, deps } = await setup([{ statusCode: 503 }]);
    await deliver(message({ attempt: 7, firstAttemptAt: NOW - 3000 }), deps);
    const [next] = queue.sent;
    expect(next).toMatchObject({ delaySeconds: 900, message: { attempt: 8, notBefore: NOW + 7290 } });

    const early = await setup([{ statusCode: 200 }]);
    expect(await deliver(next!.message, early.deps)).toEqual({ outcome: "waiting", delaySeconds: 900 });
    expect(early.sender.calls).toEqual([]);
    expect(early.queue.sent[0]!.message).toEqual(next!.message);
  });

  it("hands a delivery to the dead-letter queue when the 24 h window is spent", async () => {
    const { log, queue, deps } = await setup([{ statusCode: 500 }]);
    const last = message({ attempt: 13, firstAttemptAt: NOW - 82_930 });
    expect(await deliver(last, deps)).toEqual({ outcome: "dead_letter", reason: "HTTP 500" });
    expect(queue.dead).toEqual([{ message: last, reason: "HTTP 500" }]);
    expect(queue.sent).toEqual([]);
    expect(log.attempts[0]).toMatchObject({ status: "failed", nextAttemptAt: null });
  });

  it("drops a delivery whose endpoint was deleted since", async () => {
    const { endpoints, sender, deps } = await setup([{ statusCode: 200 }]);
    await endpoints.delete("tn_a", "we_1");
    expect(await deliver(message(), deps)).toEqual({ outcome: "endpoint_gone" });
    expect(sender.calls).toEqual([]);
  });
});
