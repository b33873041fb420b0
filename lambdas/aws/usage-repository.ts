import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { usageIncrement, usageKeyRange } from "../core/usage/keys.ts";
import type { ChatUsage, DailyUsage, UsageReader, UsageRecorder } from "../core/usage/usage.ts";

/** A `usage` item: a tenant's totals for one model on one UTC day. */
interface UsageItem {
  readonly tenantId: string;
  readonly usageKey: string;
  readonly date: string;
  readonly model: string;
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/**
 * The `usage` table: the chat function adds each answered chat to its day's totals (`record`, one
 * UpdateItem), the usage API reads a tenant's days (`daily`, one key-range query). Every access is
 * keyed by the tenant.
 */
export class UsageRepository implements UsageRecorder, UsageReader {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /**
   * Adds one chat to its day's totals. `ADD` creates the counters on the day's first chat and adds
   * atomically after, so concurrent chats never lose one another's tokens. Not idempotent: a retried
   * call counts twice (the chat records once, after its answer).
   */
  async record(usage: ChatUsage): Promise<void> {
    const item = usageIncrement(usage);
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { tenantId: item.tenantId, usageKey: item.usageKey },
        UpdateExpression:
          "ADD #requests :one, #prompt :prompt, #completion :completion SET #date = :date, #model = :model",
        // `date` is a DynamoDB reserved word; the others are named alike for symmetry.
        ExpressionAttributeNames: {
          "#requests": "requests",
          "#prompt": "promptTokens",
          "#completion": "completionTokens",
          "#date": "date",
          "#model": "model",
        },
        ExpressionAttributeValues: {
          ":one": 1,
          ":prompt": item.promptTokens,
          ":completion": item.completionTokens,
          ":date": item.date,
          ":model": item.model,
        },
      }),
    );
  }

  /** The tenant's totals from UTC day `start` to `end` (both included, `YYYY-MM-DD`), in key order. */
  async daily(tenantId: string, start: string, end: string): Promise<DailyUsage[]> {
    const { from, to } = usageKeyRange(start, end);
    const days: DailyUsage[] = [];
    let exclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "tenantId = :t AND usageKey BETWEEN :from AND :to",
          ExpressionAttributeValues: { ":t": tenantId, ":from": from, ":to": to },
          ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}),
        }),
      );
      for (const item of (page.Items ?? []) as UsageItem[]) {
        days.push({
          date: item.date,
          model: item.model,
          requests: item.requests ?? 0,
          promptTokens: item.promptTokens ?? 0,
          completionTokens: item.completionTokens ?? 0,
        });
      }
      exclusiveStartKey = page.LastEvaluatedKey;
    } while (exclusiveStartKey);
    return days;
  }
}
