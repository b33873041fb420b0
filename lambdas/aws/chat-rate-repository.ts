import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { TokenRateLimiter, type TokenWindowStore, tokensPerMinuteFromEnv } from "../core/chat/token-rate.ts";
import { configEnv, type Env, tableName } from "./env.ts";

/**
 * The `chat-rate` table: one item per tenant per minute (`{tenantId}#{window}`), whose `tokens` each
 * answered chat adds to (ADD, atomic across instances); items expire by TTL (`expiresAt`).
 */
export class ChatRateRepository implements TokenWindowStore {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async used(tenantId: string, window: number): Promise<number> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { windowKey: `${tenantId}#${window}` },
        ProjectionExpression: "tokens",
      }),
    );
    return typeof Item?.tokens === "number" ? Item.tokens : 0;
  }

  async add(tenantId: string, window: number, tokens: number, expiresAt: number): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { windowKey: `${tenantId}#${window}` },
        UpdateExpression: "ADD tokens :tokens SET expiresAt = :expiresAt",
        ExpressionAttributeValues: { ":tokens": tokens, ":expiresAt": expiresAt },
      }),
    );
  }
}

/** The shared token rate of the chat function (`CHAT_TOKENS_PER_MINUTE` over the `chat-rate` table). */
export function tokenRateFromEnv(
  documents: DynamoDBDocumentClient,
  env: Env = process.env,
): TokenRateLimiter {
  return new TokenRateLimiter(
    new ChatRateRepository(documents, tableName("chat-rate", env)),
    tokensPerMinuteFromEnv(configEnv("chatTokensPerMinute", env)),
  );
}
