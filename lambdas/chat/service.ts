import { configEnv, type Env } from "../aws/env.ts";
import type { ChatSample } from "../aws/observability.ts";
import { type BaseModelCatalog, catalogFromEnv } from "../core/catalog/base-models.ts";
import { ChatRateLimitError } from "../core/chat/errors.ts";
import {
  checkMaxTokens,
  endpointFor,
  type FindModel,
  type InferenceEndpoints,
  parseInferenceEndpoints,
  resolveModel,
  upstreamTarget,
} from "../core/chat/models.ts";
import { rateLimitFromEnv, TokenBucketLimiter } from "../core/chat/rate-limit.ts";
import {
  type ChatLimits,
  DEFAULT_CHAT_LIMITS,
  parseChatRequest,
  upstreamBody,
} from "../core/chat/request.ts";
import type { TokenRateLimiter } from "../core/chat/token-rate.ts";
import {
  errorHeaders,
  MethodNotAllowedError,
  NotFoundError,
  PlatformError,
  toErrorEnvelope,
} from "../core/errors.ts";
import { requireJsonBody } from "../core/http/content-type.ts";
import type { ChatUsage, UsageRecorder } from "../core/usage/usage.ts";
import { type ChatSink, type RelayResult, relay } from "./relay.ts";

export type { ChatSink } from "./relay.ts";

/** One chat request, wherever it came from: the tenant is already proven (authorizer or API key). */
export interface ChatRequest {
  readonly tenantId: string;
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  /** Lower-cased names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** Epoch ms by which the response must be finished (a Lambda's timeout, less a margin). */
  readonly deadline?: number;
}

/** One log entry per request: what an operator needs to follow a tenant's use and the upstream's health. */
export interface ChatLogEntry {
  readonly requestId: string;
  readonly tenantId: string;
  readonly model?: string;
  /** The end user the client named (`user` or Zhipu's `user_id`). */
  readonly user?: string;
  /** The client's own request id (Zhipu's `request_id`). */
  readonly clientRequestId?: string;
  readonly status: number;
  readonly outcome: RelayResult["outcome"] | "rejected";
  readonly code?: string;
  readonly stream?: boolean;
  readonly chunks?: number;
  readonly upstreamHeadersMs?: number;
  /** Request received → first streamed chunk written (streams that sent one). */
  readonly ttftMs?: number;
  readonly durationMs: number;
  readonly usage?: RelayResult["usage"];
}

export interface ChatDependencies {
  readonly catalog: BaseModelCatalog;
  /** The models table lookup (any tenant's code; the service checks the owner). */
  readonly findModel: FindModel;
  readonly endpoints: InferenceEndpoints;
  /** Requests per tenant, per function instance. */
  readonly limiter: TokenBucketLimiter;
  /** Tokens per tenant per minute, shared by every instance (`CHAT_TOKENS_PER_MINUTE`); none when absent. */
  readonly tokenRate?: TokenRateLimiter;
  readonly limits?: ChatLimits;
  /** Awaited before a request is served: the catalog's check against stored model codes (code-conflicts.ts). */
  readonly ready?: () => Promise<void>;
  /** Sent to the inference servers as `Authorization: Bearer …` when set (vLLM's `--api-key`). */
  readonly upstreamApiKey?: string;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  readonly log?: (entry: ChatLogEntry) => void;
  /** Unexpected errors (500s), with their stack; never shown to the client. */
  readonly logError?: (message: string, details: Record<string, unknown>) => void;
  /** Time to first token and token counts of an answered request (the chat metrics). */
  readonly recordChat?: (sample: ChatSample) => void;
  /**
   * The tenant's billable token usage: every answered chat's tokens, recorded after its response has
   * ended (nothing of it is in the client's time to first byte).
   */
  readonly usage?: UsageRecorder;
}

/**
 * The chat dependencies from the environment (names in `CONFIG_ENV`): the inference endpoints (JSON,
 * see parseInferenceEndpoints), the rate limit per minute (default 120, 0 = off), the catalog override
 * and the optional `INFERENCE_API_KEY`. Throws on a malformed value (cold start fails loudly).
 */
