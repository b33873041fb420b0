import { createReadStream, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { validateDataset } from "../../../lambdas/core/datasets/validate.ts";

const samples = fileURLToPath(new URL("../../../samples/", import.meta.url));
const validate = (name: string) => validateDataset(createReadStream(`${samples}${name}`));

/** `| 4 | \`invalid_json\` | …` rows of the README's malformed.jsonl table: [line, code]. */
function documentedErrors(): [number, string][] {
  const readme = readFileSync(`${samples}README.md`, "utf8");
  return [...readme.matchAll(/^\| (\d+) +\| `(\w+)` +\|/gm)].map((m) => [Number(m[1]), m[2]!]);
}

describe("samples/", () => {
  it.each(["messages.jsonl", "legacy.jsonl"])(
    "%s validates with no errors and at least 50 examples",
    async (name) => {
      const report = await validate(name);
      expect(report.errors).toEqual([]);
      expect(report.status).toBe("processed");
      expect(report.statistics.examples).toBeGreaterThanOrEqual(50);
      expect(report.statistics.duplicates.count).toBe(0);
      expect(report.format).toBe(name === "legacy.jsonl" ? "legacy" : "messages");
    },
  );

  it("preference.jsonl validates as preference pairs (DPO) with no errors", async () => {
    const report = await validate("preference.jsonl");
    expect(report.errors).toEqual([]);
    expect(report.status).toBe("processed");
    expect(report.format).toBe("preference");
    expect(report.statistics.examples).toBe(24);
  });

  it("keeps prompts and answers short and distinct across the two training files", () => {
    const texts: string[] = [];
    for (const line of readFileSync(`${samples}messages.jsonl`, "utf8").trim().split("\n")) {
      const { messages } = JSON.parse(line) as { messages: { role: string; content: string }[] };
      texts.push(...messages.filter((m) => m.role !== "system").map((m) => m.content));
    }
    for (const line of readFileSync(`${samples}legacy.jsonl`, "utf8").trim().split("\n")) {
      const { input, target } = JSON.parse(line) as { input: string; target: string };
      texts.push(input, target);
    }
    for (const text of texts) expect(text.length).toBeLessThanOrEqual(40);
    expect(new Set(texts).size).toBe(texts.length);
  });

  it("malformed.jsonl has exactly the errors its README table documents", async () => {
    const report = await validate("malformed.jsonl");
    const documented = documentedErrors();
    expect(documented.length).toBeGreaterThanOrEqual(3);
    expect(report.status).toBe("error");
    expect(report.errors.map((e) => [e.line, e.code])).toEqual(documented);
  });
});
