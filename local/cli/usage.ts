import { isCalendarDate, MAX_USAGE_RANGE_DAYS } from "../../lambdas/core/usage/query.ts";
import { UsageError } from "./admin.ts";
import type { CommandSpec, DailyUsageObject, OptionValues } from "./tenant-api.ts";

/** `ftctl usage`: the tenant's chat tokens per UTC day and model (`GET /v4/usage`). */

export const USAGE_USAGE = `ftctl usage [--start YYYY-MM-DD] [--end YYYY-MM-DD]   chat tokens per day and model (UTC days)`;

const COMMAND_USAGE = `usage: ftctl usage [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--json]

Your chat requests and tokens per UTC day and model (GET /usage), both days included, at most
${MAX_USAGE_RANGE_DAYS} days. Default: the last 30 days through today (UTC); --start alone runs through today,
--end alone covers the 30 days up to it. --json prints the API's answer as it is.`;

/** Days the default range covers, today included. */
const DEFAULT_DAYS = 30;
const DAY_MS = 24 * 3600 * 1000;

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const dayMs = (day: string) => Date.parse(`${day}T00:00:00Z`);

/** The `start` and `end` of the request from the options, checked as the API checks them. */
export function usageRange(values: OptionValues, now: number = Date.now()): { start: string; end: string } {
  const option = (name: "start" | "end") => {
    const value = values[name] as string | undefined;
    if (value !== undefined && !isCalendarDate(value)) {
      throw new UsageError(
        `--${name} must be a calendar date written YYYY-MM-DD (a UTC day), not '${value}'\n\n${COMMAND_USAGE}`,
      );
    }
    return value;
  };
  const startOption = option("start");
  const endOption = option("end");
  const end = endOption ?? utcDay(now);
  const start = startOption ?? utcDay(dayMs(end) - (DEFAULT_DAYS - 1) * DAY_MS);
  const days = (dayMs(end) - dayMs(start)) / DAY_MS + 1;
  if (days < 1) {
    const endName = endOption ? `--end (${end})` : `today (${end}, UTC)`;
    throw new UsageError(`--start (${start}) is after ${endName}\n\n${COMMAND_USAGE}`);
  }
  if (days > MAX_USAGE_RANGE_DAYS) {
    throw new UsageError(
      `a usage range may cover at most ${MAX_USAGE_RANGE_DAYS} days; ${start} to ${end} covers ${days}\n\n${COMMAND_USAGE}`,
    );
  }
  return { start, end };
}

export const USAGE_COMMANDS: Record<string, CommandSpec> = {
  usage: {
    usage: COMMAND_USAGE,
    options: { start: { type: "string" }, end: { type: "string" } },
    run: async (ctx, args, values) => {
      if (args.length > 0) throw new UsageError(`unexpected '${args.join(" ")}'\n\n${COMMAND_USAGE}`);
      const { start, end } = usageRange(values);
      const usage = await ctx.api.getUsage(start, end);
      if (ctx.json) {
        ctx.out(JSON.stringify(usage, null, 2));
        return 0;
      }
      if (usage.data.length === 0) {
        ctx.out(`no usage from ${usage.start} to ${usage.end}`);
        return 0;
      }
      for (const line of usageTable(usage.data)) ctx.out(line);
      return 0;
    },
  },
};

/** The rows as a table under a header, numbers right-aligned, and a total line. */
export function usageTable(rows: readonly DailyUsageObject[]): string[] {
  const sum = (key: "requests" | "prompt_tokens" | "completion_tokens" | "total_tokens") =>
    rows.reduce((total, row) => total + row[key], 0);
  const table = [
    ["date", "model", "requests", "prompt", "completion", "total"],
    ...rows.map((r) => [
      r.date,
      r.model,
      String(r.requests),
      String(r.prompt_tokens),
      String(r.completion_tokens),
      String(r.total_tokens),
    ]),
    [
      "total",
      "",
      String(sum("requests")),
      String(sum("prompt_tokens")),
      String(sum("completion_tokens")),
      String(sum("total_tokens")),
    ],
  ];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table.map((row) =>
    row
      .map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join("  ")
      .trimEnd(),
  );
}
