import { describe, expect, it } from "vitest";
import { parseTrainingFileStatistics, trainingDataSize } from "../../../lambdas/core/jobs/training-data.ts";

describe("training file statistics", () => {
  it("reads what the validator stored and ignores the rest", () => {
    const stored = {
      examples: 10,
      lines: 12,
      tokens: { total: 900, max: 120, min: 30, mean: 90, method: "tokenizer:qwen2", assistant: 400 },
    };
    expect(trainingDataSize(parseTrainingFileStatistics(stored))).toEqual({
      examples: 10,
      totalTokens: 900,
      maxExampleTokens: 120,
    });
  });

  it("leaves out the longest example when tokens were only estimated", () => {
    const stored = { examples: 10, tokens: { total: 900, max: 120, method: "estimate:utf8-bytes/4" } };
    expect(trainingDataSize(parseTrainingFileStatistics(stored))).toEqual({ examples: 10, totalTokens: 900 });
  });

  it("counts missing or unreadable fields as not measured", () => {
    for (const stored of [undefined, null, "x", {}, { examples: "10", tokens: { total: "9", max: null } }]) {
      expect(trainingDataSize(parseTrainingFileStatistics(stored))).toEqual({ examples: 0, totalTokens: 0 });
    }
    expect(parseTrainingFileStatistics({ examples: 3, tokens: { max: 50, method: 7 } })).toEqual({
      examples: 3,
      tokens: { max: 50 },
    });
  });
});
