import { randomBytes } from "node:crypto";
import { eventKey as contractEventKey } from "../contract.ts";
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

/** The events table's keys, as `contract/platform.json` lays them out (the trainer writes events too). */
export { jobKey } from "../contract.ts";

/** Sort key of the events table (`evt#{epoch ms, 13 digits}#{6 hex}`); a random tail unless given. */
export function eventKey(epochMillis: number, randomHex: string = randomBytes(3).toString("hex")): string {
  return contractEventKey(epochMillis, randomHex);
}
