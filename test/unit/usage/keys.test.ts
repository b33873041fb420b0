import { describe, expect, it } from "vitest";
import { usageDay, usageIncrement, usageKey, usageKeyRange } from "../../../lambdas/core/usage/keys.ts";

/** DynamoDB orders string sort keys by their UTF-8 bytes. */
const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
const inRange = (key: string, range: { from: string; to: string }) =>
  byUtf8(key, range.from) >= 0 && byUtf8(key, range.to) <= 0;

describe("usage keys", () => {
  it("counts a chat on its UTC day, whatever the hour", () => {
    expect(usageDay(Date.UTC(2026, 11, 3, 0, 0, 0, 0))).toBe("2026-12-03");
    expect(usageDay(Date.UTC(2026, 11, 3, 23, 59, 59, 999))).toBe("2026-12-03");
    expect(usageDay(Date.UTC(2026, 11, 4))).toBe("2026-12-04");
    expect(usageDay(Date.UTC(2028, 1, 29, 12))).toBe("2028-02-29");
  });

  it("refuses a time that is not epoch milliseconds", () => {
    expect(() => usageDay(Number.NaN)).toThrow(/epoch milliseconds/);
  });

  it("keys a tenant's totals by day, then model", () => {
    expect(usageKey("2026-12-03", "glm-4-9b-chat")).toBe("2026-12-03#glm-4-9b-chat");
  });

  it("ranges over every model of the first to the last day, and no other day", () => {
    const range = usageKeyRange("2026-12-03", "2026-12-05");
    for (const model of ["a", "glm-4-9b-chat", "acme:ft-1#x", "\uffff\uffff", "模型", "😀-model", "~"]) {
      for (const day of ["2026-12-03", "2026-12-04", "2026-12-05"]) {
        expect(inRange(usageKey(day, model), range), `${day} ${model}`).toBe(true);
      }
      for (const day of ["2026-12-02", "2026-12-06", "2027-01-01"]) {
        expect(inRange(usageKey(day, model), range), `${day} ${model}`).toBe(false);
      }
    }
  });

  it("makes one chat's increment: its key, day, model and tokens", () => {
    expect(
      usageIncrement({
        tenantId: "tn_0123456789abcdef",
        model: "tiny-chat",
        promptTokens: 12,
        completionTokens: 30,
        at: Date.UTC(2026, 11, 3, 23, 59),
      }),
    ).toEqual({
      tenantId: "tn_0123456789abcdef",
      usageKey: "2026-12-03#tiny-chat",
      date: "2026-12-03",
      model: "tiny-chat",
      promptTokens: 12,
      completionTokens: 30,
    });
  });

  it.each([
    ["negative prompt tokens", { promptTokens: -1 }],
    ["fractional completion tokens", { completionTokens: 1.5 }],
    ["NaN tokens", { promptTokens: Number.NaN }],
    ["no model", { model: "" }],
    ["no tenant", { tenantId: "" }],
  ])("refuses an increment with %s", (_, change) => {
    const usage = { tenantId: "tn_a", model: "m", promptTokens: 1, completionTokens: 1, at: 0, ...change };
    expect(() => usageIncrement(usage)).toThrow();
  });
});
