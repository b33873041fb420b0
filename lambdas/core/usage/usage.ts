/**
 * Token usage of answered chats, per tenant, per model, per UTC day: what an operator bills from
 * (`GET /v4/usage`). The chat function records one {@link ChatUsage} after each answered chat; the
 * usage store adds it to the day's totals.
 */

/** One answered chat's tokens. */
export interface ChatUsage {
  readonly tenantId: string;
  /** The `model` the client called: a base model's name or a fine-tuned model's code. */
  readonly model: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** When the chat was answered, epoch ms: its UTC day is the day it counts for. */
  readonly at: number;
}

/** Adds a chat's tokens to its tenant's daily totals (durably: the chat waits for it after its answer). */
export interface UsageRecorder {
  record(usage: ChatUsage): Promise<void>;
}

/** One tenant's totals for one model on one UTC day, as the usage store keeps them. */
export interface DailyUsage {
  /** `YYYY-MM-DD`, UTC. */
  readonly date: string;
  readonly model: string;
  /** Answered chats. */
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** Reads a tenant's daily totals between two UTC days, both included. */
export interface UsageReader {
  daily(tenantId: string, start: string, end: string): Promise<DailyUsage[]>;
}
