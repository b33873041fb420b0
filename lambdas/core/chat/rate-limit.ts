/**
 * A per-key token bucket: `limitPerMinute` requests may burst at once, and one more is admitted every
 * `60 / limitPerMinute` seconds. It lives in one function instance (a Lambda execution environment or
 * the local gateway), so the platform-wide limit is this times the number of warm instances; it bounds
 * what one tenant can make one instance do, not a billing quota.
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  /**
   * @param limitPerMinute bucket size and refill per minute; 0 or less disables the limit
   * @param maxKeys bound on remembered keys; full (idle) buckets are forgotten first
   */
  constructor(
    readonly limitPerMinute: number,
    private readonly maxKeys = 10_000,
  ) {
    this.perMs = limitPerMinute / 60_000;
  }

  /** Takes one token for `key`: allowed, or the whole seconds until one will be there. */
  take(key: string, now: number): { allowed: true } | { allowed: false; retryAfterSeconds: number } {
    if (this.limitPerMinute <= 0) return { allowed: true };
    const bucket = this.buckets.get(key);
    const tokens = bucket
      ? Math.min(this.limitPerMinute, bucket.tokens + Math.max(0, now - bucket.at) * this.perMs)
      : this.limitPerMinute;
    if (tokens < 1) {
      if (bucket) {
        bucket.tokens = tokens;
        bucket.at = now;
      }
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000)) };
    }
    if (!bucket && this.buckets.size >= this.maxKeys) this.evict(now);
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    return { allowed: true };
  }

  private evict(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.perMs >= this.limitPerMinute) this.buckets.delete(key);
    }
    // Everyone is mid-burst: drop the oldest entry (Map keeps insertion order), which errs towards admitting.
    if (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
  }
}

/** `CHAT_RATE_LIMIT_PER_MINUTE` (default 120; 0 disables). Throws on a value that is not a whole number. */
export function rateLimitFromEnv(value: string | undefined, fallback = 120): number {
  if (value === undefined || value.trim() === "") return fallback;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 0) {
    throw new Error(`CHAT_RATE_LIMIT_PER_MINUTE must be a whole number ≥ 0, not '${value}'.`);
  }
  return limit;
}
