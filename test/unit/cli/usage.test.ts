import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../../../local/cli/ftctl.ts";
import { usageRange } from "../../../local/cli/usage.ts";
import { fakeApi, modelsFake, run } from "./fake-api.ts";

const row = (date: string, model: string, requests: number, prompt: number, completion: number) => ({
  object: "usage.daily",
  date,
  model,
  requests,
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
});

const ROWS = [
  row("2026-03-01", "full-facts", 3, 120, 45),
  row("2026-03-01", "tiny-chat", 12, 1500, 980),
  row("2026-03-14", "lora-facts", 1, 7, 2),
];

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await close?.();
  close = undefined;
});

async function start() {
  const api = await fakeApi(modelsFake({ usage: ROWS }));
  close = api.close;
  return api;
}

describe("ftctl usage", () => {
  it("defaults to the last 30 days through today (UTC) and prints a table with a total line", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-03-15T23:30:00Z"));
    const api = await start();
    const result = await run(api.base, ["usage"]);
    expect(result.code).toBe(0);
    const [get] = api.seen;
    expect(get?.method).toBe("GET");
    expect(get?.path).toBe("/v4/usage");
    expect(Object.fromEntries(get!.query)).toEqual({ start: "2026-02-14", end: "2026-03-15" });
    expect(result.out.split("\n")).toEqual([
      "date        model       requests  prompt  completion  total",
      "2026-03-01  full-facts         3     120          45    165",
      "2026-03-01  tiny-chat         12    1500         980   2480",
      "2026-03-14  lora-facts         1       7           2      9",
      "total                         16    1627        1027   2654",
    ]);
  });

  it("--start and --end go as they are; --json prints the API's answer", async () => {
    const api = await start();
    const result = await run(api.base, ["usage", "--start", "2026-03-01", "--end=2026-03-02", "--json"]);
    expect(result.code).toBe(0);
    expect(Object.fromEntries(api.seen[0]!.query)).toEqual({ start: "2026-03-01", end: "2026-03-02" });
    expect(JSON.parse(result.out)).toEqual({
      object: "list",
      start: "2026-03-01",
      end: "2026-03-02",
      data: ROWS.slice(0, 2),
    });
  });

  it("says so when the range holds no usage", async () => {
    const api = await start();
    const result = await run(api.base, ["usage", "--start", "2025-01-01", "--end", "2025-01-31"]);
    expect(result.code).toBe(0);
    expect(result.out).toBe("no usage from 2025-01-01 to 2025-01-31");
  });

  it("refuses a bad range locally, with a precise message, before any request", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-03-15T12:00:00Z"));
    const api = await start();
    const cases: [string[], string][] = [
      [
        ["--start", "2026-3-1"],
        "ftctl: --start must be a calendar date written YYYY-MM-DD (a UTC day), not '2026-3-1'",
      ],
      [
        ["--start", "2026-02-30"],
        "ftctl: --start must be a calendar date written YYYY-MM-DD (a UTC day), not '2026-02-30'",
      ],
      [
        ["--end", "yesterday"],
        "ftctl: --end must be a calendar date written YYYY-MM-DD (a UTC day), not 'yesterday'",
      ],
      [
        ["--start", "2026-03-10", "--end", "2026-03-01"],
        "ftctl: --start (2026-03-10) is after --end (2026-03-01)",
      ],
      [["--start", "2026-04-01"], "ftctl: --start (2026-04-01) is after today (2026-03-15, UTC)"],
      [
        ["--start", "2025-01-01", "--end", "2026-01-02"],
        "ftctl: a usage range may cover at most 366 days; 2025-01-01 to 2026-01-02 covers 367",
      ],
      [["extra"], "ftctl: unexpected 'extra'"],
    ];
    for (const [argv, message] of cases) {
      const result = await run(api.base, ["usage", ...argv]);
      expect(result.code, argv.join(" ")).toBe(2);
      expect(result.err.split("\n")[0], argv.join(" ")).toBe(message);
      expect(result.err).toContain("usage: ftctl usage [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--json]");
    }
    expect(api.seen).toHaveLength(0);
  });

  it("--start alone runs through today; --end alone covers the 30 days up to it", () => {
    const now = Date.parse("2026-01-05T00:00:01Z");
    expect(usageRange({ start: "2025-12-01" }, now)).toEqual({ start: "2025-12-01", end: "2026-01-05" });
    expect(usageRange({ end: "2024-03-01" }, now)).toEqual({ start: "2024-02-01", end: "2024-03-01" });
    expect(usageRange({}, now)).toEqual({ start: "2025-12-07", end: "2026-01-05" });
  });

  it("the help texts name usage", async () => {
    const api = await start();
    const lines: string[] = [];
    expect(await main(["--help"], (line) => lines.push(line))).toBe(0);
    const top = { out: lines.join("\n") };
    expect(top.out).toContain(
      "  ftctl usage [--start YYYY-MM-DD] [--end YYYY-MM-DD]   chat tokens per day and model (UTC days)",
    );
    expect(top.out).toContain("  ftctl models deploy <model code> [--wait]");
    const usage = await run(api.base, ["usage", "--help"]);
    expect(usage.code).toBe(0);
    expect(usage.out).toMatch(/^usage: ftctl usage \[--start YYYY-MM-DD\] \[--end YYYY-MM-DD\] \[--json\]/);
    expect(api.seen).toHaveLength(0);
  });
});
