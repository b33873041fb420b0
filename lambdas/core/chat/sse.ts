/**
 * Server-sent events as the chat path needs them: an incremental parser for the inference server's
 * stream (any split of bytes, `\n`, `\r\n` or `\r` line ends, comments, multi-line data) and the framing
 * of what the platform writes.
 */

/** One event: its `event` field (null when absent) and its data lines joined by `\n`. */
export interface SseEvent {
  readonly event: string | null;
  readonly data: string;
}

/**
 * Feeds bytes in, gets whole events out, as soon as their terminating blank line has arrived: an event
 * is never held back waiting for a later one.
 */
export class SseParser {
  private readonly decoder = new TextDecoder("utf-8");
  private pending = "";
  private data: string[] = [];
  private event: string | null = null;
  // A `\r` ended the last piece: a `\n` at the start of the next is the same line end.
  private skipLf = false;

  /** The events completed by `bytes`. */
  push(bytes: Uint8Array | string): SseEvent[] {
    let text = typeof bytes === "string" ? bytes : this.decoder.decode(bytes, { stream: true });
    if (this.skipLf && text.startsWith("\n")) text = text.slice(1);
    this.skipLf = false;
    const events: SseEvent[] = [];
    let buffer = this.pending + text;
    let start = 0;
    for (;;) {
      const cr = buffer.indexOf("\r", start);
      const lf = buffer.indexOf("\n", start);
      if (cr < 0 && lf < 0) break;
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      const line = buffer.slice(start, end);
      if (buffer[end] === "\r") {
        if (end + 1 < buffer.length) start = buffer[end + 1] === "\n" ? end + 2 : end + 1;
        else {
          start = end + 1;
          this.skipLf = true;
        }
      } else start = end + 1;
      this.line(line, events);
    }
    buffer = buffer.slice(start);
    this.pending = buffer;
    return events;
  }

  /** The event left open when the stream ended without a blank line (the spec drops it; so do we). */
  get hasPartialEvent(): boolean {
    return this.pending.length > 0 || this.data.length > 0;
  }

  private line(line: string, events: SseEvent[]): void {
    if (line === "") {
      if (this.data.length > 0) events.push({ event: this.event, data: this.data.join("\n") });
      this.data = [];
      this.event = null;
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    // `id` and `retry` mean nothing to a relay of one response.
  }
}

/** `data: <json>\n\n` */
export function sseData(payload: unknown): string {
  return `data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`;
}

/** The stream's end marker of the OpenAI protocol. */
export const SSE_DONE = "data: [DONE]\n\n";
