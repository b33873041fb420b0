import { createHash } from "node:crypto";
import type { IdempotencyRecord, IdempotencyStore, JobsStore } from "../core/jobs/ports.ts";
import type { JobRecord } from "../core/jobs/wire.ts";
import { type Clock, nowSeconds } from "./dependencies.ts";
import { idempotencyKeyJobDeleted, idempotencyKeyReused, invalidIdempotencyKey } from "./errors.ts";

/**
 * The `Idempotency-Key` of job creation. The same key with the same body replays the job the first
 * request made; with another body it is a 422. Keys are compared per tenant, so two tenants may use the
 * same one; they are remembered for a day.
 */

/** How long an Idempotency-Key is remembered (as Stripe and OpenAI do: a day). */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** A request's key, scoped to its tenant, with the hash of the body it came with. */
export interface IdempotencyKey {
  /** `{tenantId}#{key}` */
  readonly id: string;
  readonly requestHash: string;
}

/** The key of a request that sent the header (400 when it is malformed); undefined without one. */
export function idempotencyKeyOf(
  tenantId: string,
  header: string | undefined,
  body: unknown,
): IdempotencyKey | undefined {
  if (header === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(header)) throw invalidIdempotencyKey();
  return {
    id: `${tenantId}#${header}`,
    requestHash: createHash("sha256").update(canonicalJson(body)).digest("hex"),
  };
}

/** The record that makes `key` name the job `jobId` until it expires. */
export function idempotencyRecord(key: IdempotencyKey, jobId: string, nowSeconds: number): IdempotencyRecord {
  return {
    id: key.id,
    requestHash: key.requestHash,
    jobId,
    expiration: nowSeconds + IDEMPOTENCY_TTL_SECONDS,
  };
}

export interface ReplayDependencies extends Clock {
  readonly jobs: IdempotencyStore & Pick<JobsStore, "get">;
}

/**
 * The job an earlier request with the same key made, or undefined when the key is new (or expired).
 * 422 when that request had another body, or its job has been deleted.
 */
export async function replayJob(
  deps: ReplayDependencies,
  tenantId: string,
  key: IdempotencyKey,
): Promise<JobRecord | undefined> {
  const stored = await deps.jobs.getIdempotency(key.id);
  if (!stored || stored.expiration < nowSeconds(deps)) return undefined;
  if (stored.requestHash !== key.requestHash) throw idempotencyKeyReused();
  const job = await deps.jobs.get(tenantId, stored.jobId);
  if (!job) throw idempotencyKeyJobDeleted(stored.jobId);
  return job;
}

/** JSON with object keys sorted, so key order does not make two equal bodies differ. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
