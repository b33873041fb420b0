import { type ErrorType, PlatformError, RateLimitError } from "../errors.ts";

/**
 * Errors of the chat path that lambdas/core/errors.ts has no class for. They extend PlatformError, so
 * `toErrorEnvelope` maps them like any other.
 */

/** 502: the inference server answered with something the platform can not relay (a 5xx, broken JSON). */
export class UpstreamError extends PlatformError {
  readonly status = 502;
  readonly type = "server_error" as const;
  constructor(message: string, code = "upstream_error") {
    super(message, code);
  }
}

/** 504: the inference server did not finish before the function's deadline. */
export class UpstreamTimeoutError extends PlatformError {
  readonly status = 504;
  readonly type = "server_error" as const;
  constructor(message = "The inference server did not answer in time.", code = "upstream_timeout") {
    super(message, code);
  }
}

/**
 * A 4xx of the inference server passed through: its message concerns the request (a prompt over the
 * context window, a parameter the server refuses), so the client may act on it.
 */
export class UpstreamRequestError extends PlatformError {
  readonly status: number;
  readonly type: ErrorType;
  constructor(status: number, message: string, code: string, param: string | null) {
    super(message, code, param);
    this.status = status;
    this.type =
      status === 404 ? "not_found_error" : status === 429 ? "rate_limit_error" : "invalid_request_error";
  }
}

/** 429 with the seconds after which a retry will be admitted (sent as `retry-after`). */
export class ChatRateLimitError extends RateLimitError {
  readonly retryAfterSeconds: number;
  /** @param unit what the limit counts: requests (per instance) or tokens (shared, per tenant) */
  constructor(limitPerMinute: number, retryAfterSeconds: number, unit: "requests" | "tokens" = "requests") {
    super(
      `Rate limit of ${limitPerMinute} chat ${unit} per minute reached for this organization; retry after ${retryAfterSeconds} s.`,
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
