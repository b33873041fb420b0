import { z } from "zod";
import { InvalidRequestError, PayloadTooLargeError } from "../errors.ts";
import { toInvalidRequest } from "../http/request-errors.ts";

/**
 * The chat completions request as the OpenAI SDKs and the zhipuai SDK send it. Unknown fields are a 400
 * `unknown_parameter` (a misspelt `max_token` should not be silently ignored). `null` is read as absent:
 * the zhipuai SDK sends `response_format: null` and `thinking: null` on every call.
 *
 * Every field either SDK can send is honoured or accepted and ignored (the README lists which):
 * - honoured: `do_sample: false` (greedy; the zhipuai SDK turns temperature 0 into it), `stop`, `seed`,
 *   `request_id` (the response's `id` and `request_id`), `user_id` / `user` (recorded in the request
 *   log), and the sampling fields;
 * - ignored: `thinking` (fine-tuned models have no thinking mode), `response_format` (a fine-tuned model
 *   answers in the format it was trained on), `tools` / `tool_choice` (no tool calls are made: the
 *   answer is always text), `meta` (role-play metadata of Zhipu's CharGLM), `sensitive_word_check` and
 *   `extra` (CodeGeeX's context). Their shapes are still checked, so a malformed value is a 400.
 */

/** Bounds on what one request may ask; each is a 400/413 with a message naming the bound. */
export interface ChatLimits {
  /** Raw body size (413 above). */
  readonly maxBodyBytes: number;
  /** Sum of all message contents, in characters. */
  readonly maxPromptChars: number;
  readonly maxMessages: number;
  /** Ceiling of `max_tokens`; the model's context is the other one. */
  readonly maxTokens: number;
}

export const DEFAULT_CHAT_LIMITS: ChatLimits = Object.freeze({
  maxBodyBytes: 1024 * 1024,
  maxPromptChars: 500_000,
  maxMessages: 1_000,
  maxTokens: 4_096,
});

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
  readonly name?: string;
}

/** A validated request, normalised: text parts flattened, `developer` read as `system`. */
export interface ChatCompletionRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly temperature?: number;
  readonly topP?: number;
  readonly maxTokens?: number;
  readonly stop?: readonly string[];
  readonly seed?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  /** Zhipu's client-chosen request id, echoed in the response. */
  readonly requestId?: string;
  /** The end user, from OpenAI's `user` or Zhipu's `user_id`: recorded, not sent upstream. */
  readonly endUser?: string;
  /** Characters over all messages. */
  readonly promptChars: number;
}

const numberIn = (low: number, high: number) =>
  z
    .number({ error: `must be a number from ${low} to ${high}` })
    .min(low, { error: `must be a number from ${low} to ${high}` })
    .max(high, { error: `must be a number from ${low} to ${high}` })
    .nullish();

const textPart = z.object({ type: z.literal("text"), text: z.string() }).loose();
const content = z.union([z.string(), z.array(textPart)], {
  error: "must be a string or an array of text parts ({type: 'text', text})",
});

const message = z
  .object({
    role: z.enum(["system", "developer", "user", "assistant"], {
      error: "must be one of system, user, assistant",
    }),
    // null only makes sense on an assistant turn (OpenAI allows it there); read as "".
    content: content.nullable(),
    name: z.string().max(256).nullish(),
  })
  .strict();

function requestSchema(limits: ChatLimits) {
  return z
    .object({
      model: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).max(256),
      messages: z
        .array(message, { error: "must be an array of messages" })
        .min(1, { error: "must hold at least one message" })
        .max(limits.maxMessages, { error: `may hold at most ${limits.maxMessages} messages` }),
      stream: z.boolean({ error: "must be a boolean" }).nullish(),
      stream_options: z
        .object({ include_usage: z.boolean({ error: "must be a boolean" }).nullish() })
        .strict()
        .nullish(),
      temperature: numberIn(0, 2),
      top_p: numberIn(0, 1),
      max_tokens: z
        .number({ error: "must be an integer" })
        .int({ error: "must be an integer" })
        .min(1, { error: `must be an integer from 1 to ${limits.maxTokens}` })
        .max(limits.maxTokens, { error: `must be an integer from 1 to ${limits.maxTokens}` })
        .nullish(),
      max_completion_tokens: z
        .number({ error: "must be an integer" })
        .int({ error: "must be an integer" })
        .min(1, { error: `must be an integer from 1 to ${limits.maxTokens}` })
        .max(limits.maxTokens, { error: `must be an integer from 1 to ${limits.maxTokens}` })
        .nullish(),
      stop: z
        .union([z.string().min(1), z.array(z.string().min(1)).min(1).max(4)], {
          error: "must be a non-empty string or an array of up to 4 of them",
        })
        .nullish(),
      seed: z.number({ error: "must be an integer" }).int({ error: "must be an integer" }).nullish(),
      user: z.string({ error: "must be a string" }).max(256).nullish(),
      n: z.literal(1, { error: "only n = 1 is supported" }).nullish(),
      presence_penalty: numberIn(-2, 2),
      frequency_penalty: numberIn(-2, 2),
      // zhipuai SDK fields.
      request_id: z
        .string({ error: "must be a string" })
        .min(1)
        .max(128, { error: "may be at most 128 characters" })
        .nullish(),
      do_sample: z.boolean({ error: "must be a boolean" }).nullish(),
      user_id: z
        .string({ error: "must be a string" })
        .min(1, { error: "must not be empty" })
        .max(128, { error: "may be at most 128 characters" })
        .nullish(),
      sensitive_word_check: z.object({}, { error: "must be an object" }).loose().nullish(),
      // Accepted and ignored (see the header).
      thinking: z
        .object({
          type: z.enum(["enabled", "disabled"], { error: "must be 'enabled' or 'disabled'" }).nullish(),
        })
        .loose()
        .nullish(),
      response_format: z
        .object({
          type: z.enum(["text", "json_object", "json_schema"], {
            error: "must be 'text', 'json_object' or 'json_schema'",
          }),
        })
        .loose()
        .nullish(),
      tools: z.array(z.object({}).loose(), { error: "must be an array of tool objects" }).nullish(),
      tool_choice: z
        .union([z.string(), z.object({}).loose()], { error: "must be a string or an object" })
        .nullish(),
      meta: z.record(z.string(), z.string(), { error: "must be an object of strings" }).nullish(),
      extra: z.object({}, { error: "must be an object" }).loose().nullish(),
    })
    .strict();
}

