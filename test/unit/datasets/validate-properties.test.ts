import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DATASET_ERROR_CODES } from "../../../lambdas/core/datasets/codes.ts";
import { type ValidationReport, validateDataset } from "../../../lambdas/core/datasets/validate.ts";
import { anyText, jsonValue, mutatedObject, mutatedText } from "../http/arbitraries.ts";

/**
 * Properties of the dataset validator over random and mutated files: it always finishes with a report
 * (never throws, whatever the bytes), the report is consistent with itself, and it does not depend on
 * how the bytes were cut into chunks (S3 streams cut anywhere, mid-line and mid-character).
 */

const messages = {
  messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: "What is 2+2?" },
    { role: "assistant", content: "4", weight: 1 },
  ],
};
const legacy = { input: "2+2", target: "4" };
const preference = {
  input: { messages: [{ role: "user", content: "Say hi" }] },
  preferred_output: [{ role: "assistant", content: "Hi!" }],
  non_preferred_output: [{ role: "assistant", content: "No." }],
};

const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom("system", "user", "assistant", "tool"), anyText(6)),
    content: fc.oneof(anyText(16), fc.constant(""), jsonValue()),
    weight: fc.oneof(fc.constantFrom(0, 1, 2), jsonValue()),
  },
  { requiredKeys: ["role"] },
);
const values = fc.oneof(fc.array(message, { maxLength: 4 }), message);

/** One line: a valid example, a mutated one (as an object or as text), or noise. */
const line = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(messages, legacy, preference).map((value) => JSON.stringify(value)),
  },
  {
    weight: 4,
    arbitrary: fc
      .constantFrom(messages, legacy, preference)
      .chain((valid) => mutatedObject(valid, values))
      .map((value) => JSON.stringify(value) ?? ""),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(messages, legacy).chain((valid) => mutatedText(JSON.stringify(valid))),
  },
  { weight: 1, arbitrary: anyText(40) },
);

/** A file: lines joined by LF or CRLF, maybe a BOM, maybe a final newline; or random bytes. */
const file = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .record({
        lines: fc.array(line, { maxLength: 16 }),
        crlf: fc.boolean(),
        bom: fc.boolean(),
        finalNewline: fc.boolean(),
      })
      .map(({ lines, crlf, bom, finalNewline }) => {
        const eol = crlf ? "\r\n" : "\n";
        const text = lines.join(eol) + (finalNewline && lines.length > 0 ? eol : "");
        return Buffer.concat([Buffer.from(bom ? [0xef, 0xbb, 0xbf] : []), Buffer.from(text)]);
      }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)) },
);

/** The bytes cut at the given points (sorted, deduplicated), as an S3 body's chunks would be. */
async function* chunks(bytes: Buffer, cuts: readonly number[]): AsyncIterable<Uint8Array> {
  let start = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    if (cut > start) yield bytes.subarray(start, cut);
    start = Math.max(start, cut);
  }
  if (start < bytes.length || bytes.length === 0) yield bytes.subarray(start);
}

function expectConsistent(report: ValidationReport): void {
  expect(["processed", "error"]).toContain(report.status);
  expect(report.status === "processed").toBe(report.errors.length === 0);
  const counted = Object.values(report.errorCounts).reduce((sum, n) => sum + n, 0);
  expect(counted).toBeGreaterThanOrEqual(report.errors.length);
  expect(report.truncatedErrors).toBe(counted > report.errors.length);
  for (const error of report.errors) {
    expect(Object.keys(DATASET_ERROR_CODES)).toContain(error.code);
    expect(report.errorCounts[error.code]).toBeGreaterThan(0);
    expect(error.line).toBeGreaterThanOrEqual(0);
    expect(error.line).toBeLessThanOrEqual(report.statistics.lines);
    expect(error.message.length).toBeGreaterThan(0);
  }
  expect(report.statistics.examples).toBeLessThanOrEqual(report.statistics.lines);
}

describe("dataset validator properties", () => {
  it("always finishes with a consistent report, the same however the bytes are chunked", async () => {
    await fc.assert(
      fc.asyncProperty(file, fc.array(fc.nat(), { maxLength: 6 }), async (bytes, cuts) => {
        const options = { limits: { minExamples: 3, maxErrors: 5, maxLineBytes: 512 } };
        const whole = await validateDataset(chunks(bytes, []), options);
        expectConsistent(whole);
        expect(await validateDataset(chunks(bytes, cuts), options)).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it("processes a file of enough valid examples of one format, whatever its line endings", async () => {
    const valid = fc.record({
      example: fc.constantFrom(messages, legacy, preference),
      count: fc.integer({ min: 10, max: 20 }),
      crlf: fc.boolean(),
      finalNewline: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(valid, fc.array(fc.nat(), { maxLength: 4 }), async (v, cuts) => {
        const eol = v.crlf ? "\r\n" : "\n";
        const text = Array(v.count).fill(JSON.stringify(v.example)).join(eol) + (v.finalNewline ? eol : "");
        const report = await validateDataset(chunks(Buffer.from(text), cuts));
        expect(report.errors).toEqual([]);
        expect(report.statistics).toMatchObject({ examples: v.count, lines: v.count });
        expect(report.statistics.duplicates.count).toBe(v.count - 1);
      }),
      { numRuns: 100 },
    );
  });
});
