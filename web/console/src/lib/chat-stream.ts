import { SseParser } from "../../../../lambdas/core/chat/sse.ts";

/**
 * Reads a streamed `POST /chat/completions` answer (server-sent events, `data: {chunk}` … `data:
 * [DONE]`), handing each piece of text to `onText` as it arrives. The parser is the platform's own
 * (lambdas/core/chat/sse.ts): any split of bytes, any line end.
 */
export interface StreamOutcome {
  readonly text: string;
  readonly finishReason: string | null;
  readonly usage: { readonly prompt_tokens?: number; readonly completion_tokens?: number } | null;
}

/** An error event inside the stream (`data: {"error": {...}}`), after the 200 went out. */
export class StreamError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
    this.name = "StreamError";
  }
}

interface ChunkShape {
  readonly choices?: readonly {
    readonly delta?: { readonly content?: string | null; readonly reasoning_content?: string | null };
    readonly finish_reason?: string | null;
  }[];
  readonly usage?: StreamOutcome["usage"];
  readonly error?: { readonly message?: string; readonly code?: string | null };
}

export async function readChatStream(
  body: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<StreamOutcome> {
  const parser = new SseParser();
  const reader = body.getReader();
  let text = "";
  let finishReason: string | null = null;
  let usage: StreamOutcome["usage"] = null;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const event of parser.push(value)) {
        if (event.data === "[DONE]") return { text, finishReason, usage };
        const chunk = parseChunk(event.data);
        if (!chunk) continue;
        if (chunk.error) {
          throw new StreamError(chunk.error.message ?? "The stream failed.", chunk.error.code ?? null);
        }
        for (const choice of chunk.choices ?? []) {
          const piece = choice.delta?.content;
          if (piece) {
            text += piece;
            onText(piece);
          }
          if (choice.finish_reason) finishReason = choice.finish_reason;
        }
        if (chunk.usage) usage = chunk.usage;
      }
    }
  } finally {
    reader.releaseLock();
  }
  return { text, finishReason, usage };
}

function parseChunk(data: string): ChunkShape | undefined {
  try {
    const parsed: unknown = JSON.parse(data);
    return typeof parsed === "object" && parsed !== null ? (parsed as ChunkShape) : undefined;
  } catch {
    return undefined;
  }
}
