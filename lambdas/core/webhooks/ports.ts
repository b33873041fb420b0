import type { DeliveryRecord, DeliveryStatus, EndpointRecord } from "./endpoint.ts";
import type { WebhookEvent } from "./events.ts";
import type { SignatureHeaders } from "./signing.ts";

/** A tenant's endpoints (the `webhooks` table). */
export interface EndpointStore {
  put(record: EndpointRecord): Promise<void>;
  get(tenantId: string, endpointId: string): Promise<EndpointRecord | undefined>;
  /** All of the tenant's endpoints (at most MAX_ENDPOINTS_PER_TENANT), oldest first. */
  list(tenantId: string): Promise<EndpointRecord[]>;
  /** False when there was none. */
  delete(tenantId: string, endpointId: string): Promise<boolean>;
}

/** One attempt's outcome, as the deliveries log records it. */
export interface AttemptRecord {
  readonly tenantId: string;
  readonly endpointId: string;
  readonly event: WebhookEvent;
  readonly status: DeliveryStatus;
  readonly statusCode: number | null;
  readonly error: string | null;
  readonly attemptedAt: number;
  readonly nextAttemptAt: number | null;
}

/** Each endpoint's recent deliveries (the `webhook-deliveries` table, with a TTL). */
export interface DeliveryLog {
  /** Adds one to the delivery's attempts and records this one's outcome. */
  recordAttempt(attempt: AttemptRecord): Promise<void>;
  /** Newest first. */
  recent(tenantId: string, endpointId: string, limit: number): Promise<DeliveryRecord[]>;
}

/** A message of the `webhook-deliveries` queue: one event for one endpoint. */
export interface DeliveryMessage {
  readonly tenantId: string;
  readonly endpointId: string;
  readonly event: WebhookEvent;
  /** The attempt this message makes, from 1. */
  readonly attempt: number;
  /** Unix seconds of the first attempt; absent before it. */
  readonly firstAttemptAt?: number;
  /** Unix seconds before which the attempt must not be made (a wait longer than SQS's 15-minute delay). */
  readonly notBefore?: number;
}

/** The `webhook-deliveries` queue and its dead letter. */
export interface DeliveryQueue {
  send(message: DeliveryMessage, delaySeconds: number): Promise<void>;
  /** A delivery whose retries are spent. */
  deadLetter(message: DeliveryMessage, reason: string): Promise<void>;
}

/** What one POST to a receiver came to: its status code, or why there was none. */
export type SendResult = { readonly statusCode: number } | { readonly error: string };

/**
 * Sends one signed POST. The adapter checks, when it connects, that the address it connects to is
 * allowed (url-policy.ts), so a host that resolved to a public address at registration and to a
 * private one now is refused (DNS rebinding).
 */
export interface WebhookSender {
  send(url: string, headers: SignatureHeaders, body: string): Promise<SendResult>;
}
