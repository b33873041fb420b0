import { describe, expect, it } from "vitest";
import { toUsageList } from "../../../lambdas/core/usage/wire.ts";

describe("GET /v4/usage response", () => {
  it("lists each day's models by date then model, with total tokens", () => {
    const list = toUsageList({ start: "2026-12-01", end: "2026-12-31" }, [
      { date: "2026-12-03", model: "tiny-chat", requests: 1, promptTokens: 5, completionTokens: 7 },
      { date: "2026-12-02", model: "tiny-chat", requests: 2, promptTokens: 10, completionTokens: 20 },
      { date: "2026-12-03", model: "acme:ft-1", requests: 3, promptTokens: 1, completionTokens: 2 },
    ]);
    expect(list).toEqual({
      object: "list",
      start: "2026-12-01",
      end: "2026-12-31",
      data: [
        {
          object: "usage.daily",
          date: "2026-12-02",
          model: "tiny-chat",
          requests: 2,
          prompt_tokens: 10,
          completion_tokens: 20,
          total_tokens: 30,
        },
        {
          object: "usage.daily",
          date: "2026-12-03",
          model: "acme:ft-1",
          requests: 3,
          prompt_tokens: 1,
          completion_tokens: 2,
          total_tokens: 3,
        },
        {
          object: "usage.daily",
          date: "2026-12-03",
          model: "tiny-chat",
          requests: 1,
          prompt_tokens: 5,
          completion_tokens: 7,
          total_tokens: 12,
        },
      ],
    });
  });

  it("answers an empty list for a range without chats", () => {
    expect(toUsageList({ start: "2026-12-01", end: "2026-12-01" }, [])).toEqual({
      object: "list",
      start: "2026-12-01",
      end: "2026-12-01",
      data: [],
    });
  });
});
