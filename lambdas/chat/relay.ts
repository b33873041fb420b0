import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { urlToHttpOptions } from "node:url";
import {
  type RelayedEvent,
  type RewriteOptions,
  relayEvent,
  rewriteModel,
  type Usage,
} from "../core/chat/chunks.ts";
import { UpstreamError, UpstreamRequestError, UpstreamTimeoutError } from "../core/chat/errors.ts";
import { SSE_DONE, SseParser, sseData } from "../core/chat/sse.ts";
import { type PlatformError, ServiceUnavailableError, toErrorEnvelope } from "../core/errors.ts";

/**
 * Where the response goes: the Lambda response stream, the local gateway's socket, a benchmark. `start`
 * sends the status line and headers; each `write` goes out at once (a returned promise is backpressure:
 * the relay waits for it before reading more from upstream); `signal` aborts when the client is gone.
 */
export interface ChatSink {
  start(status: number, headers: Record<string, string>): void;
  write(chunk: string | Uint8Array): void | Promise<void>;
  end(): void | Promise<void>;
  readonly signal: AbortSignal;
}

export interface RelayRequest {
  /** Base URL ending in `/v1`. */
  readonly baseUrl: string;
  readonly body: Record<string, unknown>;
  readonly headers: Record<string, string>;
  readonly stream: boolean;
  readonly rewrite: RewriteOptions;
  readonly requestId: string;
  /** Epoch ms after which the upstream request is given up (the Lambda's own timeout, less a margin). */
  readonly deadline?: number;
}

export type RelayOutcome = "completed" | "client_gone" | "upstream_error" | "upstream_timeout";

export interface RelayResult {
  readonly outcome: RelayOutcome;
  readonly upstreamStatus?: number;
  readonly chunks: number;
  /** ms from the upstream request to its response headers. */
  readonly upstreamHeadersMs?: number;
  readonly usage?: Usage;
}

/** Error bodies are small; a completion is bounded by max_tokens. Both caps only guard against a broken server. */
const MAX_ERROR_BODY = 64 * 1024;
const MAX_COMPLETION_BODY = 16 * 1024 * 1024;

class ClientGone extends Error {}
class DeadlineReached extends Error {}
class TooLarge extends Error {}

/**
 * The inference server's answer as the relay reads it, from node:http (the default) or from an injected
 * `fetch` (tests, the in-memory benchmark).
 */
interface UpstreamResponse {
  readonly status: number;
  /** False only for a fetch Response without a body. */
  readonly hasBody: boolean;
  /** The next piece of the body, `undefined` at its end; rejects when it broke off or was aborted. */
  read(): Promise<Uint8Array | undefined>;
  /** Reads the rest in the background, so the connection can be reused; gives up after a second. */
  drain(): void;
}

/**
 * Connections to the inference servers, kept open between requests. Idle ones are closed after 4 s
 * (sooner when the server announces a shorter `Keep-Alive: timeout`), before a server's usual 5 s, so
 * a request is not sent on a connection the server is closing. Nagle is off (`noDelay`).
 */
const KEEP_ALIVE_MS = 4_000;
const httpAgent = new HttpAgent({
  keepAlive: true,
  timeout: KEEP_ALIVE_MS,
  scheduling: "lifo",
  noDelay: true,
});
const httpsAgent = new HttpsAgent({
  keepAlive: true,
  timeout: KEEP_ALIVE_MS,
  scheduling: "lifo",
  noDelay: true,
});

/**
 * POSTs the request to `{baseUrl}/chat/completions` and relays the answer. Errors before the first byte
 * to the client are thrown as PlatformErrors (the caller sends the envelope); once the stream has
 * started, an error is one SSE event `data: {"error": …}` and the stream ends without `[DONE]`: the
 * openai npm client throws an APIError on it, the zhipuai SDK raises APIRequestFailedError, just as
 * with OpenAI's and Zhipu's own mid-stream errors.
 *
 * The upstream request goes through node:http with a keep-alive agent unless `fetchImpl` is given (tests,
 * the in-memory benchmark): each piece the server sends is parsed, rewritten and written to the sink in
 * the same event-loop turn as its socket read. Global fetch (undici) took ~0.7 ms more per request to
 * the response's headers, and its WHATWG stream a chain of promises per piece (bench/chat/run.ts).
 */
