import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { eventBody, testEvent } from "../../../lambdas/core/webhooks/events.ts";
import { newWebhookSecret, SECRET_BYTES, signWebhook } from "../../../lambdas/core/webhooks/signing.ts";

const now = () => Math.floor(Date.now() / 1000);
const client = (secret: string) => new OpenAI({ apiKey: "x", webhookSecret: secret });

describe("webhook signing (Standard Webhooks, as the openai SDK verifies it)", () => {
  it("makes whsec_ secrets of 24 random bytes, different each time", () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(secret.slice("whsec_".length), "base64")).toHaveLength(SECRET_BYTES);
    expect(newWebhookSecret()).not.toBe(secret);
  });

  it("signs so that the openai SDK's webhooks.unwrap verifies the raw body and returns the event", async () => {
    const secret = newWebhookSecret();
    const event = testEvent("we_1", "nonce", now());
    const body = eventBody(event);
    const headers = signWebhook({ id: event.id, timestamp: now(), body, secret });
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    await expect(client(secret).webhooks.unwrap(body, { ...headers })).resolves.toEqual(event);
  });

  it("does not verify with another secret, another body, another id or an old timestamp", async () => {
    const secret = newWebhookSecret();
    const event = testEvent("we_1", "nonce", now());
    const body = eventBody(event);
    const headers = { ...signWebhook({ id: event.id, timestamp: now(), body, secret }) };
    await expect(client(newWebhookSecret()).webhooks.unwrap(body, headers)).rejects.toThrow(/signature/);
    await expect(client(secret).webhooks.unwrap(body.replace("we_1", "we_2"), headers)).rejects.toThrow(
      /signature/,
    );
    await expect(
      client(secret).webhooks.unwrap(body, { ...headers, "webhook-id": "evt_other" }),
    ).rejects.toThrow(/signature/);
    const old = signWebhook({ id: event.id, timestamp: now() - 600, body, secret });
    await expect(client(secret).webhooks.unwrap(body, { ...old })).rejects.toThrow(/too old/);
  });

  it("signs a retry anew with its own timestamp, same id and body", () => {
    const secret = newWebhookSecret();
    const first = signWebhook({ id: "evt_1", timestamp: 1_000, body: "{}", secret });
    const retry = signWebhook({ id: "evt_1", timestamp: 1_010, body: "{}", secret });
    expect(retry["webhook-id"]).toBe(first["webhook-id"]);
    expect(retry["webhook-signature"]).not.toBe(first["webhook-signature"]);
    expect(retry["webhook-timestamp"]).toBe("1010");
  });
});
