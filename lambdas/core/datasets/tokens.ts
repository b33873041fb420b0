import { Buffer } from "node:buffer";

/**
 * Counts the tokens of one message's text. The validator ships a labelled estimate because no tokenizer
 * is bundled into the Lambda; a real tokenizer for a base-model family can be plugged in through this
 * interface, and its `method` names it in every report so estimates are never mistaken for counts.
 */
export interface TokenCounter {
  /** Shown in `statistics.tokens.method`, e.g. `estimate:utf8-bytes/4-cjk-aware` or `tokenizer:qwen2`. */
  readonly method: string;
  /** Tokens of one message's content, without chat-template markers. */
  count(text: string): number;
  /** Tokens a chat template adds around each message (role header, end marker). */
  readonly messageOverhead: number;
}

/**
 * The default estimate. BPE tokenizers of current open models average about 4 bytes per token on
 * English and code, but about one token per CJK character (3 UTF-8 bytes). So: ASCII characters count
 * 1/4 token each and every other character counts 1 token, which overestimates 2-byte scripts (Cyrillic,
 * accented Latin) a little; overestimating is the safe side for over-length checks.
 *
 * The split is computed without a per-character loop: for a string of `a` ASCII and `w` wider
 * characters, UTF-16 length is about `a + w` and UTF-8 length `a + 3w`, so `w = (bytes - length) / 2`.
 * `Buffer.byteLength` is native, which keeps the estimate off the validator's critical path.
 */
export const utf8EstimateTokenCounter: TokenCounter = {
  method: "estimate:utf8-bytes/4-cjk-aware",
  messageOverhead: 4,
  count(text: string): number {
    const units = text.length;
    if (units === 0) return 0;
    const wide = (Buffer.byteLength(text, "utf8") - units) / 2;
    return Math.ceil((units - wide) / 4 + wide);
  },
};