export function chatDependenciesFromEnv(
  findModel: FindModel,
  env: Env = process.env,
  extra: Partial<ChatDependencies> = {},
): ChatDependencies {
  const apiKey = configEnv("inferenceApiKey", env);
  return {
    catalog: catalogFromEnv(configEnv("catalogOverride", env)),
    findModel,
    endpoints: parseInferenceEndpoints(configEnv("inferenceEndpoints", env)),
    limiter: new TokenBucketLimiter(rateLimitFromEnv(configEnv("chatRateLimitPerMinute", env))),
    ...(apiKey ? { upstreamApiKey: apiKey } : {}),
    ...extra,
  };
}

const CHAT_PATH = /(^|\/)chat\/completions\/?$/;

/**
 * POST …/chat/completions for a proven tenant: validate, rate-limit, resolve the model, relay to its
 * inference server. Never throws: every failure becomes an error envelope (before the stream started)
 * or an SSE error event (after), both carrying the request id.
 */
export async function serveChat(request: ChatRequest, sink: ChatSink, deps: ChatDependencies): Promise<void> {
  const now = deps.now ?? Date.now;
  const started = now();
  const guarded = guard(sink, now);
  let model: string | undefined;
  let stream: boolean | undefined;
  let named: Pick<ChatLogEntry, "user" | "clientRequestId"> = {};
  try {
    // As the API functions' routers answer (lambdas/core/http/router.ts): API Gateway hands the
    // resource's other methods to this function too (infra/constructs/api.ts).
    if (!CHAT_PATH.test(request.path)) {
      throw new NotFoundError(`Unknown path: ${request.method} ${request.path}.`, "unknown_url");
    }
    if (request.method !== "POST") throw new MethodNotAllowedError(request.method, request.path, ["POST"]);
    await deps.ready?.();
    const admitted = deps.limiter.take(request.tenantId, now());
    if (!admitted.allowed)
      throw new ChatRateLimitError(deps.limiter.limitPerMinute, admitted.retryAfterSeconds);
    const tokensAdmitted = await deps.tokenRate?.admit(request.tenantId, started);
    if (deps.tokenRate && tokensAdmitted && !tokensAdmitted.allowed)
      throw new ChatRateLimitError(deps.tokenRate.limitPerMinute, tokensAdmitted.retryAfterSeconds, "tokens");

    requireJsonBody(request.body, request.headers["content-type"]);
    const chat = parseChatRequest(request.body, deps.limits ?? DEFAULT_CHAT_LIMITS);
    model = chat.model;
    stream = chat.stream;
    named = {
      ...(chat.endUser !== undefined ? { user: chat.endUser } : {}),
      ...(chat.requestId !== undefined ? { clientRequestId: chat.requestId } : {}),
    };
    const resolved = await resolveModel(chat.model, request.tenantId, deps);
    checkMaxTokens(chat.maxTokens, resolved);
    const baseUrl = endpointFor(resolved, deps.endpoints);
    const target = upstreamTarget(resolved);
    const headers = { ...target.headers };
    if (deps.upstreamApiKey) headers.authorization = `Bearer ${deps.upstreamApiKey}`;

    const result = await relay(
      {
        baseUrl,
        body: upstreamBody(chat, target.model),
        headers,
        stream: chat.stream,
        rewrite: {
          model: chat.model,
          includeUsage: chat.includeUsage,
          ...(chat.requestId ? { requestId: chat.requestId } : {}),
        },
        requestId: request.requestId,
        ...(request.deadline !== undefined ? { deadline: request.deadline } : {}),
      },
      guarded,
      deps.fetch,
    );
    // The first write of a stream that relayed chunks is its first chunk.
    const ttftMs =
      chat.stream && result.chunks > 0 && guarded.firstWriteAt !== undefined
        ? guarded.firstWriteAt - started
        : undefined;
    if (deps.usage && result.usage) {
      await recordUsage(
        deps,
        {
          tenantId: request.tenantId,
          model,
          promptTokens: result.usage.prompt_tokens ?? 0,
          completionTokens: result.usage.completion_tokens ?? 0,
          at: now(),
        },
        request.requestId,
      );
    }
    if (deps.tokenRate && result.usage) {
      const tokens = (result.usage.prompt_tokens ?? 0) + (result.usage.completion_tokens ?? 0);
      await countTokens(deps.tokenRate, deps, request.tenantId, tokens, started, request.requestId);
    }
    deps.recordChat?.({
      model,
      ttftMs,
      promptTokens: result.usage?.prompt_tokens,
      completionTokens: result.usage?.completion_tokens,
    });
    deps.log?.({
      requestId: request.requestId,
      tenantId: request.tenantId,
      model,
      ...named,
      stream,
      status: guarded.status ?? 499,
      ...result,
      ...(ttftMs !== undefined ? { ttftMs } : {}),
      durationMs: now() - started,
    });
  } catch (error) {
    const { status } = toErrorEnvelope(error, request.requestId);
    if (!(error instanceof PlatformError)) {
      deps.logError?.("unhandled chat error", {
        requestId: request.requestId,
        error:
          error instanceof Error
            ? { name: error.name, message: error.message, stack: error.stack }
            : String(error),
      });
    }
    await sendError(guarded, error, request.requestId);
    deps.log?.({
      requestId: request.requestId,
      tenantId: request.tenantId,
      ...(model !== undefined ? { model } : {}),
      ...named,
      ...(stream !== undefined ? { stream } : {}),
      status,
      outcome: "rejected",
      code: error instanceof PlatformError ? error.code : "internal_error",
      durationMs: now() - started,
    });
  }
}

