import { createReadStream, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DATASET_ERROR_CODES } from "../../../lambdas/core/datasets/codes.ts";
import {
  DatasetValidator,
  type ValidationOptions,
  type ValidationReport,
  validateDataset,
} from "../../../lambdas/core/datasets/validate.ts";

const fixtures = fileURLToPath(new URL("../../fixtures/datasets/", import.meta.url));

function fixture(name: string): Buffer {
  return readFileSync(`${fixtures}${name}`);
}

/** Validates a fixture read as a Node file stream, the way the benchmark and a local CLI read files. */
function validateFixture(name: string, options?: ValidationOptions): Promise<ValidationReport> {
  return validateDataset(createReadStream(`${fixtures}${name}`), options);
}

/** The same bytes as a web ReadableStream (an S3 GetObject body), cut into chunks of `size` bytes. */
function webStream(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

function codes(report: ValidationReport): string[] {
  return report.errors.map((e) => e.code);
}

/** Line, path and code of each error, leaving out `mixed_formats` of fixtures that hold a legacy case. */
function lineErrors(report: ValidationReport): [number, string, string][] {
  return report.errors.filter((e) => e.code !== "mixed_formats").map((e) => [e.line, e.path, e.code]);
}

describe("valid files", () => {
  it("processes a messages file with system prompts, multi-turn examples, CJK, name and weight", async () => {
    const report = await validateFixture("valid-messages.jsonl");
    expect(report.errors).toEqual([]);
    expect(report).toMatchObject({ status: "processed", format: "messages", truncatedErrors: false });
    expect(report.statistics).toMatchObject({
      examples: 13,
      legacyExamples: 0,
      lines: 13,
      byteOrderMark: false,
    });
  });

  it("processes a legacy input/target file and counts its examples as legacy", async () => {
    const report = await validateFixture("valid-legacy.jsonl");
    expect(report).toMatchObject({ status: "processed", format: "legacy" });
    expect(report.statistics).toMatchObject({ examples: 10, legacyExamples: 10 });
    expect(report.statistics.turns).toEqual({ total: 20, min: 2, mean: 2, max: 2 });
  });

  it("accepts a UTF-8 byte order mark at the start of the file, strips it and says so", async () => {
    const report = await validateFixture("bom.jsonl");
    expect(report.status).toBe("processed");
    expect(report.statistics.byteOrderMark).toBe(true);
    expect(report.statistics.examples).toBe(10);
  });

  it("accepts CRLF line endings", async () => {
    const report = await validateFixture("crlf.jsonl");
    expect(report.status).toBe("processed");
    expect(report.statistics).toMatchObject({ examples: 10, lines: 10 });
  });

  it("accepts a last line without a final newline", async () => {
    const report = await validateFixture("no-final-newline.jsonl");
    expect(report.status).toBe("processed");
    expect(report.statistics).toMatchObject({ examples: 10, lines: 10 });
  });

  it("gives the same report whatever the chunking, down to one byte per chunk", async () => {
    const bytes = fixture("valid-messages.jsonl");
    const whole = await validateDataset(webStream(bytes, bytes.length));
    for (const size of [1, 2, 3, 7, 64, 1000]) {
      expect(await validateDataset(webStream(bytes, size))).toEqual(whole);
    }
  });

  it("gives the same line numbers and paths for errors whatever the chunking", async () => {
    const bytes = fixture("wrong-order.jsonl");
    const whole = await validateDataset(webStream(bytes, bytes.length));
    expect(await validateDataset(webStream(bytes, 5))).toEqual(whole);
  });

  it("reads any async iterable of byte chunks", async () => {
    const bytes = fixture("valid-legacy.jsonl");
    async function* chunks() {
      yield bytes.subarray(0, 100);
      yield bytes.subarray(100);
    }
    expect((await validateDataset(chunks())).statistics.examples).toBe(10);
  });
});

describe("statistics", () => {
  it("counts turns per example and characters per role", async () => {
    const report = await validateDataset(
      webStream(
        Buffer.from(
          `${'{"messages":[{"role":"system","content":"Sys"},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]}\n'.repeat(9)}{"input":"abcd","target":"xy"}\n`,
        ),
        64,
      ),
    );
    expect(report.format).toBe("mixed");
    expect(report.statistics.turns).toEqual({ total: 29, min: 2, mean: 2.9, max: 3 });
    expect(report.statistics.characters).toEqual({ system: 27, user: 22, assistant: 47 });
  });

  it("labels token counts as an estimate and counts template overhead per message", async () => {
    const line =
      '{"messages":[{"role":"user","content":"abcdefgh"},{"role":"assistant","content":"你好"}]}\n';
    const report = await validateDataset(webStream(Buffer.from(line.repeat(10)), 50));
    // user: 8 ASCII bytes / 4 = 2; assistant: 2 CJK characters = 2; plus 4 per message.
    expect(report.statistics.tokens).toEqual({
      method: "estimate:utf8-bytes/4-cjk-aware",
      total: 120,
      min: 12,
      mean: 12,
      max: 12,
      assistant: 20,
    });
  });

  it("uses a configured token counter and names its method", async () => {
    const report = await validateFixture("valid-legacy.jsonl", {
      tokenCounter: { method: "tokenizer:test", messageOverhead: 0, count: () => 1 },
    });
    expect(report.statistics.tokens).toMatchObject({ method: "tokenizer:test", total: 20, assistant: 10 });
  });

  it("counts examples over each base model's context length", async () => {
    const report = await validateFixture("valid-messages.jsonl", {
      contextLimits: { "tiny-model": 30, "large-model": 32768 },
    });
    expect(report.statistics.overLength["large-model"]).toBe(0);
    expect(report.statistics.overLength["tiny-model"]).toBeGreaterThan(0);
    expect(report.statistics.overLength["tiny-model"]).toBeLessThan(report.statistics.examples);
  });

  it("counts exact duplicates, ignoring whitespace around the line, without making them errors", async () => {
    const report = await validateFixture("duplicates.jsonl");
    expect(report.status).toBe("processed");
    expect(report.statistics.examples).toBe(13);
    expect(report.statistics.duplicates).toEqual({ count: 3, trackedExamples: 10, capped: false });
  });

  it("stops remembering examples at the tracking cap and says duplicates were counted up to it", async () => {
    const report = await validateFixture("duplicates.jsonl", { limits: { maxTrackedExamples: 4 } });
    // Lines 3 and 6 repeat; line 3 is among the 4 tracked, line 6 is not.
    expect(report.statistics.duplicates).toEqual({ count: 2, trackedExamples: 4, capped: true });
  });
});

describe("file-level errors", () => {
  it("reports empty_file for a zero-byte file, and nothing else", async () => {
    const report = await validateFixture("empty.jsonl");
    expect(report).toMatchObject({ status: "error", format: null });
    expect(report.errors).toEqual([{ line: 0, path: "", code: "empty_file", message: "The file is empty." }]);
  });

  it("reports too_few_examples below the minimum of 10 valid examples", async () => {
    const report = await validateFixture("too-few-examples.jsonl");
    expect(report.status).toBe("error");
    expect(report.errors).toEqual([
      expect.objectContaining({
        line: 0,
        code: "too_few_examples",
        message: expect.stringContaining("9 valid"),
      }),
    ]);
  });

  it("honours a configured minimum number of examples", async () => {
    expect((await validateFixture("too-few-examples.jsonl", { limits: { minExamples: 9 } })).status).toBe(
      "processed",
    );
  });

  it("reports file_too_large, stops reading and cancels the stream", async () => {
    const bytes = fixture("valid-messages.jsonl");
    let pulls = 0;
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        controller.enqueue(bytes.slice(0, 100));
      },
      cancel() {
        cancelled = true;
      },
    });
    const report = await validateDataset(stream, { limits: { maxFileBytes: 1000 } });
    expect(cancelled).toBe(true);
    expect(pulls).toBeLessThan(15);
    expect(report.status).toBe("error");
    expect(report.errorCounts).toEqual({ file_too_large: 1 });
    expect(report.errors[0]).toMatchObject({ line: 0, code: "file_too_large" });
  });

  it("reports mixed_formats once, on the first line of the rarer format", async () => {
    const report = await validateFixture("mixed-formats.jsonl");
    expect(report.format).toBe("mixed");
    expect(report.errorCounts).toEqual({ mixed_formats: 1 });
    expect(report.errors[0]).toMatchObject({ line: 7, code: "mixed_formats" });
    expect(report.statistics).toMatchObject({ examples: 12, legacyExamples: 2 });
  });

  it("lists file-level errors before line errors", async () => {
    const report = await validateFixture("too-few-examples.jsonl", { limits: { minExamples: 20 } });
    expect(codes(report)[0]).toBe("too_few_examples");
    const mixed = await validateFixture("invalid-json.jsonl", { limits: { minExamples: 20 } });
    expect(codes(mixed)).toEqual(["too_few_examples", "invalid_json"]);
  });
});

