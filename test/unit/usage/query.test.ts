import { describe, expect, it } from "vitest";
import { InvalidRequestError } from "../../../lambdas/core/errors.ts";
import { isCalendarDate, parseUsageQuery } from "../../../lambdas/core/usage/query.ts";

function rejection(query: Record<string, string>): InvalidRequestError {
  try {
    parseUsageQuery(query);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    return error as InvalidRequestError;
  }
  throw new Error(`accepted ${JSON.stringify(query)}`);
}

describe("GET /v4/usage query", () => {
  it("takes a start and an end day", () => {
    expect(parseUsageQuery({ start: "2026-12-01", end: "2026-12-31" })).toEqual({
      start: "2026-12-01",
      end: "2026-12-31",
    });
  });

  it("takes a single day (start equal to end)", () => {
    expect(parseUsageQuery({ start: "2026-12-03", end: "2026-12-03" })).toEqual({
      start: "2026-12-03",
      end: "2026-12-03",
    });
  });

  it.each([["start"], ["end"]])("requires %s", (param) => {
    const query: Record<string, string> = { start: "2026-12-01", end: "2026-12-02" };
    delete query[param];
    expect(rejection(query)).toMatchObject({
      status: 400,
      param,
      code: "missing_required_parameter",
    });
  });

  it("requires both when neither is given, naming start first", () => {
    expect(rejection({})).toMatchObject({ status: 400, param: "start" });
  });

  it.each([
    ["2026-02-30"],
    ["2025-02-29"],
    ["2026-13-01"],
    ["2026-00-10"],
    ["2026-1-01"],
    ["20261201"],
    ["2026-12-01T00:00:00Z"],
    [""],
    ["yesterday"],
  ])("rejects %j as a day", (day) => {
    expect(rejection({ start: day, end: "2026-12-31" })).toMatchObject({
      status: 400,
      type: "invalid_request_error",
      param: "start",
    });
    expect(rejection({ start: "2026-01-01", end: day })).toMatchObject({ status: 400, param: "end" });
  });

  it("accepts the leap day of a leap year", () => {
    expect(isCalendarDate("2028-02-29")).toBe(true);
    expect(isCalendarDate("2000-02-29")).toBe(true);
    expect(isCalendarDate("1900-02-29")).toBe(false);
  });

  it("rejects an end before the start", () => {
    const error = rejection({ start: "2026-12-02", end: "2026-12-01" });
    expect(error).toMatchObject({ status: 400, param: "end", code: "invalid_request" });
    expect(error.message).toContain("before start");
  });

  it("takes at most 366 days, both ends included", () => {
    expect(parseUsageQuery({ start: "2028-01-01", end: "2028-12-31" })).toEqual({
      start: "2028-01-01",
      end: "2028-12-31",
    });
    expect(parseUsageQuery({ start: "2026-01-01", end: "2027-01-01" })).toBeDefined();
    const error = rejection({ start: "2026-01-01", end: "2027-01-02" });
    expect(error).toMatchObject({ status: 400, param: "end" });
    expect(error.message).toContain("367");
  });

  it("rejects unknown parameters, naming each", () => {
    const error = rejection({ start: "2026-12-01", end: "2026-12-02", from: "x", limit: "5" });
    expect(error).toMatchObject({ status: 400, param: "from", code: "unknown_parameter" });
    expect(error.message).toContain("'from', 'limit'");
  });

  it("rejects an unknown parameter before a missing one", () => {
    expect(rejection({ from: "2026-12-01", to: "2026-12-02" })).toMatchObject({ param: "from" });
  });
});
