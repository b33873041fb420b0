import type { DeliveryRecord, EndpointRecord } from "../../../lambdas/core/webhooks/endpoint.ts";
import type {
  AttemptRecord,
  DeliveryLog,
  DeliveryMessage,
  DeliveryQueue,
  EndpointStore,
  SendResult,
  WebhookSender,
} from "../../../lambdas/core/webhooks/ports.ts";
import type { SignatureHeaders } from "../../../lambdas/core/webhooks/signing.ts";

/** In-memory endpoints, keyed by tenant and id like the table. */
export class FakeEndpoints implements EndpointStore {
  readonly items = new Map<string, EndpointRecord>();
  async put(record: EndpointRecord) {
    this.items.set(`${record.tenantId}#${record.endpointId}`, record);
  }
  async get(tenantId: string, endpointId: string) {
    return this.items.get(`${tenantId}#${endpointId}`);
  }
  async list(tenantId: string) {
    return [...this.items.values()].filter((e) => e.tenantId === tenantId);
  }
  async delete(tenantId: string, endpointId: string) {
    return this.items.delete(`${tenantId}#${endpointId}`);
  }
}

export class FakeLog implements DeliveryLog {
  readonly attempts: AttemptRecord[] = [];
  async recordAttempt(attempt: AttemptRecord) {
    this.attempts.push(attempt);
  }
  async recent(tenantId: string, endpointId: string): Promise<DeliveryRecord[]> {
    return this.attempts
      .filter((a) => a.tenantId === tenantId && a.endpointId === endpointId)
      .map((a) => ({
        endpointKey: `${tenantId}#${endpointId}`,
        deliveryKey: a.event.id,
        eventId: a.event.id,
        type: a.event.type,
        attempts: 1,
        status: a.status,
        lastStatusCode: a.statusCode,
        lastError: a.error,
        lastAttemptAt: a.attemptedAt,
        deliveredAt: a.status === "delivered" ? a.attemptedAt : null,
        nextAttemptAt: a.nextAttemptAt,
        expiresAt: 0,
      }));
  }
}

export class FakeQueue implements DeliveryQueue {
  readonly sent: { message: DeliveryMessage; delaySeconds: number }[] = [];
  readonly dead: { message: DeliveryMessage; reason: string }[] = [];
  async send(message: DeliveryMessage, delaySeconds: number) {
    this.sent.push({ message, delaySeconds });
  }
  async deadLetter(message: DeliveryMessage, reason: string) {
    this.dead.push({ message, reason });
  }
}

/** Answers each POST with the next result of its script (the last one repeats). */
export class ScriptedSender implements WebhookSender {
  readonly calls: { url: string; headers: SignatureHeaders; body: string }[] = [];
  constructor(private readonly script: SendResult[]) {}
  async send(url: string, headers: SignatureHeaders, body: string) {
    this.calls.push({ url, headers, body });
    return this.script[Math.min(this.calls.length - 1, this.script.length - 1)]!;
  }
}
