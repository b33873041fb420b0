/**
 * How usage is keyed: one item per tenant (partition key), UTC day and model (sort key
 * `{YYYY-MM-DD}#{model}`), so that a tenant's days from `start` to `end` are one key range.
 */
import type { ChatUsage } from "./usage.ts";

/** The UTC day (`YYYY-MM-DD`) of an epoch-milliseconds instant. */
export function usageDay(at: number): string {
  if (!Number.isFinite(at)) throw new Error(`usage time must be epoch milliseconds, got ${at}`);
  return new Date(at).toISOString().slice(0, 10);
}

/** The sort key of a tenant's totals for `model` on `day`. */
export function usageKey(day: string, model: string): string {
  return `${day}#${model}`;
}

/**
 * The sort-key bounds (for `BETWEEN`, both inclusive) of every model's totals from day `start` to day
 * `end`. The upper bound is `{end}$`, not `{end}#\uffff`: `$` sorts right after `#`, so the bound is
 * above every `{end}#…` key whatever the model's characters (DynamoDB compares UTF-8 bytes, and a
 * character beyond U+FFFF encodes above `\uffff`'s bytes), and below every later day's keys.
 */
export function usageKeyRange(start: string, end: string): { readonly from: string; readonly to: string } {
  return { from: `${start}#`, to: `${end}$` };
}

/** What one answered chat adds to its tenant's totals: the item's key, and the counters. */
export interface UsageIncrement {
  readonly tenantId: string;
  readonly usageKey: string;
  readonly date: string;
  readonly model: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/**
 * The increment of one chat's usage. Token counts must be non-negative integers: anything else is a
 * bug upstream (the inference server's `usage` is parsed before it gets here), not something to bill.
 */
export function usageIncrement(usage: ChatUsage): UsageIncrement {
  for (const [name, value] of [
    ["promptTokens", usage.promptTokens],
    ["completionTokens", usage.completionTokens],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new Error(`${name} must be a non-negative integer, got ${value}`);
    }
  }
  if (!usage.tenantId || !usage.model) throw new Error("usage needs a tenant id and a model");
  const date = usageDay(usage.at);
  return {
    tenantId: usage.tenantId,
    usageKey: usageKey(date, usage.model),
    date,
    model: usage.model,
    promptTokens: usage.promptTokens,
    completionTokens: usage.completionTokens,
  };
}