/**
 * The usage write, after the response ended: a failure can no longer reach the client, so it is logged
 * with the tokens (the operator can reconcile them), never thrown.
 */
async function recordUsage(deps: ChatDependencies, usage: ChatUsage, requestId: string): Promise<void> {
  try {
    await deps.usage?.record(usage);
  } catch (error) {
    deps.logError?.("usage not recorded", {
      requestId,
      usage,
      error: error instanceof Error ? { name: error.name, message: error.message } : String(error),
    });
  }
}

/** The chat's tokens into the tenant's shared window, after the response ended: logged, never thrown. */
async function countTokens(
  tokenRate: TokenRateLimiter,
  deps: ChatDependencies,
  tenantId: string,
  tokens: number,
  admittedAt: number,
  requestId: string,
): Promise<void> {
  try {
    await tokenRate.consume(tenantId, tokens, admittedAt);
  } catch (error) {
    deps.logError?.("chat tokens not counted for the rate limit", {
      requestId,
      tenantId,
      tokens,
      error: error instanceof Error ? { name: error.name, message: error.message } : String(error),
    });
  }
}

/** The envelope as the whole response, or (when the stream already started) as one SSE event. */
async function sendError(sink: GuardedSink, error: unknown, requestId: string): Promise<void> {
  const { status, body } = toErrorEnvelope(error, requestId);
  try {
    if (sink.status === undefined) {
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "x-request-id": requestId,
        ...errorHeaders(error),
      };
      if (error instanceof ChatRateLimitError) headers["retry-after"] = String(error.retryAfterSeconds);
      sink.start(status, headers);
      await sink.write(JSON.stringify(body));
    } else if (!sink.ended) {
      await sink.write(`data: ${JSON.stringify(body)}\n\n`);
    }
  } catch {
    // the client is gone
  }
  if (!sink.ended) {
    try {
      await sink.end();
    } catch {
      // the client is gone
    }
  }
}

interface GuardedSink extends ChatSink {
  readonly status: number | undefined;
  readonly ended: boolean;
  /** When the first body bytes went out (`now()`), for the time to first token. */
  readonly firstWriteAt: number | undefined;
}

/**
 * Remembers whether the response started and ended, so an error knows which form it may take, and
 * when its first bytes went out.
 */
function guard(sink: ChatSink, now: () => number): GuardedSink {
  let status: number | undefined;
  let ended = false;
  let firstWriteAt: number | undefined;
  return {
    get status() {
      return status;
    },
    get ended() {
      return ended;
    },
    get firstWriteAt() {
      return firstWriteAt;
    },
    signal: sink.signal,
    start(code, headers) {
      status = code;
      sink.start(code, headers);
    },
    write(chunk) {
      firstWriteAt ??= now();
      return sink.write(chunk);
    },
    end() {
      ended = true;
      return sink.end();
    },
  };
}
