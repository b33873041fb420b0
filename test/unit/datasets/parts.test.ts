import { describe, expect, it } from "vitest";
import { BoundedHashSet, hash64 } from "../../../lambdas/core/datasets/duplicates.ts";
import { checkExample, toCanonicalMessages } from "../../../lambdas/core/datasets/example.ts";
import { type LineHandler, LineSplitter } from "../../../lambdas/core/datasets/lines.ts";
import { utf8EstimateTokenCounter } from "../../../lambdas/core/datasets/tokens.ts";

function split(chunks: string[], maxLineBytes = 100): string[] {
  const seen: string[] = [];
  const handler: LineHandler = {
    line: (bytes, start, end) => seen.push(bytes.toString("utf8", start, end)),
    overlong: (n) => seen.push(`<overlong ${n}>`),
  };
  const splitter = new LineSplitter(maxLineBytes, handler);
  for (const chunk of chunks) splitter.push(Buffer.from(chunk));
  splitter.end();
  return seen;
}

describe("LineSplitter", () => {
  it("splits on newlines and joins lines that span chunks", () => {
    expect(split(["a\nbc", "d", "e\nf\n"])).toEqual(["a", "bcde", "f"]);
  });

  it("does not start an empty line after a final newline but keeps a last line without one", () => {
    expect(split(["a\n"])).toEqual(["a"]);
    expect(split(["a\nb"])).toEqual(["a", "b"]);
    expect(split(["a\n\n"])).toEqual(["a", ""]);
  });

  it("reports an overlong line by length, whether it is inside one chunk or spans several", () => {
    expect(split(["ok\n0123456789\nok\n"], 5)).toEqual(["ok", "<overlong 10>", "ok"]);
    expect(split(["ok\n0123", "4567", "89\nok"], 5)).toEqual(["ok", "<overlong 10>", "ok"]);
    expect(split(["0123", "456"], 5)).toEqual(["<overlong 7>"]);
  });

  it("does not retain the caller's chunk for a partial line", () => {
    const chunk = Buffer.from("ab");
    const seen: string[] = [];
    const splitter = new LineSplitter(100, {
      line: (bytes, start, end) => seen.push(bytes.toString("utf8", start, end)),
      overlong: () => {},
    });
    splitter.push(chunk);
    chunk.fill(0x78);
    splitter.push(Buffer.from("c\n"));
    expect(seen).toEqual(["abc"]);
  });
});

describe("utf8EstimateTokenCounter", () => {
  it("counts about 4 ASCII characters per token", () => {
    expect(utf8EstimateTokenCounter.count("")).toBe(0);
    expect(utf8EstimateTokenCounter.count("abcd")).toBe(1);
    expect(utf8EstimateTokenCounter.count("hello world")).toBe(3);
  });

  it("counts one token per CJK character", () => {
    expect(utf8EstimateTokenCounter.count("今天天气很好")).toBe(6);
    expect(utf8EstimateTokenCounter.count("天气 good")).toBe(4);
  });

  it("is labelled as an estimate", () => {
    expect(utf8EstimateTokenCounter.method).toMatch(/^estimate:/);
  });
});

describe("hash64 and BoundedHashSet", () => {
  const hashOf = (text: string) => {
    const out = new Uint32Array(2);
    const bytes = Buffer.from(`..${text}..`);
    hash64(bytes, 2, bytes.length - 2, out);
    return [out[0]!, out[1]!] as const;
  };

  it("hashes equal byte ranges equally wherever they sit in the buffer", () => {
    const out = new Uint32Array(2);
    hash64(Buffer.from("same line"), 0, 9, out);
    expect(hashOf("same line")).toEqual([out[0], out[1]]);
  });

  it("gives distinct 64-bit hashes to 100,000 near-identical lines", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) {
      const [hi, lo] = hashOf(`{"input":"question ${i}","target":"answer"}`);
      seen.add(`${hi}:${lo}`);
    }
    expect(seen.size).toBe(100_000);
  });

  it("detects repeats while growing past its initial table", () => {
    const set = new BoundedHashSet(1_000_000);
    // Counted, then asserted once: 100,000 expect() calls take seconds on a loaded machine.
    let newOnFirstPass = 0;
    let foundOnSecondPass = 0;
    for (let i = 0; i < 50_000; i++) if (!set.addOrHas(i * 7919, i)) newOnFirstPass++;
    for (let i = 0; i < 50_000; i++) if (set.addOrHas(i * 7919, i)) foundOnSecondPass++;
    expect(newOnFirstPass).toBe(50_000);
    expect(foundOnSecondPass).toBe(50_000);
    expect(set.tracked).toBe(50_000);
    expect(set.capped).toBe(false);
  });

  it("stops adding at its cap but still finds what it holds", () => {
    const set = new BoundedHashSet(2);
    expect(set.addOrHas(1, 1)).toBe(false);
    expect(set.addOrHas(2, 2)).toBe(false);
    expect(set.addOrHas(3, 3)).toBe(false);
    expect(set.addOrHas(3, 3)).toBe(false);
    expect(set.addOrHas(1, 1)).toBe(true);
    expect(set).toMatchObject({ tracked: 2, capped: true });
  });

  it("holds the all-zero hash", () => {
    const set = new BoundedHashSet();
    expect(set.addOrHas(0, 0)).toBe(false);
    expect(set.addOrHas(0, 0)).toBe(true);
  });
});

describe("toCanonicalMessages", () => {
  it("turns a legacy example into one user and one assistant turn", () => {
    expect(toCanonicalMessages({ input: "Hi", target: "Hello" })).toEqual([
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello" },
    ]);
  });

  it("keeps roles, content and weight of a messages example and drops the ignored name", () => {
    const { example } = checkExample({
      messages: [
        { role: "system", content: "S" },
        { role: "user", content: "Hi", name: "alice" },
        { role: "assistant", content: "Hello", weight: 0 },
      ],
    });
    expect(example && toCanonicalMessages(example)).toEqual([
      { role: "system", content: "S" },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello", weight: 0 },
    ]);
  });
});

describe("checkExample", () => {
  it("returns the example and no issues for a valid line", () => {
    const value = { input: "Hi", target: "Hello" };
    expect(checkExample(value)).toEqual({ example: value, issues: [] });
  });

  it("returns issues and no example for an invalid line", () => {
    expect(checkExample({ messages: [] })).toEqual({
      issues: [
        { path: "messages", code: "no_user_turn", message: "The example has no user message." },
        {
          path: "messages",
          code: "no_assistant_turn",
          message: "The example has no assistant message to train on.",
        },
      ],
    });
  });

  it("writes non-identifier keys as bracketed JSON strings in paths", () => {
    expect(checkExample({ input: "a", target: "b", "my key": 1 }).issues[0]?.path).toBe('["my key"]');
  });
});
