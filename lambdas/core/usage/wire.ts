import type { UsageRange } from "./query.ts";
import type { DailyUsage } from "./usage.ts";

/** One row of `GET /v4/usage`: a model's totals on one UTC day. */
export interface DailyUsageObject {
  readonly object: "usage.daily";
  readonly date: string;
  readonly model: string;
  readonly requests: number;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export interface UsageList {
  readonly object: "list";
  readonly start: string;
  readonly end: string;
  readonly data: DailyUsageObject[];
}

export function toDailyUsageObject(day: DailyUsage): DailyUsageObject {
  return {
    object: "usage.daily",
    date: day.date,
    model: day.model,
    requests: day.requests,
    prompt_tokens: day.promptTokens,
    completion_tokens: day.completionTokens,
    total_tokens: day.promptTokens + day.completionTokens,
  };
}

/**
 * The response of `GET /v4/usage`: every day-and-model total of the range, by date then model (code
 * unit order, the same on every machine). The whole range in one answer: at most 366 days times the
 * models a tenant called, so no pagination.
 */
export function toUsageList(range: UsageRange, days: readonly DailyUsage[]): UsageList {
  const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    object: "list",
    start: range.start,
    end: range.end,
    data: [...days]
      .sort((a, b) => compare(a.date, b.date) || compare(a.model, b.model))
      .map(toDailyUsageObject),
  };
}
