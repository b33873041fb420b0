import { randomBytes } from "node:crypto";
import { isId, newId } from "../ids.ts";

/**
 * Ids of the jobs context. The time-sortable generator already lives in `lambdas/core/ids.ts`
 * (`{prefix}-{11 base32 chars of epoch ms}{10 random base32 chars}`, lexicographically increasing by
 * time); this module only fixes the prefixes and the events table's key layout, so there is one id
 * scheme across the platform.
 */

export const JOB_ID_PREFIX = "ftjob";
export const EVENT_ID_PREFIX = "ftevent";
export const CHECKPOINT_ID_PREFIX = "ftckpt";

/** `ftjob-…`, sortable by creation time. */
export function newJobId(now: number = Date.now()): string {
  return newId(JOB_ID_PREFIX, now);
}

/** True for ids {@link newJobId} makes: rejects path tricks before any lookup. */
export function isJobId(id: string): boolean {
  return isId(JOB_ID_PREFIX, id);
}

/** `ftevent-…`, sortable by creation time. */
export function newEventId(now: number = Date.now()): string {
  return newId(EVENT_ID_PREFIX, now);
}

/** `ftckpt-…`, sortable by creation time. */
export function newCheckpointId(now: number = Date.now()): string {
  return newId(CHECKPOINT_ID_PREFIX, now);
}

/** Partition key of the events table: `{tenantId}#{jobId}` (the tenant leads, as in every tenant-owned key). */
export function jobKey(tenantId: string, jobId: string): string {
  return `${tenantId}#${jobId}`;
}

/**
 * Sort key of the events table: `evt#{epoch ms, 13 digits}#{6 hex}`. Zero-padded millis sort as text
 * until the year 2286; the random tail keeps two events of the same millisecond (trainer and status
 * Lambda writing at once) from overwriting each other.
 */
export function eventKey(epochMillis: number, randomHex: string = randomBytes(3).toString("hex")): string {
  if (!Number.isInteger(epochMillis) || epochMillis < 0 || epochMillis >= 1e13) {
    throw new Error(`epoch millis out of range: ${epochMillis}`);
  }
  if (!/^[0-9a-f]{6}$/.test(randomHex)) throw new Error("eventKey needs 6 lowercase hex characters");
  return `evt#${String(epochMillis).padStart(13, "0")}#${randomHex}`;
}