export async function relay(
  request: RelayRequest,
  sink: ChatSink,
  fetchImpl?: typeof fetch,
): Promise<RelayResult> {
  const controller = new AbortController();
  const onClientAbort = () => controller.abort(new ClientGone());
  if (sink.signal.aborted) return { outcome: "client_gone", chunks: 0 };
  sink.signal.addEventListener("abort", onClientAbort, { once: true });
  const timer =
    request.deadline === undefined
      ? undefined
      : setTimeout(() => controller.abort(new DeadlineReached()), Math.max(0, request.deadline - Date.now()));
  const started = performance.now();
  try {
    let response: UpstreamResponse;
    try {
      const url = `${request.baseUrl}/chat/completions`;
      const headers = {
        "content-type": "application/json",
        accept: request.stream ? "text/event-stream" : "application/json",
        "x-request-id": request.requestId,
        ...request.headers,
      };
      const body = JSON.stringify(request.body);
      response = await (fetchImpl
        ? fetchUpstream(fetchImpl, url, headers, body, controller.signal)
        : postUpstream(url, headers, body, controller.signal));
    } catch (error) {
      const reason: unknown = controller.signal.reason;
      if (reason instanceof ClientGone) return { outcome: "client_gone", chunks: 0 };
      if (reason instanceof DeadlineReached) throw new UpstreamTimeoutError();
      throw new ServiceUnavailableError(
        `The inference server for '${request.rewrite.model}' can not be reached${describe(error)}. Retry shortly.`,
        "upstream_unavailable",
      );
    }
    const upstreamHeadersMs = performance.now() - started;
    if (response.status < 200 || response.status > 299) {
      const text = await readText(response, MAX_ERROR_BODY, controller).catch(() => "");
      throw upstreamHttpError(response.status, text);
    }
    if (!request.stream) return await relayCompletion(response, request, sink, controller, upstreamHeadersMs);
    return await relayStream(response, request, sink, controller, upstreamHeadersMs);
  } finally {
    if (timer) clearTimeout(timer);
    sink.signal.removeEventListener("abort", onClientAbort);
  }
}

/** Request options per upstream URL, parsed once (the endpoints are a handful). */
const targets = new Map<string, { secure: boolean; options: RequestOptions }>();

function requestTarget(url: string): { secure: boolean; options: RequestOptions } {
  let target = targets.get(url);
  if (!target) {
    const parsed = new URL(url);
    const secure = parsed.protocol === "https:";
    target = { secure, options: { ...urlToHttpOptions(parsed), agent: secure ? httpsAgent : httpAgent } };
    if (targets.size >= 256) targets.clear();
    targets.set(url, target);
  }
  return target;
}

/**
 * The POST through node:http; resolves at the response's headers. A kept-alive connection that the
 * server closed while it sat idle (or while a Lambda was frozen) fails at once with a reset, before the
 * server got the request: that one is retried once on a new connection.
 */
function postUpstream(
  url: string,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
  retry = true,
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const target = requestTarget(url);
    const payload = Buffer.from(body, "utf8");
    let answered = false;
    const req = (target.secure ? httpsRequest : httpRequest)(
      {
        ...target.options,
        method: "POST",
        headers: { ...headers, "content-length": String(payload.length) },
      },
      (res) => {
        answered = true;
        resolve(nodeResponse(req, res));
      },
    );
    // An abort (the client left, the deadline) closes the connection, before or during the response.
    const abort = () => req.destroy(new Error("aborted"));
    if (signal.aborted) abort();
    else signal.addEventListener("abort", abort, { once: true });
    // Before the response: the rejection. After it: the response's own error or close ends its reads.
    req.on("error", (error: NodeJS.ErrnoException) => {
      if (answered) return;
      const stale = req.reusedSocket && (error.code === "ECONNRESET" || error.code === "EPIPE");
      if (retry && stale && !signal.aborted) resolve(postUpstream(url, headers, body, signal, false));
      else reject(error);
    });
    req.end(payload);
  });
}

/**
 * The response's body as reads: a piece that arrives while a read waits resolves it at once (the relay
 * goes on in the same event-loop turn); one that arrives while nobody reads is queued and the socket
 * paused, which is the backpressure of a slow client.
 */
