import { type Buffer, isAscii, isUtf8 } from "node:buffer";
import { MAX_UPLOAD_FILE_BYTES } from "../files/file-record.ts";
import type { DatasetErrorCode } from "./codes.ts";
import { BoundedHashSet, DEFAULT_MAX_TRACKED_EXAMPLES, hash64 } from "./duplicates.ts";
import { type ExampleFormat, type IssueSink, inspectExample, type PreferenceExample } from "./example.ts";
import { type LineHandler, LineSplitter } from "./lines.ts";
import { type TokenCounter, utf8EstimateTokenCounter } from "./tokens.ts";

/** How the mixed-formats error names each format. */
const FORMAT_NAMES: Readonly<Record<ExampleFormat, string>> = {
  messages: '"messages"',
  legacy: 'legacy "input"/"target"',
  preference: 'preference "input"/"preferred_output"/"non_preferred_output"',
};
/** Limits applied while validating; every field has a documented default in {@link DEFAULT_LIMITS}. */
export interface ValidationLimits {
  /** Fewer valid examples than this is an error (`too_few_examples`). */
  readonly minExamples: number;
  /** A longer line is skipped unread (`line_too_long`); bounds the memory one line can take. */
  readonly maxLineBytes: number;
  /** Reading stops past this many bytes (`file_too_large`). */
  readonly maxFileBytes: number;
  /** At most this many errors are listed; all are still counted in `errorCounts`. */
  readonly maxErrors: number;
  /** When set, an example with more tokens than this is an error (`too_many_tokens`). */
  readonly maxTokensPerExample?: number;
  /** Distinct examples remembered for duplicate counting (16 bytes each); see duplicates.ts. */
  readonly maxTrackedExamples: number;
}

/**
 * Defaults: 10 examples minimum (as OpenAI); 4 MiB per line (about a million tokens, far beyond any
 * context window, yet small enough that a line and its parsed form fit a 1 GiB Lambda many times over);
 * the upload limit (1 GiB) per file; 100 listed errors; no per-example token limit; 4,194,304 tracked
 * examples (a 64 MiB duplicate table at most).
 */
export const DEFAULT_LIMITS: Readonly<ValidationLimits> = Object.freeze({
  minExamples: 10,
  maxLineBytes: 4 * 1024 * 1024,
  maxFileBytes: MAX_UPLOAD_FILE_BYTES,
  maxErrors: 100,
  maxTrackedExamples: DEFAULT_MAX_TRACKED_EXAMPLES,
});

/** Options of {@link validateDataset}. */
export interface ValidationOptions {
  readonly limits?: Partial<ValidationLimits>;
  /** Base model name → maximum sequence length in tokens; examples longer are counted per model. */
  readonly contextLimits?: Readonly<Record<string, number>>;
  /** Defaults to the labelled estimate {@link utf8EstimateTokenCounter}. */
  readonly tokenCounter?: TokenCounter;
}

/** One listed error. `line` is 1-based, 0 for a file-level error; `path` is a JSON path in the line. */
export interface ValidationError {
  readonly line: number;
  readonly path: string;
  readonly code: DatasetErrorCode;
  readonly message: string;
}

/** A distribution over examples. */
export interface Distribution {
  readonly total: number;
  readonly min: number;
  readonly mean: number;
  readonly max: number;
}

/**
 * What the validator measured. Turns, characters and tokens cover the valid examples (those with no
 * error); when reading stopped at `file_too_large`, everything covers the bytes read up to there.
 */
export interface DatasetStatistics {
  /** Valid examples, in either format. */
  readonly examples: number;
  /** Of `examples`, those in the legacy `input`/`target` format. */
  readonly legacyExamples: number;
  /**
   * Preference (DPO) pairs, when the file holds them: `pairs` valid ones, of which `whitespaceOnly`
   * have outputs that differ only in white space (a pair that teaches little; not an error).
   */
  readonly preference?: {
    readonly pairs: number;
    readonly whitespaceOnly: number;
    readonly whitespaceOnlyShare: number;
  };
  /** Lines read, blank and invalid ones included (a final newline does not start another). */
  readonly lines: number;
  readonly bytes: number;
  /** The file started with a UTF-8 byte order mark, which was accepted and skipped. */
  readonly byteOrderMark: boolean;
  /** Messages per example (a legacy example is 2; a preference pair counts its prompt and both outputs). */
  readonly turns: Distribution;
  /** Characters of content per role, counted in UTF-16 code units (JavaScript string length). */
  readonly characters: { readonly system: number; readonly user: number; readonly assistant: number };
  /** Tokens per example (content plus the counter's per-message template overhead). */
  readonly tokens: Distribution & {
    /** How tokens were counted: an `estimate:` prefix means no tokenizer was used. */
    readonly method: string;
    /** Tokens of assistant content: what training computes loss on. */
    readonly assistant: number;
  };
  /** Per base model in the context limits: examples with more tokens than its maximum sequence length. */
  readonly overLength: Record<string, number>;
  /** Exact duplicates: valid examples whose line is byte-identical (ignoring surrounding whitespace) to an earlier one. */
  readonly duplicates: {
    /** Examples that repeat an earlier one (so `examples - count` are distinct). */
    readonly count: number;
    /** Distinct examples remembered; later ones were only compared against these when `capped`. */
    readonly trackedExamples: number;
    readonly capped: boolean;
  };
}