describe("line errors", () => {
  it("reports invalid_json with the parser's reason on the right line", async () => {
    const report = await validateFixture("invalid-json.jsonl");
    expect(report.errors).toEqual([
      {
        line: 5,
        path: "",
        code: "invalid_json",
        message: expect.stringMatching(/^The line is not valid JSON: /),
      },
    ]);
  });

  it("reports invalid_utf8 for a Latin-1 byte and keeps validating the next lines", async () => {
    const report = await validateFixture("invalid-utf8.jsonl");
    expect(report.errors).toEqual([expect.objectContaining({ line: 4, path: "", code: "invalid_utf8" })]);
    expect(report.statistics.examples).toBe(10);
  });

  it("rejects a byte order mark anywhere but the start of the file", async () => {
    const report = await validateFixture("bom-mid-file.jsonl");
    expect(report.errors).toEqual([
      expect.objectContaining({
        line: 6,
        code: "invalid_json",
        message: expect.stringContaining("byte order mark"),
      }),
    ]);
  });

  it("reports blank_line for empty and whitespace-only lines in the middle", async () => {
    const report = await validateFixture("blank-line.jsonl");
    expect(report.errors.map((e) => [e.line, e.code])).toEqual([
      [6, "blank_line"],
      [7, "blank_line"],
    ]);
  });

  it("reports blank_line for a second newline at the end of the file", async () => {
    const report = await validateFixture("trailing-blank-lines.jsonl");
    expect(report.errors.map((e) => [e.line, e.code])).toEqual([[11, "blank_line"]]);
  });

  it("reports not_an_object for arrays, strings, numbers and null", async () => {
    const report = await validateFixture("not-an-object.jsonl");
    expect(report.errors.map((e) => [e.line, e.code])).toEqual([
      [11, "not_an_object"],
      [12, "not_an_object"],
      [13, "not_an_object"],
      [14, "not_an_object"],
    ]);
    expect(report.errors[0]?.message).toContain("an array");
  });

  it("reports missing_key for a line with neither format, a half legacy line and messages without role or content", async () => {
    const report = await validateFixture("missing-key.jsonl");
    expect(lineErrors(report)).toEqual([
      [11, "", "missing_key"],
      [12, "target", "missing_key"],
      [13, "messages[0].role", "missing_key"],
      [13, "messages[1].content", "missing_key"],
      [13, "messages", "no_user_turn"],
    ]);
    expect(report.errors.find((e) => e.line === 11)?.message).toContain(
      "prompt/completion format is not accepted",
    );
  });

  it("reports unknown_key at the top level and inside messages, and explains that tools are unsupported", async () => {
    const report = await validateFixture("unknown-key.jsonl");
    expect(lineErrors(report)).toEqual([
      [11, "tools", "unknown_key"],
      [12, "messages[1].tool_calls", "unknown_key"],
      [13, "meta", "unknown_key"],
    ]);
    expect(report.errors.find((e) => e.path === "tools")?.message).toContain(
      "Tool and function calling are not supported",
    );
  });

  it("reports invalid_type when messages, a message, a role or a name has the wrong JSON type", async () => {
    const report = await validateFixture("invalid-type.jsonl");
    expect(lineErrors(report)).toEqual([
      [11, "messages", "invalid_type"],
      [12, "messages[1]", "invalid_type"],
      [12, "messages", "no_assistant_turn"],
      [13, "messages[0].role", "invalid_type"],
      [13, "messages[1].name", "invalid_type"],
      [13, "messages", "no_user_turn"],
    ]);
  });

  it("reports invalid_weight for a weight on a user message or other than 0 or 1", async () => {
    const report = await validateFixture("invalid-weight.jsonl");
    expect(lineErrors(report)).toEqual([
      [11, "messages[0].weight", "invalid_weight"],
      [11, "messages[1].weight", "invalid_weight"],
    ]);
  });

  it("reports unknown_role with the supported roles", async () => {
    const report = await validateFixture("unknown-role.jsonl");
    expect(report.errors).toEqual([
      {
        line: 11,
        path: "messages[1].role",
        code: "unknown_role",
        message: 'messages[1].role is "bot"; expected "system", "user" or "assistant".',
      },
    ]);
  });

  it("reports system_not_first for a system message after the first", async () => {
    const report = await validateFixture("system-not-first.jsonl");
    expect(lineErrors(report)).toEqual([[11, "messages[1].role", "system_not_first"]]);
  });

  it("reports wrong_order once, at the first turn that breaks user/assistant alternation", async () => {
    const report = await validateFixture("wrong-order.jsonl");
    expect(lineErrors(report)).toEqual([[11, "messages[2].role", "wrong_order"]]);
  });

  it("reports no_user_turn for an example with only system and assistant messages", async () => {
    const report = await validateFixture("no-user-turn.jsonl");
    expect(report.errorCounts).toEqual({ no_user_turn: 1, wrong_order: 1 });
    expect(report.errors).toContainEqual(
      expect.objectContaining({ line: 11, path: "messages", code: "no_user_turn" }),
    );
  });

  it("reports no_assistant_turn for an example with nothing to train on", async () => {
    const report = await validateFixture("no-assistant-turn.jsonl");
    expect(lineErrors(report)).toEqual([[11, "messages", "no_assistant_turn"]]);
  });

  it("reports not_ending_with_assistant when the last message is a user turn", async () => {
    const report = await validateFixture("not-ending-with-assistant.jsonl");
    expect(lineErrors(report)).toEqual([[11, "messages[2]", "not_ending_with_assistant"]]);
  });

  it("reports empty_content for empty or whitespace-only content and legacy fields", async () => {
    const report = await validateFixture("empty-content.jsonl");
    expect(lineErrors(report)).toEqual([
      [11, "messages[0].content", "empty_content"],
      [11, "messages[1].content", "empty_content"],
      [12, "target", "empty_content"],
    ]);
  });

  it("reports non_string_content for content parts, null content and non-string legacy fields", async () => {
    const report = await validateFixture("non-string-content.jsonl");
    expect(lineErrors(report)).toEqual([
      [11, "messages[0].content", "non_string_content"],
      [11, "messages[1].content", "non_string_content"],
      [12, "target", "non_string_content"],
    ]);
  });

  it("reports line_too_long without reading the line, and reads the lines after it", async () => {
    const report = await validateFixture("line-too-long.jsonl", { limits: { maxLineBytes: 512 } });
    expect(report.errors).toEqual([
      expect.objectContaining({
        line: 6,
        path: "",
        code: "line_too_long",
        message: expect.stringContaining("582 bytes"),
      }),
    ]);
    expect(report.statistics).toMatchObject({ examples: 10, lines: 11 });
  });

  it("reports line_too_long the same way when the long line spans many chunks", async () => {
    const bytes = fixture("line-too-long.jsonl");
    const report = await validateDataset(webStream(bytes, 16), { limits: { maxLineBytes: 512 } });
    expect(report.errors).toEqual([expect.objectContaining({ line: 6, code: "line_too_long" })]);
    expect(report.statistics.examples).toBe(10);
  });

  it("reports too_many_tokens when a per-example token limit is configured", async () => {
    const report = await validateFixture("valid-messages.jsonl", { limits: { maxTokensPerExample: 30 } });
    expect(report.status).toBe("error");
    expect(report.errorCounts.too_many_tokens).toBeGreaterThan(0);
    expect(report.errors[0]?.message).toContain("estimate:utf8-bytes/4-cjk-aware");
  });
});