function nodeResponse(req: ClientRequest, res: IncomingMessage): UpstreamResponse {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: Error | undefined;
  let draining = false;
  let waiting:
    | { resolve: (value: Uint8Array | undefined) => void; reject: (error: Error) => void }
    | undefined;
  const settle = () => {
    const wait = waiting;
    if (!wait) return;
    if (queue.length > 0) {
      waiting = undefined;
      wait.resolve(queue.shift());
    } else if (failure) {
      waiting = undefined;
      wait.reject(failure);
    } else if (ended) {
      waiting = undefined;
      wait.resolve(undefined);
    }
  };
  res.on("data", (piece: Buffer) => {
    if (draining) return;
    queue.push(piece);
    if (waiting) settle();
    else res.pause();
  });
  res.on("end", () => {
    ended = true;
    settle();
  });
  res.on("error", (error) => {
    failure ??= error;
    settle();
  });
  res.on("close", () => {
    if (ended) return;
    failure ??= new Error("the connection closed before the response ended");
    settle();
  });
  return {
    status: res.statusCode ?? 0,
    hasBody: true,
    read() {
      const piece = queue.shift();
      if (piece) {
        if (queue.length === 0 && !ended) res.resume();
        return Promise.resolve(piece);
      }
      if (failure) return Promise.reject(failure);
      if (ended) return Promise.resolve(undefined);
      res.resume();
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
      });
    },
    drain() {
      draining = true;
      queue.length = 0;
      if (ended || failure) return;
      // A server that keeps the stream open after [DONE] is not worth a connection: give up after a second.
      const timer = setTimeout(() => req.destroy(), 1_000);
      timer.unref();
      res.once("close", () => clearTimeout(timer));
      res.resume();
    },
  };
}

/** The same through an injected fetch. */
async function fetchUpstream(
  fetchImpl: typeof fetch,
  url: string,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
): Promise<UpstreamResponse> {
  const response = await fetchImpl(url, { method: "POST", headers, body, signal });
  const reader = response.body?.getReader();
  return {
    status: response.status,
    hasBody: reader !== undefined,
    async read() {
      if (!reader) return undefined;
      const { value, done } = await reader.read();
      return done ? undefined : value;
    },
    drain() {
      if (reader) void drainReader(reader);
    },
  };
}

async function relayCompletion(
  response: UpstreamResponse,
  request: RelayRequest,
  sink: ChatSink,
  controller: AbortController,
  upstreamHeadersMs: number,
): Promise<RelayResult> {
  let text: string;
  try {
    text = await readText(response, MAX_COMPLETION_BODY, controller);
  } catch (error) {
    const reason: unknown = controller.signal.reason;
    if (reason instanceof ClientGone) return { outcome: "client_gone", chunks: 0, upstreamStatus: 200 };
    if (reason instanceof DeadlineReached) throw new UpstreamTimeoutError();
    throw new UpstreamError(`The inference server's answer broke off${describe(error)}.`);
  }
  let completion: unknown;
  try {
    completion = JSON.parse(text);
  } catch {
    throw new UpstreamError("The inference server answered with something that is not JSON.");
  }
  if (completion === null || typeof completion !== "object" || Array.isArray(completion)) {
    throw new UpstreamError("The inference server answered with something that is not a chat completion.");
  }
  const rewritten = rewriteModel(completion as Record<string, unknown>, request.rewrite);
  const usage = (rewritten as { usage?: Usage }).usage;
  sink.start(200, { "content-type": "application/json", "x-request-id": request.requestId });
  await sink.write(JSON.stringify(rewritten));
  await sink.end();
  return usage
    ? { outcome: "completed", chunks: 1, upstreamStatus: 200, upstreamHeadersMs, usage }
    : { outcome: "completed", chunks: 1, upstreamStatus: 200, upstreamHeadersMs };
}

async function relayStream(
  response: UpstreamResponse,
  request: RelayRequest,
  sink: ChatSink,
  controller: AbortController,
  upstreamHeadersMs: number,
): Promise<RelayResult> {
  const base = { upstreamStatus: response.status, upstreamHeadersMs };
  if (!response.hasBody) throw new UpstreamError("The inference server answered without a body.");
  sink.start(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
    "x-request-id": request.requestId,
  });
  const parser = new SseParser();
  let chunks = 0;
  let usage: Usage | undefined;
  const result = (outcome: RelayOutcome): RelayResult =>
    usage ? { outcome, chunks, usage, ...base } : { outcome, chunks, ...base };

  for (;;) {
    let piece: Uint8Array | undefined;
    try {
      piece = await response.read();
    } catch (error) {
      const reason: unknown = controller.signal.reason;
      if (reason instanceof ClientGone) {
        await endQuietly(sink);
        return result("client_gone");
      }
      if (reason instanceof DeadlineReached) {
        await fail(sink, new UpstreamTimeoutError(), request.requestId);
        return result("upstream_timeout");
      }
      await fail(
        sink,
        new UpstreamError(`The inference server's stream broke off${describe(error)}.`),
        request.requestId,
      );
      return result("upstream_error");
    }
    if (piece === undefined) break;
    // Everything this read completed goes out in one write, before the next read: nothing waits for
    // a later upstream chunk.
    let out = "";
    let finished: RelayedEvent | undefined;
    for (const event of parser.push(piece)) {
      const relayed = relayEvent(event, request.rewrite);
      if (relayed.kind === "chunk") {
        out += relayed.text;
        chunks += 1;
        if (relayed.usage) usage = relayed.usage;
      } else if (relayed.kind === "skip") {
        if (relayed.usage) usage = relayed.usage;
      } else if (relayed.kind === "invalid") {
        // Not JSON from an OpenAI-compatible server means the stream can not be trusted any further.
        finished = {
          kind: "error",
          text: errorEvent(
            new UpstreamError("The inference server sent an event that is not JSON."),
            request.requestId,
          ),
        };
        break;
      } else {
        finished = relayed;
        break;
      }
    }
    if (finished?.kind === "done") {
      // The last chunks and the end marker in one write.
      await sink.write(out + SSE_DONE);
      await sink.end();
      // Read the rest (normally just the chunked encoding's end) so the connection can be reused.
      response.drain();
      return result("completed");
    }
    if (out) {
      // A write that returns nothing went to the socket already; only backpressure is awaited.
      const pending = sink.write(out);
      if (pending) await pending;
    }
    if (finished?.kind === "error") {
      await sink.write(withRequestId(finished.text, request.requestId));
      await sink.end();
      controller.abort(new ClientGone());
      return result("upstream_error");
    }
  }
  await fail(
    sink,
    new UpstreamError("The inference server ended the stream before its end marker."),
    request.requestId,
  );
  return result("upstream_error");
}

