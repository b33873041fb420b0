/**
 * The chat's per-tenant token rate, shared by every function instance: a fixed window per tenant per
 * UTC minute in a store all instances see (DynamoDB in AWS, lambdas/aws/chat-rate-repository.ts). A
 * request is admitted while the tenant's tokens of the current minute are below the limit; its actual
 * tokens (prompt + completion, from the inference server's usage) are added after it is answered. So a
 * tenant may pass the limit by the requests in flight when it is reached, and a window's edge lets up
 * to twice the limit through in a minute that straddles it: the cost of one read and one write per chat.
 */
export interface TokenWindowStore {
  /** The tenant's tokens counted in window `window` (minutes since the epoch); 0 when none. */
  used(tenantId: string, window: number): Promise<number>;
  /** Adds `tokens` to the tenant's window (atomically); the item may be dropped after `expiresAt` (epoch s). */
  add(tenantId: string, window: number, tokens: number, expiresAt: number): Promise<void>;
}

export type TokenAdmission =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterSeconds: number };

const WINDOW_MS = 60_000;
/** Windows are kept a little past their minute: a slow chat adds to the window it was admitted in. */
const KEEP_SECONDS = 20 * 60;

export const tokenWindowOf = (nowMs: number): number => Math.floor(nowMs / WINDOW_MS);

export class TokenRateLimiter {
  /**
   * @param store the shared counters
   * @param limitPerMinute tokens per tenant per minute; 0 disables the limit (nothing is read or written)
   */
  constructor(
    private readonly store: TokenWindowStore,
    readonly limitPerMinute: number,
  ) {}

  get enabled(): boolean {
    return this.limitPerMinute > 0;
  }

  /** Whether the tenant may start a chat now; if not, whole seconds until the next window (≥ 1). */
  async admit(tenantId: string, nowMs: number): Promise<TokenAdmission> {
    if (!this.enabled) return { allowed: true };
    const window = tokenWindowOf(nowMs);
    if ((await this.store.used(tenantId, window)) < this.limitPerMinute) return { allowed: true };
    return {
      allowed: false,
      retryAfterSeconds: Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - nowMs) / 1000)),
    };
  }

  /** Adds an answered chat's tokens to the window it was admitted in (`admittedAtMs`). */
  async consume(tenantId: string, tokens: number, admittedAtMs: number): Promise<void> {
    if (!this.enabled || tokens <= 0) return;
    const window = tokenWindowOf(admittedAtMs);
    await this.store.add(tenantId, window, tokens, ((window + 1) * WINDOW_MS) / 1000 + KEEP_SECONDS);
  }
}

/** `CHAT_TOKENS_PER_MINUTE` (default 100,000; 0 disables). Throws on a value that is not a whole number. */
export function tokensPerMinuteFromEnv(value: string | undefined, fallback = 100_000): number {
  if (value === undefined || value.trim() === "") return fallback;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 0) {
    throw new Error(`CHAT_TOKENS_PER_MINUTE must be a whole number ≥ 0, not '${value}'.`);
  }
  return limit;
}
