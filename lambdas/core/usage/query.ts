import { z } from "zod";
import { InvalidRequestError } from "../errors.ts";
import { toInvalidRequest } from "../http/request-errors.ts";
import { rejectUnknownQuery } from "../http/router.ts";

/** Days a `GET /v4/usage` range may cover, both ends included: a leap year. */
export const MAX_USAGE_RANGE_DAYS = 366;

const DAY_MS = 24 * 3600 * 1000;
/** The query parameters of `GET /v4/usage`, for its route's `query`. */
export const USAGE_QUERY = ["start", "end"] as const;

/** `YYYY-MM-DD` naming a day that exists (no 2026-02-30), read as a UTC day. */
export function isCalendarDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const ms = Date.parse(`${value}T00:00:00Z`);
  // An impossible day either fails to parse or rolls over into another date.
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === value;
}

const calendarDate = z
  .string()
  .refine(isCalendarDate, { message: "must be a calendar date written YYYY-MM-DD (a UTC day)" });

const usageQuery = z.object({ start: calendarDate, end: calendarDate });

/** The days `GET /v4/usage` reports: from `start` to `end`, both included, UTC. */
export interface UsageRange {
  readonly start: string;
  readonly end: string;
}

/**
 * The query of `GET /v4/usage?start=YYYY-MM-DD&end=YYYY-MM-DD`: both required, real calendar days,
 * `start` not after `end`, at most {@link MAX_USAGE_RANGE_DAYS} days; any other parameter is a 400
 * naming every unknown one (a misspelt `from`/`to` must not silently be ignored).
 */
export function parseUsageQuery(query: Readonly<Record<string, string>>): UsageRange {
  rejectUnknownQuery(query, USAGE_QUERY, "GET /v4/usage");
  const parsed = usageQuery.safeParse(query, { reportInput: true });
  if (!parsed.success) throw toInvalidRequest(parsed.error);
  const { start, end } = parsed.data;
  const days = (Date.parse(`${end}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`)) / DAY_MS + 1;
  if (days < 1) throw new InvalidRequestError(`end (${end}) is before start (${start}).`, "end");
  if (days > MAX_USAGE_RANGE_DAYS) {
    throw new InvalidRequestError(
      `A usage range may cover at most ${MAX_USAGE_RANGE_DAYS} days; ${start} to ${end} covers ${days}.`,
      "end",
    );
  }
  return { start, end };
}
