import { z } from "zod";
import type { TrainingSummary } from "../core/jobs/wire.ts";

/**
 * The trainer's result.json, as far as the job record keeps it. Every field is checked on its own and
 * becomes null when missing or malformed (an older trainer writes fewer; a broken one must not make a
 * finished job unreadable): nothing from the file reaches the record unchecked.
 */
const count = z.number().int().nonnegative();
const orNull = <T extends z.ZodType>(schema: T) => schema.nullable().catch(null);

const resultSchema = z.object({
  trained_tokens: orNull(count),
  delivered_step: orNull(count),
  best_step: orNull(count),
  early_stopped: orNull(z.boolean()),
  // z.number() refuses NaN and ±Infinity.
  full_valid_loss: orNull(z.number().nonnegative()),
  full_valid_mean_token_accuracy: orNull(z.number().min(0).max(1)),
  validation_split: orNull(z.object({ fraction: z.number().gt(0).lt(1), examples: count })),
});

export interface ResultSummary {
  readonly trainedTokens: number | null;
  /** Undefined when result.json says nothing about evaluation (a trainer older than it). */
  readonly trainingSummary: TrainingSummary | undefined;
}

/** result.json's content (anything JSON.parse returned) → what the job record keeps of it. */
export function parseResultSummary(raw: unknown): ResultSummary {
  // Every field catches its own errors, so only a non-object could fail: it reads as an empty one.
  const result = resultSchema.parse(
    typeof raw === "object" && raw !== null && !Array.isArray(raw) ? raw : {},
  );
  const summary: TrainingSummary = {
    deliveredStep: result.delivered_step,
    bestStep: result.best_step,
    earlyStopped: result.early_stopped,
    fullValidLoss: result.full_valid_loss,
    fullValidMeanTokenAccuracy: result.full_valid_mean_token_accuracy,
    validationSplit: result.validation_split,
  };
  const saysAnything = Object.values(summary).some((value) => value !== null);
  return { trainedTokens: result.trained_tokens, trainingSummary: saysAnything ? summary : undefined };
}