describe("error list", () => {
  it("lists at most maxErrors errors, counts them all and flags the truncation", async () => {
    const report = await validateFixture("many-errors.jsonl", { limits: { maxErrors: 5 } });
    expect(report.errors).toHaveLength(5);
    expect(report.errors.map((e) => e.line)).toEqual([11, 12, 13, 14, 15]);
    expect(report.errorCounts).toEqual({ invalid_json: 30 });
    expect(report.truncatedErrors).toBe(true);
  });

  it("keeps a file-level error in a truncated list", async () => {
    const report = await validateFixture("many-errors.jsonl", { limits: { maxErrors: 3, minExamples: 11 } });
    expect(codes(report)).toEqual(["too_few_examples", "invalid_json", "invalid_json"]);
    expect(report.truncatedErrors).toBe(true);
  });

  it("uses only documented error codes", async () => {
    const names = [
      "invalid-json",
      "invalid-utf8",
      "blank-line",
      "not-an-object",
      "missing-key",
      "unknown-key",
      "invalid-type",
      "invalid-weight",
      "unknown-role",
      "system-not-first",
      "wrong-order",
      "no-user-turn",
      "no-assistant-turn",
      "not-ending-with-assistant",
      "empty-content",
      "non-string-content",
      "mixed-formats",
      "too-few-examples",
      "empty",
    ];
    for (const name of names) {
      const report = await validateFixture(`${name}.jsonl`);
      for (const code of Object.keys(report.errorCounts)) expect(DATASET_ERROR_CODES).toHaveProperty(code);
    }
  });
});

describe("DatasetValidator", () => {
  it("refuses further chunks once the size limit is passed", () => {
    const validator = new DatasetValidator({ limits: { maxFileBytes: 10 } });
    expect(validator.push(new Uint8Array(8))).toBe(true);
    expect(validator.push(new Uint8Array(8))).toBe(false);
    expect(validator.push(new Uint8Array(1))).toBe(false);
    expect(validator.finish().errorCounts).toEqual({ file_too_large: 1 });
  });
});
