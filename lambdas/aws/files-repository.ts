import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import type { FilePurpose, FileRecord, FileStatus } from "../core/files/file-record.ts";
import { queryNewestFirst } from "./paged-query.ts";

/** The `files` table; every read is keyed by the tenant, so another tenant's file simply is not found. */
export class FilesRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async create(record: FileRecord): Promise<void> {
    await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        Item: record,
        ConditionExpression: "attribute_not_exists(fileId)",
      }),
    );
  }

  /**
   * Creates the record unless one with its key exists: true when this call created it, false when it
   * was there already (a redelivered event making the same derived id; the stored one is kept).
   */
  async createIfAbsent(record: FileRecord): Promise<boolean> {
    try {
      await this.create(record);
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === "ConditionalCheckFailedException") return false;
      throw error;
    }
  }

  async get(tenantId: string, fileId: string): Promise<FileRecord | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: { tenantId, fileId }, ConsistentRead: true }),
    );
    return Item as FileRecord | undefined;
  }

  /** Newest first; `after` is the last id of the previous page; only files of `purpose` when given. */
  async list(
    tenantId: string,
    limit: number,
    after?: string,
    purpose?: FilePurpose,
  ): Promise<{ items: FileRecord[]; hasMore: boolean }> {
    if (purpose === undefined) {
      return queryNewestFirst<FileRecord>(this.documents, {
        tableName: this.tableName,
        partitionName: "tenantId",
        partitionValue: tenantId,
        sortName: "fileId",
        limit,
        after,
      });
    }
    // DynamoDB applies Limit before the filter: read on until one more than a page matched (that one
    // tells whether another page exists) or the tenant's files end.
    const items: FileRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: after ? "tenantId = :t AND fileId < :after" : "tenantId = :t",
          FilterExpression: "#purpose = :purpose",
          ExpressionAttributeNames: { "#purpose": "purpose" },
          ExpressionAttributeValues: {
            ":t": tenantId,
            ":purpose": purpose,
            ...(after ? { ":after": after } : {}),
          },
          ScanIndexForward: false,
          Limit: Math.max(limit + 1, 100),
          ExclusiveStartKey: start,
        }),
      );
      items.push(...((page.Items ?? []) as FileRecord[]));
      start = page.LastEvaluatedKey;
    } while (start && items.length <= limit);
    return { items: items.slice(0, limit), hasMore: items.length > limit };
  }

  /**
   * Moves a file from one of `from` to `status` with the given fields; false when the file is gone or
   * its status is no longer one of `from` (a concurrent change won).
   */
  async transition(
    tenantId: string,
    fileId: string,
    from: readonly FileStatus[],
    status: FileStatus,
    fields: Partial<FileRecord> = {},
  ): Promise<boolean> {
    const entries = Object.entries({ ...fields, status }).filter(([, v]) => v !== undefined);
    const names: Record<string, string> = { "#status": "status" };
    const values: Record<string, unknown> = {};
    const sets = entries.map(([key, value], i) => {
      names[`#f${i}`] = key;
      values[`:f${i}`] = value;
      return `#f${i} = :f${i}`;
    });
    from.forEach((s, i) => {
      values[`:from${i}`] = s;
    });
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { tenantId, fileId },
          UpdateExpression: `SET ${sets.join(", ")}`,
          ConditionExpression: `attribute_exists(fileId) AND #status IN (${from.map((_, i) => `:from${i}`).join(", ")})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === "ConditionalCheckFailedException") return false;
      throw error;
    }
  }

  async delete(tenantId: string, fileId: string): Promise<void> {
    await this.documents.send(new DeleteCommand({ TableName: this.tableName, Key: { tenantId, fileId } }));
  }
}