/** The outcome of validating one file. A file with any error is `error` and is never trained on. */
export interface ValidationReport {
  readonly status: "processed" | "error";
  /** `mixed` when formats are mixed (an error); null when no line was recognisable as an example. */
  readonly format: ExampleFormat | "mixed" | null;
  readonly statistics: DatasetStatistics;
  /** File-level errors first, then line errors in line order; at most `maxErrors`. */
  readonly errors: ValidationError[];
  /** Every error counted by code, listed or not. */
  readonly errorCounts: Record<string, number>;
  /** True when more errors were found than listed. */
  readonly truncatedErrors: boolean;
}

/** A byte source: an S3 GetObject body (web stream), a Node readable, or any async iterable. */
export type ByteSource = AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;

/**
 * Validates a JSONL training file read as a stream, in memory bounded by the chunk size, the line limit
 * and the duplicate table, whatever the file size. Stops reading (and cancels the stream) at the file
 * size limit. See lambdas/core/datasets/README.md for the rules and the decisions behind them.
 */
export async function validateDataset(
  source: ByteSource,
  options: ValidationOptions = {},
): Promise<ValidationReport> {
  const validator = new DatasetValidator(options);
  if (isReadableStream(source)) {
    const reader = source.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!validator.push(value)) {
          await reader.cancel();
          break;
        }
      }
    } finally {
      reader.releaseLock();
    }
  } else {
    // Breaking out of for-await calls the iterator's return(), which destroys a Node stream.
    for await (const chunk of source) if (!validator.push(chunk)) break;
  }
  return validator.finish();
}

function isReadableStream(source: ByteSource): source is ReadableStream<Uint8Array> {
  return typeof (source as ReadableStream<Uint8Array>).getReader === "function";
}

const BOM_0 = 0xef;
const BOM_1 = 0xbb;
const BOM_2 = 0xbf;

/**
 * The push-based core of {@link validateDataset}, for callers that own the read loop: `push` each chunk
 * (it returns false once reading should stop), then `finish` once.
 */
export class DatasetValidator implements LineHandler {
  private readonly limits: ValidationLimits;
  private readonly counter: TokenCounter;
  private readonly splitter: LineSplitter;
  private readonly duplicates: BoundedHashSet;
  private readonly hash = new Uint32Array(2);
  private readonly contextModels: string[];
  private readonly contextMaxima: number[];
  private readonly overLength: number[];

  private bytes = 0;
  private lineNumber = 0;
  private stopped = false;
  private tooLarge = false;
  private byteOrderMark = false;

  private readonly errors: ValidationError[] = [];
  private readonly errorCounts: Record<string, number> = {};
  private errorTotal = 0;

  private examples = 0;
  private legacyExamples = 0;
  private preferencePairs = 0;
  private whitespaceOnlyPairs = 0;
  private duplicateCount = 0;
  private turnsTotal = 0;
  private turnsMin = Number.POSITIVE_INFINITY;
  private turnsMax = 0;
  private tokensTotal = 0;
  private tokensMin = Number.POSITIVE_INFINITY;
  private tokensMax = 0;
  private assistantTokens = 0;
  private systemChars = 0;
  private userChars = 0;
  private assistantChars = 0;

  private readonly formatLines: Record<ExampleFormat, { count: number; first: number }> = {
    messages: { count: 0, first: 0 },
    legacy: { count: 0, first: 0 },
    preference: { count: 0, first: 0 },
  };

  /** Records a line-level issue against the line being read; built once, not per line. */
  private readonly sink: IssueSink = (path, code, message) =>
    this.addError(this.lineNumber, path, code, message);

  constructor(options: ValidationOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.counter = options.tokenCounter ?? utf8EstimateTokenCounter;
    this.splitter = new LineSplitter(this.limits.maxLineBytes, this);
    this.duplicates = new BoundedHashSet(this.limits.maxTrackedExamples);
    const contexts = Object.entries(options.contextLimits ?? {});
    this.contextModels = contexts.map(([model]) => model);
    this.contextMaxima = contexts.map(([, max]) => max);
    this.overLength = contexts.map(() => 0);
  }

