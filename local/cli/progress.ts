/** Where a progress bar writes: stderr, or anything with `write` (tests). */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/**
 * A byte progress bar: bytes done, percent and MB/s. On a TTY one line redrawn with `\r` (at most every
 * 100 ms); otherwise a plain line every few seconds, so logs stay readable.
 */
export class ProgressBar {
  private readonly started: number;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private done = 0;
  private finished = false;

  constructor(
    private readonly total: number,
    private readonly stream: ProgressStream,
    private readonly label = "upload",
    private readonly now: () => number = Date.now,
    private readonly plainIntervalMs = 5000,
  ) {
    this.started = now();
  }

  update(done: number): void {
    this.done = done;
    const interval = this.stream.isTTY ? 100 : this.plainIntervalMs;
    const at = this.now();
    if (at - this.lastDraw < interval) return;
    this.lastDraw = at;
    this.draw();
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.draw();
    if (this.stream.isTTY) this.stream.write("\n");
  }

  /** The line as it would be drawn now. */
  line(): string {
    const seconds = Math.max((this.now() - this.started) / 1000, 0.001);
    const percent = this.total > 0 ? Math.floor((this.done / this.total) * 100) : 100;
    const rate = this.done / 1e6 / seconds;
    return `${this.label} ${formatBytes(this.done)} / ${formatBytes(this.total)}  ${String(percent).padStart(3)}%  ${rate.toFixed(1)} MB/s`;
  }

  private draw(): void {
    if (!this.stream.isTTY) {
      this.stream.write(`${this.line()}\n`);
      return;
    }
    const width = 24;
    const filled = this.total > 0 ? Math.round((this.done / this.total) * width) : width;
    const bar = `[${"#".repeat(filled)}${".".repeat(Math.max(0, width - filled))}]`;
    this.stream.write(`\r${bar} ${this.line()}\x1b[K`);
  }
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
