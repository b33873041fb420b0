import { createReadStream } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { checkExample, toCanonicalMessages } from "../../../lambdas/core/datasets/example.ts";
import { type ValidationReport, validateDataset } from "../../../lambdas/core/datasets/validate.ts";

// OpenAI's preference (DPO) format: {"input":{"messages":[…]},"preferred_output":[…],"non_preferred_output":[…]}.
const fixtures = fileURLToPath(new URL("../../fixtures/datasets/", import.meta.url));
const validate = (name: string): Promise<ValidationReport> =>
  validateDataset(createReadStream(`${fixtures}${name}`));

describe("preference (DPO) files", () => {
  it("accept a file of pairs, with pairs, tokens and the share of whitespace-only pairs", async () => {
    const report = await validate("preference.jsonl");
    expect(report.errors).toEqual([]);
    expect(report.status).toBe("processed");
    expect(report.format).toBe("preference");
    expect(report.statistics.examples).toBe(11);
    expect(report.statistics.preference).toEqual({
      pairs: 11,
      whitespaceOnly: 1,
      whitespaceOnlyShare: 0.0909,
    });
    // The prompt's system and user turns, then both outputs.
    expect(report.statistics.turns).toMatchObject({ min: 4, max: 4 });
    expect(report.statistics.tokens.total).toBeGreaterThan(0);
    expect(report.statistics.characters.assistant).toBeGreaterThan(0);
  });

  it("report every rule with its line and path", async () => {
    const report = await validate("preference-errors.jsonl");
    expect(report.status).toBe("error");
    expect(report.format).toBe("mixed");
    const found = report.errors.map((e) => [e.line, e.path, e.code]);
    expect(found).toEqual([
      [18, "", "mixed_formats"],
      [11, "preferred_output", "invalid_output"],
      [12, "preferred_output[0].role", "invalid_output"],
      [13, "non_preferred_output[0].content", "identical_outputs"],
      [14, "input.messages[1]", "not_ending_with_user"],
      [15, "non_preferred_output", "missing_key"],
      [16, "preferred_output[0].content", "empty_content"],
      [17, "preferred_output", "invalid_output"],
      [19, "input", "invalid_type"],
    ]);
    expect(report.errors[0]!.message).toMatch(
      /18 preference .* and 1 "messages" line\(s\); the first messages line/,
    );
  });

  // One fixture per rule: ten good pairs, then the line that breaks it (line 11).
  it.each([
    ["preference-empty-output.jsonl", "preferred_output", "invalid_output"],
    ["preference-missing-output.jsonl", "non_preferred_output", "missing_key"],
    ["preference-whitespace-output.jsonl", "preferred_output[0].content", "empty_content"],
    ["preference-not-assistant.jsonl", "preferred_output[0].role", "invalid_output"],
    ["preference-two-messages.jsonl", "preferred_output", "invalid_output"],
    ["preference-identical.jsonl", "non_preferred_output[0].content", "identical_outputs"],
    ["preference-not-ending-with-user.jsonl", "input.messages[1]", "not_ending_with_user"],
    ["preference-mixed-sft.jsonl", "", "mixed_formats"],
  ])("%s: line 11 breaks the rule (%s, %s)", async (name, path, code) => {
    const report = await validate(name);
    expect(report.status).toBe("error");
    expect(report.errors.map((e) => [e.line, e.path, e.code])).toEqual([[11, path, code]]);
    expect(report.errors[0]!.message.length).toBeGreaterThan(10);
  });

  it("train on the prompt and the preferred answer when read as chat", () => {
    const { example } = checkExample({
      input: { messages: [{ role: "user", content: "Hi" }] },
      preferred_output: [{ role: "assistant", content: "Hello!" }],
      non_preferred_output: [{ role: "assistant", content: "Go away." }],
    });
    expect(toCanonicalMessages(example!)).toEqual([
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello!" },
    ]);
  });

  it("refuse keys outside the format, in the line and in its input", () => {
    const { issues } = checkExample({
      input: { messages: [{ role: "user", content: "Hi" }], tools: [] },
      preferred_output: [{ role: "assistant", content: "a" }],
      non_preferred_output: [{ role: "assistant", content: "b" }],
      weight: 1,
    });
    expect(issues.map((i) => [i.path, i.code])).toEqual([
      ["weight", "unknown_key"],
      ["input.tools", "unknown_key"],
    ]);
  });
});
