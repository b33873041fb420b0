import { z } from "zod";
import type { DatasetStatistics } from "../datasets/validate.ts";
import type { DatasetSize } from "./hyperparameters.ts";

/**
 * The part of a file's validation statistics ({@link DatasetStatistics}, stored untyped on the file
 * record) that planning and estimating a job read. Every field may be missing: a record written by an
 * older validator, or a value that is not a number, counts as not measured.
 */
export interface TrainingFileStatistics {
  readonly examples?: DatasetStatistics["examples"];
  readonly tokens?: Partial<Pick<DatasetStatistics["tokens"], "total" | "max" | "method">>;
}

const count = z.number().optional().catch(undefined);
const statisticsSchema = z
  .object({
    examples: count,
    tokens: z
      .object({ total: count, max: count, method: z.string().optional().catch(undefined) })
      .optional()
      .catch(undefined),
  })
  .catch({});

/** Reads a file record's `statistics`; anything unreadable is left out rather than trusted. */
export function parseTrainingFileStatistics(value: unknown): TrainingFileStatistics {
  return statisticsSchema.parse(value ?? {});
}

/** What a job is planned and estimated on. */
export interface TrainingDataSize extends DatasetSize {
  /** Tokens over all valid examples; 0 when not measured. */
  readonly totalTokens: number;
}

/**
 * The training file's size for the planner and the estimate. An estimated count (no tokenizer for the
 * family; an `estimate:` method) can be several times too low for a byte-level tokenizer: sizing
 * max_seq_length on it would truncate examples, so the longest example is left out then.
 */
export function trainingDataSize(statistics: TrainingFileStatistics): TrainingDataSize {
  const { examples = 0, tokens } = statistics;
  const measured = tokens?.max !== undefined && !tokens.method?.startsWith("estimate:");
  return {
    examples,
    totalTokens: tokens?.total ?? 0,
    ...(measured ? { maxExampleTokens: tokens.max } : {}),
  };
}
