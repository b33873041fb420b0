import { SSE_DONE, type SseEvent, sseData } from "./sse.ts";

/**
 * What the relay does to the inference server's output: the `model` field becomes the name the client
 * asked for (the model code, not the base model or adapter name the server knows), a Zhipu `request_id`
 * is echoed, and every other field passes through untouched, so the chunks keep both the OpenAI
 * `chat.completion.chunk` and the zhipuai `ChatCompletionChunk` shapes (id, created, model,
 * choices[{index, delta{role, content}, finish_reason}], usage).
 */
export interface RewriteOptions {
  /** The `model` the client sent. */
  readonly model: string;
  /** Zhipu's client-chosen `request_id`: every chunk's and the completion's `id` and `request_id`, as Zhipu answers. */
  readonly requestId?: string;
  /** Usage-only chunks (empty `choices`) pass only when the client asked with `stream_options.include_usage`. */
  readonly includeUsage: boolean;
}

export interface Usage {
  readonly prompt_tokens?: number;
  readonly completion_tokens?: number;
  readonly total_tokens?: number;
}

/** The outcome of one upstream event. */
export type RelayedEvent =
  | { kind: "chunk"; text: string; usage?: Usage }
  | { kind: "skip"; usage?: Usage }
  | { kind: "done" }
  | { kind: "error"; text: string }
  | { kind: "invalid" };

/** Rewrites one upstream SSE event into the text to send the client. */
export function relayEvent(event: SseEvent, options: RewriteOptions): RelayedEvent {
  const data = event.data;
  if (data.startsWith("[DONE]")) return { kind: "done" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return { kind: "invalid" };
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return { kind: "invalid" };
  const chunk = parsed as Record<string, unknown>;
  if (chunk.error !== undefined && chunk.error !== null) {
    return { kind: "error", text: sseData(chunk) };
  }
  const usage = isUsage(chunk.usage) ? chunk.usage : undefined;
  if (!options.includeUsage && usage && Array.isArray(chunk.choices) && chunk.choices.length === 0) {
    return usage ? { kind: "skip", usage } : { kind: "skip" };
  }
  const text = sseData(rewriteModel(chunk, options));
  return usage ? { kind: "chunk", text, usage } : { kind: "chunk", text };
}

/**
 * The object with `model` replaced, and with `id` and `request_id` set to the client's `request_id`
 * when it sent one; key order kept for `id` and `model`.
 */
export function rewriteModel<T extends Record<string, unknown>>(object: T, options: RewriteOptions): T {
  const out: Record<string, unknown> = { ...object, model: options.model };
  if (options.requestId !== undefined) {
    if ("id" in out) out.id = options.requestId;
    out.request_id = options.requestId;
  }
  return out as T;
}

function isUsage(value: unknown): value is Usage {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export { SSE_DONE, sseData };
