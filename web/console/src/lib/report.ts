/**
 * The validation report of a file object (`validation` in lambdas/core/files/wire.ts): listed errors
 * with their line and JSON path, and every error counted per code, listed or not.
 */
export interface ValidationIssue {
  readonly line: number;
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

export interface Validation {
  readonly errors: readonly ValidationIssue[];
  readonly error_counts: Readonly<Record<string, number>>;
  readonly errors_truncated: boolean;
}

export interface ReasonCount {
  readonly code: string;
  readonly count: number;
  /** How many of them are listed (the rest were past the listed maximum). */
  readonly listed: number;
  /** The lines of the listed ones, in order, without repeats (0 = the whole file). */
  readonly lines: readonly number[];
}

/**
 * Counts per reason, most frequent first (ties by code). The API's `error_counts` is the truth (it
 * counts errors past the listed maximum too); a code that only appears among the listed errors is
 * counted from them.
 */
export function countsPerReason(validation: Validation): ReasonCount[] {
  const listed = new Map<string, number[]>();
  for (const issue of validation.errors) {
    const lines = listed.get(issue.code) ?? [];
    lines.push(issue.line);
    listed.set(issue.code, lines);
  }
  const codes = new Set([...Object.keys(validation.error_counts), ...listed.keys()]);
  return [...codes]
    .map((code) => {
      const lines = listed.get(code) ?? [];
      return {
        code,
        count: Math.max(validation.error_counts[code] ?? 0, lines.length),
        listed: lines.length,
        lines: [...new Set(lines)],
      };
    })
    .sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
}

/** The listed errors in file order: file-level (line 0) first, then by line, keeping the API's order within a line. */
export function sortedIssues(validation: Validation): ValidationIssue[] {
  return validation.errors
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => a.issue.line - b.issue.line || a.index - b.index)
    .map(({ issue }) => issue);
}

/** All errors found, listed or not. */
export function totalErrors(validation: Validation): number {
  return countsPerReason(validation).reduce((sum, reason) => sum + reason.count, 0);
}
