import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import type { FileRecord, FileStatus } from "../core/files/file-record.ts";
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

  async get(tenantId: string, fileId: string): Promise<FileRecord | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: { tenantId, fileId }, ConsistentRead: true }),
    );
    return Item as FileRecord | undefined;
  }

  /** Newest first; `after` is the last id of the previous page. */
  async list(
    tenantId: string,
    limit: number,
    after?: string,
  ): Promise<{ items: FileRecord[]; hasMore: boolean }> {
    return queryNewestFirst<FileRecord>(this.documents, {
      tableName: this.tableName,
      partitionName: "tenantId",
      partitionValue: tenantId,
      sortName: "fileId",
      limit,
      after,
    });
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