  /** Feeds the next chunk; returns false when reading should stop (the file is over the size limit). */
  push(chunk: Uint8Array): boolean {
    if (this.stopped) return false;
    this.bytes += chunk.byteLength;
    if (this.bytes > this.limits.maxFileBytes) {
      this.tooLarge = true;
      this.stopped = true;
      return false;
    }
    this.splitter.push(chunk);
    return true;
  }

  /** Ends the input and returns the report. */
  finish(): ValidationReport {
    if (!this.stopped) this.splitter.end();
    this.stopped = true;
    const fileErrors: ValidationError[] = [];
    const fileError = (line: number, code: DatasetErrorCode, message: string) => {
      fileErrors.push({ line, path: "", code, message });
      this.errorCounts[code] = (this.errorCounts[code] ?? 0) + 1;
      this.errorTotal++;
    };
    const present = (Object.entries(this.formatLines) as [ExampleFormat, { count: number; first: number }][])
      .filter(([, seen]) => seen.count > 0)
      .sort(([, a], [, b]) => b.count - a.count);
    if (this.bytes === 0) {
      fileError(0, "empty_file", "The file is empty.");
    } else if (this.tooLarge) {
      fileError(
        0,
        "file_too_large",
        `The file is larger than ${this.limits.maxFileBytes} bytes; validation stopped there.`,
      );
    } else if (this.examples < this.limits.minExamples) {
      fileError(
        0,
        "too_few_examples",
        `The file has ${this.examples} valid example(s); at least ${this.limits.minExamples} are required.`,
      );
    }
    if (present.length > 1) {
      // One error on the first line of the rarest format: the likely strays, without an error per line.
      const [majority] = present[0]!;
      const [minority, stray] = present[present.length - 1]!;
      const counts = present.map(([format, seen]) => `${seen.count} ${FORMAT_NAMES[format]} line(s)`);
      fileError(
        stray.first,
        "mixed_formats",
        `The file mixes formats: ${counts.join(" and ")}; the first ${minority} line is this one. Use one format per file (${majority} is the majority here).`,
      );
    }
    const errors = [...fileErrors, ...this.errors].slice(0, this.limits.maxErrors);
    return {
      status: this.errorTotal > 0 ? "error" : "processed",
      format: present.length > 1 ? "mixed" : (present[0]?.[0] ?? null),
      statistics: this.statistics(),
      errors,
      errorCounts: { ...this.errorCounts },
      truncatedErrors: this.errorTotal > errors.length,
    };
  }

  /** @internal A line from the splitter. */
  line(bytes: Buffer, start: number, end: number): void {
    const lineNumber = ++this.lineNumber;
    if (
      end - start >= 3 &&
      bytes[start] === BOM_0 &&
      bytes[start + 1] === BOM_1 &&
      bytes[start + 2] === BOM_2
    ) {
      if (lineNumber === 1) {
        this.byteOrderMark = true;
        start += 3;
      } else {
        this.sink(
          "",
          "invalid_json",
          "The line starts with a byte order mark (U+FEFF); only the start of the file may have one (were files concatenated?).",
        );
        return;
      }
    }
    // JSON whitespace (and the \r of CRLF files) around the object is accepted, and ignored by the hash.
    while (start < end && isSpace(bytes[start]!)) start++;
    while (end > start && isSpace(bytes[end - 1]!)) end--;
    if (start === end) {
      this.sink("", "blank_line", "The line is empty; remove blank lines (one final newline is fine).");
      return;
    }
    // Lines are nearly always ASCII in English data: validating that is ~10x faster than UTF-8 decoding,
    // and Latin-1 decoding of ASCII is a plain copy. Otherwise: strict UTF-8 validation, then decoding.
    const line = bytes.subarray(start, end);
    let text: string;
    if (isAscii(line)) {
      text = bytes.toString("latin1", start, end);
    } else if (isUtf8(line)) {
      text = bytes.toString("utf8", start, end);
    } else {
      this.sink("", "invalid_utf8", "The line is not valid UTF-8; save the file as UTF-8.");
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      const detail = error instanceof Error ? error.message.slice(0, 160) : "";
      this.sink("", "invalid_json", `The line is not valid JSON: ${detail}`);
      return;
    }
    const errorsBefore = this.errorTotal;
    const format = inspectExample(value, this.sink);
    if (format === undefined) return;
    const seen = this.formatLines[format];
    if (seen.count++ === 0) seen.first = lineNumber;
    if (this.errorTotal === errorsBefore) this.measure(value, format, bytes, start, end);
  }