/** The envelope of a non-2xx answer of the inference server, as a PlatformError. */
export function upstreamHttpError(status: number, text: string): PlatformError {
  let message: string | undefined;
  let code: string | undefined;
  let param: string | null = null;
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    // OpenAI's `{"error": {…}}`, or vLLM's older flat `{"object": "error", "message", "code": 400}`.
    const error = (
      typeof parsed.error === "object" && parsed.error !== null ? parsed.error : parsed
    ) as Record<string, unknown>;
    if (typeof error.message === "string") message = error.message.slice(0, 1000);
    if (typeof error.code === "string" || typeof error.code === "number") code = String(error.code);
    if (typeof error.param === "string") param = error.param;
  } catch {
    // not JSON: a proxy's HTML page; the status says enough.
  }
  if (status === 503) {
    return new ServiceUnavailableError(
      message
        ? `The inference server is unavailable: ${message}`
        : "The inference server is unavailable; retry shortly.",
      "upstream_unavailable",
    );
  }
  if (status >= 400 && status < 500 && ![401, 403, 407, 408].includes(status)) {
    return new UpstreamRequestError(
      status,
      message ?? `The inference server refused the request (HTTP ${status}).`,
      code && !/^\d+$/.test(code) ? code : "upstream_rejected",
      param,
    );
  }
  return new UpstreamError(`The inference server failed (HTTP ${status})${message ? `: ${message}` : "."}`);
}

function errorEvent(error: unknown, requestId: string): string {
  return sseData(toErrorEnvelope(error, requestId).body);
}

async function fail(sink: ChatSink, error: unknown, requestId: string): Promise<void> {
  try {
    await sink.write(errorEvent(error, requestId));
  } finally {
    await endQuietly(sink);
  }
}

/** Adds the platform's request id to an upstream error event, keeping its own fields. */
function withRequestId(text: string, requestId: string): string {
  try {
    const parsed = JSON.parse(text.slice("data: ".length)) as { error?: Record<string, unknown> };
    if (parsed.error && typeof parsed.error === "object") {
      const error: Record<string, unknown> = { ...parsed.error, request_id: requestId };
      if (typeof error.code === "number") error.code = String(error.code);
      if (error.type === undefined) error.type = "server_error";
      return sseData({ ...parsed, error });
    }
  } catch {
    // relayEvent only hands over parsed JSON; nothing to do.
  }
  return text;
}

async function endQuietly(sink: ChatSink): Promise<void> {
  try {
    await sink.end();
  } catch {
    // the client is gone; there is nobody to tell.
  }
}

async function drainReader(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  // A server that keeps the stream open after [DONE] is not worth a connection: give up after a second.
  const timer = setTimeout(() => void reader.cancel().catch(() => {}), 1_000);
  timer.unref();
  try {
    for (;;) if ((await reader.read()).done) return;
  } catch {
    // ended by abort or reset: nothing left to reuse.
  } finally {
    clearTimeout(timer);
  }
}

async function readText(
  response: UpstreamResponse,
  limit: number,
  controller: AbortController,
): Promise<string> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const piece = await response.read();
    if (piece === undefined) break;
    size += piece.length;
    if (size > limit) {
      controller.abort(new TooLarge());
      throw new Error(`more than ${limit} bytes`);
    }
    parts.push(piece);
  }
  return Buffer.concat(parts).toString("utf8");
}

function describe(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? ` (${code})` : "";
}
