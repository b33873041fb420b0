import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { ApiKeyRecord } from "../core/tenants/api-keys.ts";

/** The api-keys table: key hash → tenant. Only hashes are ever written. */
export class ApiKeysRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async findByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: { keyHash } }),
    );
    return Item as ApiKeyRecord | undefined;
  }

  async create(record: ApiKeyRecord): Promise<void> {
    await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        Item: record,
        ConditionExpression: "attribute_not_exists(keyHash)",
      }),
    );
  }

  async listByTenant(tenantId: string): Promise<ApiKeyRecord[]> {
    const items: ApiKeyRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: "byTenant",
          KeyConditionExpression: "tenantId = :t",
          ExpressionAttributeValues: { ":t": tenantId },
          ExclusiveStartKey: start,
        }),
      );
      items.push(...((page.Items ?? []) as ApiKeyRecord[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Every key of every tenant: an operator's listing, not a request path. */
  async listAll(): Promise<ApiKeyRecord[]> {
    const items: ApiKeyRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new ScanCommand({ TableName: this.tableName, ExclusiveStartKey: start }),
      );
      items.push(...((page.Items ?? []) as ApiKeyRecord[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Marks a key revoked; false when no such key exists. Revoking twice keeps the first time. */
  async revoke(keyId: string, now: number): Promise<ApiKeyRecord | undefined> {
    const record = (await this.listAll()).find((r) => r.keyId === keyId);
    if (!record) return undefined;
    if (record.revokedAt) return record;
    const { Attributes } = await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { keyHash: record.keyHash },
        UpdateExpression: "SET revokedAt = :now",
        ConditionExpression: "attribute_exists(keyHash)",
        ExpressionAttributeValues: { ":now": now },
        ReturnValues: "ALL_NEW",
      }),
    );
    return Attributes as ApiKeyRecord;
  }
}