  /** @internal An overlong line from the splitter. */
  overlong(byteLength: number): void {
    this.lineNumber++;
    this.sink(
      "",
      "line_too_long",
      `The line is ${byteLength} bytes; at most ${this.limits.maxLineBytes} are allowed per line. It was not read.`,
    );
  }

  private measure(
    value: unknown,
    format: ExampleFormat,
    bytes: Uint8Array,
    start: number,
    end: number,
  ): void {
    let turns: number;
    let tokens = 0;
    if (format === "preference") {
      const pair = value as PreferenceExample;
      const prompt = pair.input.messages;
      const [preferred] = pair.preferred_output;
      const [rejected] = pair.non_preferred_output;
      turns = prompt.length + 2;
      for (const { role, content } of prompt) tokens += this.countTurn(role, content);
      tokens +=
        this.countTurn("assistant", preferred.content) + this.countTurn("assistant", rejected.content);
      this.preferencePairs++;
      if (preferred.content.replace(/\s+/g, "") === rejected.content.replace(/\s+/g, ""))
        this.whitespaceOnlyPairs++;
    } else if (format === "legacy") {
      const { input, target } = value as { input: string; target: string };
      turns = 2;
      tokens = this.countTurn("user", input) + this.countTurn("assistant", target);
      this.legacyExamples++;
    } else {
      const messages = (value as { messages: { role: string; content: string }[] }).messages;
      turns = messages.length;
      for (let i = 0; i < turns; i++) {
        const { role, content } = messages[i]!;
        tokens += this.countTurn(role, content);
      }
    }
    this.examples++;
    this.turnsTotal += turns;
    if (turns < this.turnsMin) this.turnsMin = turns;
    if (turns > this.turnsMax) this.turnsMax = turns;
    this.tokensTotal += tokens;
    if (tokens < this.tokensMin) this.tokensMin = tokens;
    if (tokens > this.tokensMax) this.tokensMax = tokens;
    const maxima = this.contextMaxima;
    for (let i = 0; i < maxima.length; i++) if (tokens > maxima[i]!) this.overLength[i]!++;
    const limit = this.limits.maxTokensPerExample;
    if (limit !== undefined && tokens > limit) {
      this.sink(
        "",
        "too_many_tokens",
        `The example has about ${tokens} tokens (${this.counter.method}); at most ${limit} are allowed.`,
      );
    }
    hash64(bytes, start, end, this.hash);
    if (this.duplicates.addOrHas(this.hash[0]!, this.hash[1]!)) this.duplicateCount++;
  }

  /** One message's tokens with the template overhead, and its characters (and assistant tokens) by role. */
  private countTurn(role: string, content: string): number {
    const n = this.counter.count(content);
    if (role === "assistant") {
      this.assistantTokens += n;
      this.assistantChars += content.length;
    } else if (role === "user") {
      this.userChars += content.length;
    } else {
      this.systemChars += content.length;
    }
    return n + this.counter.messageOverhead;
  }

  private addError(line: number, path: string, code: DatasetErrorCode, message: string): void {
    this.errorCounts[code] = (this.errorCounts[code] ?? 0) + 1;
    this.errorTotal++;
    if (this.errors.length < this.limits.maxErrors) this.errors.push({ line, path, code, message });
  }

  private statistics(): DatasetStatistics {
    const n = this.examples;
    const mean = (total: number) => (n === 0 ? 0 : Math.round((total / n) * 100) / 100);
    const overLength: Record<string, number> = {};
    this.contextModels.forEach((model, i) => {
      overLength[model] = this.overLength[i]!;
    });
    return {
      examples: n,
      legacyExamples: this.legacyExamples,
      ...(this.preferencePairs > 0
        ? {
            preference: {
              pairs: this.preferencePairs,
              whitespaceOnly: this.whitespaceOnlyPairs,
              whitespaceOnlyShare:
                Math.round((this.whitespaceOnlyPairs / this.preferencePairs) * 10_000) / 10_000,
            },
          }
        : {}),
      lines: this.lineNumber,
      bytes: this.bytes,
      byteOrderMark: this.byteOrderMark,
      turns: {
        total: this.turnsTotal,
        min: n === 0 ? 0 : this.turnsMin,
        mean: mean(this.turnsTotal),
        max: this.turnsMax,
      },
      characters: { system: this.systemChars, user: this.userChars, assistant: this.assistantChars },
      tokens: {
        method: this.counter.method,
        total: this.tokensTotal,
        min: n === 0 ? 0 : this.tokensMin,
        mean: mean(this.tokensTotal),
        max: this.tokensMax,
        assistant: this.assistantTokens,
      },
      overLength,
      duplicates: {
        count: this.duplicateCount,
        trackedExamples: this.duplicates.tracked,
        capped: this.duplicates.capped,
      },
    };
  }
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0d || byte === 0x09;
}
