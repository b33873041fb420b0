import { UsageError } from "./admin.ts";
import type { CommandSpec } from "./tenant-api.ts";

/** `ftctl chat <model> "<prompt>"`: one streamed chat completion, printed as it arrives. */

export const CHAT_USAGE = `usage: ftctl chat <model or model code> "<prompt>" [--system <text>] [--max-tokens N] [--temperature X]

Streams POST /chat/completions (stream: true) and prints the text as it arrives.`;

export const CHAT_COMMANDS: Record<string, CommandSpec> = {
  chat: {
    usage: CHAT_USAGE,
    options: {
      system: { type: "string" },
      "max-tokens": { type: "string" },
      temperature: { type: "string" },
    },
    run: async (ctx, args, values) => {
      const [model, ...words] = args;
      const prompt = words.join(" ");
      if (!model || !prompt.trim()) throw new UsageError(`expected a model and a prompt\n\n${CHAT_USAGE}`);
      const body: Record<string, unknown> = {
        model,
        messages: [
          ...(values.system ? [{ role: "system", content: values.system }] : []),
          { role: "user", content: prompt },
        ],
      };
      const maxTokens = values["max-tokens"] as string | undefined;
      if (maxTokens !== undefined) {
        if (!/^\d+$/.test(maxTokens) || Number(maxTokens) < 1) {
          throw new UsageError(`--max-tokens must be a positive integer\n\n${CHAT_USAGE}`);
        }
        body.max_tokens = Number(maxTokens);
      }
      const temperature = values.temperature as string | undefined;
      if (temperature !== undefined) {
        const t = Number(temperature);
        if (temperature.trim() === "" || !Number.isFinite(t)) {
          throw new UsageError(`--temperature must be a number\n\n${CHAT_USAGE}`);
        }
        body.temperature = t;
      }
      const response = await ctx.api.chatStream(body);
      if (!response.body) throw new Error("the chat response has no body");
      let wrote = false;
      let ended = false;
      for await (const data of sseData(response.body)) {
        if (data === "[DONE]") {
          ended = true;
          break;
        }
        let chunk: ChatChunk;
        try {
          chunk = JSON.parse(data) as ChatChunk;
        } catch {
          if (wrote) ctx.write("\n");
          ctx.err(`error: the stream held a line that is not JSON: ${data.slice(0, 200)}`);
          return 1;
        }
        if (chunk.error) {
          if (wrote) ctx.write("\n");
          const code = chunk.error.code ?? chunk.error.type;
          ctx.err(`error: ${chunk.error.message ?? "(no message)"}${code ? ` (${code})` : ""}`);
          return 1;
        }
        if (ctx.json) {
          ctx.out(data);
          continue;
        }
        const text = chunk.choices?.[0]?.delta?.content ?? chunk.choices?.[0]?.message?.content;
        if (text) {
          ctx.write(text);
          wrote = true;
        }
      }
      if (wrote) ctx.write("\n");
      if (!ended) {
        ctx.err("error: the stream ended without [DONE]; the answer may be incomplete.");
        return 1;
      }
      return 0;
    },
  },
};

interface ChatChunk {
  choices?: { delta?: { content?: string | null }; message?: { content?: string | null } }[];
  error?: { message?: string; code?: string | null; type?: string | null };
}

/** The `data:` payloads of a server-sent event stream (multi-line data joined with `\n`). */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline = buffer.search(/\r?\n/);
      while (newline >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(buffer[newline] === "\r" ? newline + 2 : newline + 1);
        if (line === "") {
          if (data.length) yield data.join("\n");
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(5).replace(/^ /, ""));
        }
        newline = buffer.search(/\r?\n/);
      }
      if (done) break;
    }
    if (buffer.startsWith("data:")) data.push(buffer.slice(5).replace(/^ /, ""));
    if (data.length) yield data.join("\n");
  } finally {
    await reader.cancel().catch(() => {});
  }
}
