import { eventBody, type TenantEvent } from "./events.ts";
import type { DeliveryLog, DeliveryMessage, DeliveryQueue, EndpointStore, WebhookSender } from "./ports.ts";
import { MAX_QUEUE_DELAY_SECONDS, nextRetryDelay, type RetrySchedule } from "./retry.ts";
import { signWebhook } from "./signing.ts";

export interface FanOutDependencies {
  readonly endpoints: Pick<EndpointStore, "list">;
  readonly queue: Pick<DeliveryQueue, "send">;
}

/**
 * One delivery message per endpoint of the tenant that subscribed to the event's type. Returns how
 * many were queued. A redelivered stream record queues the same messages again (same event id): the
 * receiver sees the same `webhook-id` and dedupes.
 */
export async function fanOut(change: TenantEvent, deps: FanOutDependencies): Promise<number> {
  const endpoints = await deps.endpoints.list(change.tenantId);
  const targets = endpoints.filter((endpoint) =>
    (endpoint.events as readonly string[]).includes(change.event.type),
  );
  for (const endpoint of targets) {
    await deps.queue.send(
      { tenantId: change.tenantId, endpointId: endpoint.endpointId, event: change.event, attempt: 1 },
      0,
    );
  }
  return targets.length;
}

export interface DeliveryDependencies {
  readonly endpoints: Pick<EndpointStore, "get">;
  readonly log: Pick<DeliveryLog, "recordAttempt">;
  readonly queue: DeliveryQueue;
  readonly sender: WebhookSender;
  readonly schedule: RetrySchedule;
  /** Unix seconds. */
  readonly now: () => number;
}

export type DeliveryOutcome =
  | { readonly outcome: "delivered"; readonly statusCode: number }
  | { readonly outcome: "retry"; readonly delaySeconds: number; readonly reason: string }
  | { readonly outcome: "dead_letter"; readonly reason: string }
  /** The wait is longer than one queue delay: sent again, not attempted. */
  | { readonly outcome: "waiting"; readonly delaySeconds: number }
  /** The endpoint was deleted since: nothing to deliver to. */
  | { readonly outcome: "endpoint_gone" };

/**
 * One attempt of one delivery message: signs the event anew (the timestamp is the attempt's, the id
 * and body are the event's), POSTs it, records the attempt, and on anything but a 2xx queues the next
 * attempt after the schedule's delay, or hands the message to the dead-letter queue when the schedule
 * is spent. Each step before the next attempt is queued may throw: the queue then redelivers this
 * message, which makes the attempt again (at least once).
 */
export async function deliver(
  message: DeliveryMessage,
  deps: DeliveryDependencies,
): Promise<DeliveryOutcome> {
  const now = deps.now();
  if (message.notBefore !== undefined && message.notBefore > now) {
    const delaySeconds = Math.min(message.notBefore - now, MAX_QUEUE_DELAY_SECONDS);
    await deps.queue.send(message, delaySeconds);
    return { outcome: "waiting", delaySeconds };
  }
  const endpoint = await deps.endpoints.get(message.tenantId, message.endpointId);
  if (!endpoint) return { outcome: "endpoint_gone" };

  const headers = signWebhook({
    id: message.event.id,
    timestamp: now,
    body: eventBody(message.event),
    secret: endpoint.secret,
  });
  const result = await deps.sender.send(endpoint.url, headers, eventBody(message.event));
  const ok = "statusCode" in result && result.statusCode >= 200 && result.statusCode < 300;
  const statusCode = "statusCode" in result ? result.statusCode : null;
  const error = "error" in result ? result.error : ok ? null : `HTTP ${statusCode}`;
  const base = {
    tenantId: message.tenantId,
    endpointId: message.endpointId,
    event: message.event,
    statusCode,
    error,
    attemptedAt: now,
  };
  if (ok) {
    await deps.log.recordAttempt({ ...base, status: "delivered", nextAttemptAt: null });
    return { outcome: "delivered", statusCode: statusCode! };
  }
  const firstAttemptAt = message.firstAttemptAt ?? now;
  const delay = nextRetryDelay(message.attempt, now - firstAttemptAt, deps.schedule);
  const reason = error ?? "failed";
  if (delay === undefined) {
    await deps.log.recordAttempt({ ...base, status: "failed", nextAttemptAt: null });
    await deps.queue.deadLetter({ ...message, firstAttemptAt }, reason);
    return { outcome: "dead_letter", reason };
  }
  await deps.log.recordAttempt({ ...base, status: "pending", nextAttemptAt: now + delay });
  const next: DeliveryMessage = {
    tenantId: message.tenantId,
    endpointId: message.endpointId,
    event: message.event,
    attempt: message.attempt + 1,
    firstAttemptAt,
    ...(delay > MAX_QUEUE_DELAY_SECONDS ? { notBefore: now + delay } : {}),
  };
  await deps.queue.send(next, Math.min(delay, MAX_QUEUE_DELAY_SECONDS));
  return { outcome: "retry", delaySeconds: delay, reason };
}
