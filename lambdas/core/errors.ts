/**
 * Named platform errors. Each carries the HTTP status and the OpenAI error envelope fields
 * (`type`, `code`, `param`); `errorResponse` in lambdas/core/http/response.ts is the one place that
 * maps them to a response. Messages are written for the API user: they never contain stack traces or internals.
 */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "conflict_error"
  | "rate_limit_error"
  | "server_error";

export abstract class PlatformError extends Error {
  abstract readonly status: number;
  abstract readonly type: ErrorType;
  readonly code: string;
  readonly param: string | null;

  constructor(message: string, code: string, param: string | null = null) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.param = param;
  }
}

/** 400: the request is malformed or a parameter is out of bounds. */
export class InvalidRequestError extends PlatformError {
  readonly status = 400;
  readonly type = "invalid_request_error" as const;
  constructor(message: string, param: string | null = null, code = "invalid_request") {
    super(message, code, param);
  }
}

/** 401: no, unknown or revoked API key. */
export class AuthenticationError extends PlatformError {
  readonly status = 401;
  readonly type = "authentication_error" as const;
  constructor(
    message = "Invalid or missing API key. Pass it as 'Authorization: Bearer <key>'.",
    code = "invalid_api_key",
  ) {
    super(message, code);
  }
}

/** 404: also what another tenant's object looks like, so its existence does not leak. */
export class NotFoundError extends PlatformError {
  readonly status = 404;
  readonly type = "not_found_error" as const;
  constructor(message: string, code = "not_found", param: string | null = null) {
    super(message, code, param);
  }
}

/**
 * 405: the path exists, but not with this method. `allow` lists the path's methods, sent as the `Allow`
 * header (RFC 9110) beside the envelope.
 */
export class MethodNotAllowedError extends PlatformError {
  readonly status = 405;
  readonly type = "invalid_request_error" as const;
  readonly allow: readonly string[];
  constructor(method: string, path: string, allow: readonly string[]) {
    super(`${path} does not take ${method}; it takes ${allow.join(", ")}.`, "method_not_allowed");
    this.allow = allow;
  }
}

/** 409: the request conflicts with the current state (a lost race, a taken name, a file in use). */
export class ConflictError extends PlatformError {
  readonly status = 409;
  readonly type = "conflict_error" as const;
  constructor(message: string, code = "conflict", param: string | null = null) {
    super(message, code, param);
  }
}

/** 413: the body or upload is larger than allowed. */
export class PayloadTooLargeError extends PlatformError {
  readonly status = 413;
  readonly type = "invalid_request_error" as const;
  constructor(message: string, param: string | null = null) {
    super(message, "payload_too_large", param);
  }
}

/** 415: the body is not of the media type the endpoint reads (JSON endpoints: `application/json`). */
export class UnsupportedMediaTypeError extends PlatformError {
  readonly status = 415;
  readonly type = "invalid_request_error" as const;
  constructor(message: string) {
    super(message, "unsupported_media_type");
  }
}

/** 422: well-formed but unprocessable, e.g. an Idempotency-Key reused with another body. */
export class UnprocessableError extends PlatformError {
  readonly status = 422;
  readonly type = "invalid_request_error" as const;
  constructor(message: string, code = "unprocessable", param: string | null = null) {
    super(message, code, param);
  }
}

/** 429: a per-tenant limit was hit. */
export class RateLimitError extends PlatformError {
  readonly status = 429;
  readonly type = "rate_limit_error" as const;
  constructor(message = "Too many requests; retry after a short wait.", code = "rate_limit_exceeded") {
    super(message, code);
  }
}

/** 503: a dependency (inference server, queue) is unavailable; the client may retry. */
export class ServiceUnavailableError extends PlatformError {
  readonly status = 503;
  readonly type = "server_error" as const;
  constructor(message: string, code = "service_unavailable") {
    super(message, code);
  }
}

/** Headers an error's response carries beside the envelope: `Allow` on a 405. */
export function errorHeaders(error: unknown): Record<string, string> {
  return error instanceof MethodNotAllowedError ? { allow: error.allow.join(", ") } : {};
}

export interface ErrorEnvelope {
  error: { message: string; type: ErrorType; param: string | null; code: string; request_id?: string };
}

/** The OpenAI error envelope for any thrown value; unknown errors become a generic 500. */
export function toErrorEnvelope(error: unknown, requestId: string): { status: number; body: ErrorEnvelope } {
  if (error instanceof PlatformError) {
    return {
      status: error.status,
      body: {
        error: {
          message: error.message,
          type: error.type,
          param: error.param,
          code: error.code,
          request_id: requestId,
        },
      },
    };
  }
  return {
    status: 500,
    body: {
      error: {
        message: `The server had an error while processing your request. Quote request id ${requestId} when reporting it.`,
        type: "server_error",
        param: null,
        code: "internal_error",
        request_id: requestId,
      },
    },
  };
}