const schemas = new WeakMap<ChatLimits, ReturnType<typeof requestSchema>>();

/**
 * Parses and validates a chat completions body. Throws PayloadTooLargeError (413) over
 * `limits.maxBodyBytes`, InvalidRequestError (400, with `param`) for anything else wrong.
 */
export function parseChatRequest(
  body: Buffer,
  limits: ChatLimits = DEFAULT_CHAT_LIMITS,
): ChatCompletionRequest {
  if (body.length > limits.maxBodyBytes) {
    throw new PayloadTooLargeError(
      `The request body is ${body.length} bytes; chat requests may be at most ${limits.maxBodyBytes} bytes.`,
    );
  }
  if (body.length === 0) throw new InvalidRequestError("The request body must be a JSON object.");
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString("utf8"));
  } catch {
    throw new InvalidRequestError("The request body is not valid JSON.", null, "invalid_json");
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new InvalidRequestError("The request body must be a JSON object.");
  }
  let schema = schemas.get(limits);
  if (!schema) {
    schema = requestSchema(limits);
    schemas.set(limits, schema);
  }
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw toInvalidRequest(parsed.error);
  const input = parsed.data;

  let promptChars = 0;
  const messages = input.messages.map((m): ChatMessage => {
    const text =
      m.content === null
        ? ""
        : typeof m.content === "string"
          ? m.content
          : m.content.map((p) => p.text).join("");
    promptChars += text.length;
    const role: ChatRole = m.role === "developer" ? "system" : m.role;
    return m.name ? { role, content: text, name: m.name } : { role, content: text };
  });
  if (promptChars > limits.maxPromptChars) {
    throw new InvalidRequestError(
      `The messages hold ${promptChars} characters; a chat request may hold at most ${limits.maxPromptChars}.`,
      "messages",
      "prompt_too_long",
    );
  }
  if (!messages.some((m) => m.role === "user")) {
    throw new InvalidRequestError("messages must hold at least one user message.", "messages");
  }

  // Zhipu's do_sample=false means greedy decoding, which is temperature 0 for an OpenAI server.
  const temperature = input.do_sample === false ? 0 : (input.temperature ?? undefined);
  const maxTokens = input.max_completion_tokens ?? input.max_tokens ?? undefined;
  const stop = typeof input.stop === "string" ? [input.stop] : (input.stop ?? undefined);
  return strip({
    model: input.model,
    messages,
    stream: input.stream ?? false,
    includeUsage: input.stream_options?.include_usage ?? false,
    temperature,
    topP: input.top_p ?? undefined,
    maxTokens,
    stop,
    seed: input.seed ?? undefined,
    endUser: input.user ?? input.user_id ?? undefined,
    presencePenalty: input.presence_penalty ?? undefined,
    frequencyPenalty: input.frequency_penalty ?? undefined,
    requestId: input.request_id ?? undefined,
    promptChars,
  });
}

/**
 * The body for the OpenAI-compatible inference server. It always asks for usage when streaming, so the
 * platform can log it; the relay drops the usage chunk when the client did not ask for it.
 */
export function upstreamBody(request: ChatCompletionRequest, upstreamModel: string): Record<string, unknown> {
  return strip({
    model: upstreamModel,
    messages: request.messages,
    stream: request.stream,
    stream_options: request.stream ? { include_usage: true } : undefined,
    temperature: request.temperature,
    top_p: request.topP,
    max_tokens: request.maxTokens,
    stop: request.stop,
    seed: request.seed,
    presence_penalty: request.presencePenalty,
    frequency_penalty: request.frequencyPenalty,
  });
}

function strip<T extends Record<string, unknown>>(object: T): T {
  for (const key of Object.keys(object)) if (object[key] === undefined) delete object[key];
  return object;
}
