import { createHash } from "node:crypto";

/**
 * The events a tenant's webhook endpoint may subscribe to: a fine-tuning job that ended or paused
 * (OpenAI's own `fine_tuning.job.*` names) and a file whose validation finished.
 */
export const WEBHOOK_EVENT_TYPES = [
  "fine_tuning.job.succeeded",
  "fine_tuning.job.failed",
  "fine_tuning.job.cancelled",
  "fine_tuning.job.paused",
  "file.processed",
  "file.error",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * The type of the event `POST /v4/webhooks/{id}/test` sends. Not subscribable: every endpoint gets its
 * own test event, whatever it subscribed to.
 */
export const TEST_EVENT_TYPE = "webhook.test";
export type DeliveredEventType = WebhookEventType | typeof TEST_EVENT_TYPE;

/** The body of every delivery, shaped like OpenAI's webhook events. */
export interface WebhookEvent {
  readonly object: "event";
  /** `evt_…`: also the `webhook-id` header, the same on every attempt (receivers dedupe by it). */
  readonly id: string;
  readonly type: DeliveredEventType;
  /** Unix seconds: when the change happened, not when it was delivered. */
  readonly created_at: number;
  /** The job id (`ftjob-…`), the file id (`file-…`) or, for a test event, the endpoint id. */
  readonly data: { readonly id: string };
}

/** The tables whose status changes become events. */
export type EventSource = "jobs" | "files";

/** A status change read from a table's stream: the images as plain values. */
export interface StatusChange {
  readonly source: EventSource;
  /** Absent on an INSERT. */
  readonly oldImage?: Readonly<Record<string, unknown>>;
  /** Absent on a REMOVE. */
  readonly newImage?: Readonly<Record<string, unknown>>;
  /** The stream record's sequence number: unique per change, the same when the record is redelivered. */
  readonly sequenceNumber: string;
  /** When the change was written (unix seconds), from the stream record. */
  readonly createdAt: number;
}

const EVENT_BY_STATUS: Readonly<Record<EventSource, Readonly<Record<string, WebhookEventType>>>> = {
  jobs: {
    succeeded: "fine_tuning.job.succeeded",
    failed: "fine_tuning.job.failed",
    cancelled: "fine_tuning.job.cancelled",
    paused: "fine_tuning.job.paused",
  },
  files: { processed: "file.processed", error: "file.error" },
};

const ID_ATTRIBUTE: Readonly<Record<EventSource, string>> = { jobs: "jobId", files: "fileId" };

/** A tenant's event, before it is addressed to that tenant's endpoints. */
export interface TenantEvent {
  readonly tenantId: string;
  readonly event: WebhookEvent;
}

/**
 * The webhook event a stream record stands for, if any: a job or file whose status changed into one
 * of the event statuses (an INSERT straight into one counts: nothing saw it before). A write that
 * leaves the status as it was (an event appended, statistics added) is no event, nor is a REMOVE.
 *
 * The event id is derived from the record (table, tenant, object, status, sequence number), so a
 * stream record redelivered after a failed batch yields the same `webhook-id`; a job paused twice
 * (pause, resume, pause) yields two events.
 */
export function eventFromChange(change: StatusChange): TenantEvent | undefined {
  const next = change.newImage;
  if (!next) return undefined;
  const status = next.status;
  const tenantId = next.tenantId;
  const objectId = next[ID_ATTRIBUTE[change.source]];
  if (typeof status !== "string" || typeof tenantId !== "string" || typeof objectId !== "string") {
    return undefined;
  }
  if (change.oldImage?.status === status) return undefined;
  const type = EVENT_BY_STATUS[change.source][status];
  if (!type) return undefined;
  const id = eventId([change.source, tenantId, objectId, status, change.sequenceNumber]);
  return {
    tenantId,
    event: { object: "event", id, type, created_at: change.createdAt, data: { id: objectId } },
  };
}

/** A test event for one endpoint (`POST /v4/webhooks/{id}/test`); `nonce` makes each test its own event. */
export function testEvent(endpointId: string, nonce: string, now: number): WebhookEvent {
  return {
    object: "event",
    id: eventId(["test", endpointId, nonce]),
    type: TEST_EVENT_TYPE,
    created_at: now,
    data: { id: endpointId },
  };
}

/** `evt_` + 24 hex characters of a SHA-256 over the parts: deterministic, and unguessable across tenants. */
export function eventId(parts: readonly string[]): string {
  return `evt_${createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 24)}`;
}

/**
 * The exact bytes sent (and signed): the same on every attempt, so a receiver that verifies the
 * signature over the raw body always sees the body that was signed.
 */
export function eventBody(event: WebhookEvent): string {
  return JSON.stringify(event);
}
