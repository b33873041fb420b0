import { describe, expect, it } from "vitest";
import {
  DEFAULT_RETRY_SCHEDULE,
  nextRetryDelay,
  retryDelays,
  retryScheduleFromEnv,
} from "../../../lambdas/core/webhooks/retry.ts";

describe("webhook retry schedule", () => {
  it("backs off exponentially from 10 s, at most 4 h apart, for about 24 h", () => {
    const delays = retryDelays();
    expect(delays.slice(0, 7)).toEqual([10, 30, 90, 270, 810, 2430, 7290]);
    expect(delays.slice(7).every((d) => d === 4 * 3600)).toBe(true);
    const total = delays.reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(24 * 3600);
    expect(total).toBeGreaterThan(20 * 3600);
    expect(delays).toHaveLength(12); // 13 attempts
  });

  it("stops when the next attempt would fall after the window", () => {
    expect(nextRetryDelay(3, 0)).toBe(90);
    expect(nextRetryDelay(8, 86_400 - 100)).toBeUndefined();
    expect(nextRetryDelay(1, 86_400)).toBeUndefined();
  });

  it("refuses an attempt number below 1", () => {
    expect(() => nextRetryDelay(0, 0)).toThrow(/positive/);
  });

  it("reads a shorter schedule from the environment for tests, and the defaults otherwise", () => {
    expect(retryScheduleFromEnv({})).toEqual(DEFAULT_RETRY_SCHEDULE);
    const short = retryScheduleFromEnv({
      WEBHOOK_RETRY_BASE_SECONDS: "1",
      WEBHOOK_RETRY_WINDOW_SECONDS: "10",
    });
    // 1 s, 3 s; a third wait (9 s) would end 13 s after the first attempt, past the 10 s window.
    expect(retryDelays(short)).toEqual([1, 3]);
    expect(() => retryScheduleFromEnv({ WEBHOOK_RETRY_FACTOR: "fast" })).toThrow(/WEBHOOK_RETRY_FACTOR/);
  });
});
