import { randomBytes } from "node:crypto";
import { z } from "zod";
import { toInvalidRequest } from "../http/request-errors.ts";
import {
  type DeliveredEventType,
  WEBHOOK_EVENT_TYPES,
  type WebhookEvent,
  type WebhookEventType,
} from "./events.ts";
import { MAX_URL_LENGTH } from "./url-policy.ts";

/** Endpoints one tenant may hold at once. */
export const MAX_ENDPOINTS_PER_TENANT = 10;
/** Deliveries `GET /v4/webhooks/{id}` shows, newest first. */
export const RECENT_DELIVERIES = 20;
/** Days a delivery's record is kept (the deliveries table's TTL). */
export const DELIVERY_RECORD_DAYS = 7;

/** The stored record in the `webhooks` table (tenantId + endpointId). The secret is kept to sign with. */
export interface EndpointRecord {
  readonly tenantId: string;
  readonly endpointId: string;
  readonly url: string;
  readonly events: readonly WebhookEventType[];
  readonly secret: string;
  /** Unix seconds. */
  readonly createdAt: number;
}

export type DeliveryStatus = "pending" | "delivered" | "failed";

/** One event's delivery to one endpoint, in the `webhook-deliveries` table; updated by each attempt. */
export interface DeliveryRecord {
  /** `{tenantId}#{endpointId}`. */
  readonly endpointKey: string;
  /** `{event created_at, 10 digits}#{eventId}`: newest first in a reverse query. */
  readonly deliveryKey: string;
  readonly eventId: string;
  readonly type: DeliveredEventType;
  readonly attempts: number;
  readonly status: DeliveryStatus;
  readonly lastStatusCode: number | null;
  readonly lastError: string | null;
  /** Unix seconds of the last attempt. */
  readonly lastAttemptAt: number;
  /** Unix seconds of the successful attempt. */
  readonly deliveredAt: number | null;
  /** Unix seconds of the scheduled next attempt while pending. */
  readonly nextAttemptAt: number | null;
  /** TTL (unix seconds). */
  readonly expiresAt: number;
}

export const endpointKey = (tenantId: string, endpointId: string): string => `${tenantId}#${endpointId}`;
export const deliveryKey = (event: Pick<WebhookEvent, "id" | "created_at">): string =>
  `${String(event.created_at).padStart(10, "0")}#${event.id}`;

/** `we_` + 24 hex characters (OpenAI's webhook endpoints are `we_…` in its dashboard). */
export function newEndpointId(random: (bytes: number) => Buffer = randomBytes): string {
  return `we_${random(12).toString("hex")}`;
}

const createRequest = z
  .object({
    url: z.string().min(1).max(MAX_URL_LENGTH),
    events: z
      .array(z.enum(WEBHOOK_EVENT_TYPES))
      .min(1, { message: `must list at least one of ${WEBHOOK_EVENT_TYPES.join(", ")}` })
      .max(WEBHOOK_EVENT_TYPES.length),
  })
  .strict();

export interface CreateEndpointRequest {
  readonly url: string;
  readonly events: readonly WebhookEventType[];
}

/** `POST /v4/webhooks`: `{url, events}`; events are a non-empty set of {@link WEBHOOK_EVENT_TYPES}. */
export function parseCreateEndpoint(body: Record<string, unknown>): CreateEndpointRequest {
  const parsed = createRequest.safeParse(body, { reportInput: true });
  if (!parsed.success) throw toInvalidRequest(parsed.error);
  return { url: parsed.data.url, events: [...new Set(parsed.data.events)] };
}

/** The wire shape of an endpoint; the secret only in the create answer. */
export function toEndpointWire(record: EndpointRecord, options: { withSecret?: boolean } = {}) {
  return {
    object: "webhook_endpoint" as const,
    id: record.endpointId,
    url: record.url,
    events: record.events,
    created_at: record.createdAt,
    ...(options.withSecret ? { secret: record.secret } : {}),
  };
}

export function toDeliveryWire(record: DeliveryRecord) {
  return {
    object: "webhook_delivery" as const,
    event_id: record.eventId,
    type: record.type,
    status: record.status,
    attempts: record.attempts,
    last_status_code: record.lastStatusCode,
    last_error: record.lastError,
    last_attempt_at: record.lastAttemptAt,
    delivered_at: record.deliveredAt,
    next_attempt_at: record.nextAttemptAt,
  };
}
