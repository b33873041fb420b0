import { Buffer } from "node:buffer";

/** Receives the lines found by a {@link LineSplitter}. */
export interface LineHandler {
  /** One line, `bytes[start, end)`, without its `\n`. The bytes are only valid during the call. */
  line(bytes: Buffer, start: number, end: number): void;
  /** A line longer than the limit, skipped without being held; `byteLength` excludes its `\n`. */
  overlong(byteLength: number): void;
}

const NEWLINE = 0x0a;

/**
 * Splits a byte stream into `\n`-terminated lines without decoding it. Lines wholly inside a chunk are
 * handed over as views of that chunk (no copy); only a line that spans chunks is copied, and never more
 * than `maxLineBytes` of it, so memory stays bounded by the chunk size plus the line limit whatever the
 * input. A final line without `\n` is still a line; a final `\n` does not start an empty one.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Bytes of an overlong line being skipped until its newline; -1 when not skipping. */
  private skipped = -1;

  constructor(
    private readonly maxLineBytes: number,
    private readonly handler: LineHandler,
  ) {}

  /** Feeds the next chunk of the stream. */
  push(chunk: Uint8Array): void {
    // Buffer#indexOf is memchr; a view over the same memory costs one small object per chunk.
    const bytes = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const length = bytes.length;
    let start = 0;
    let newline = bytes.indexOf(NEWLINE, 0);
    if (this.skipped >= 0 || this.partBytes > 0) {
      if (newline === -1) {
        this.carry(bytes, 0, length);
        return;
      }
      this.carry(bytes, 0, newline);
      this.flush();
      start = newline + 1;
      newline = bytes.indexOf(NEWLINE, start);
    }
    const max = this.maxLineBytes;
    const handler = this.handler;
    while (newline !== -1) {
      if (newline - start > max) handler.overlong(newline - start);
      else handler.line(bytes, start, newline);
      start = newline + 1;
      newline = bytes.indexOf(NEWLINE, start);
    }
    if (start < length) this.carry(bytes, start, length);
  }

  /** Ends the stream, handing over a last line that had no `\n`. */
  end(): void {
    if (this.skipped >= 0 || this.partBytes > 0) this.flush();
  }

  private carry(bytes: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.skipped >= 0) {
      this.skipped += n;
    } else if (this.partBytes + n > this.maxLineBytes) {
      // Stop holding the line as soon as it is known to be too long; only its length is kept.
      this.skipped = this.partBytes + n;
      this.parts = [];
      this.partBytes = 0;
    } else if (n > 0) {
      // A copy, so the caller's chunk (which a stream may reuse) is not retained.
      const copy = Buffer.allocUnsafeSlow(n);
      bytes.copy(copy, 0, start, end);
      this.parts.push(copy);
      this.partBytes += n;
    }
  }

  private flush(): void {
    if (this.skipped >= 0) {
      const n = this.skipped;
      this.skipped = -1;
      this.handler.overlong(n);
      return;
    }
    const line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partBytes);
    const n = this.partBytes;
    this.parts = [];
    this.partBytes = 0;
    this.handler.line(line, 0, n);
  }
}
