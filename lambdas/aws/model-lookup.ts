import { type DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";
import type { ModelRecord } from "../core/jobs/wire.ts";

/**
 * A model code's record, across all tenants (codes are globally unique; callers check the owner). The
 * one read the chat function needs, so it gets GetItem on the models table and nothing else.
 */
export async function getModelRecord(
  documents: DynamoDBDocumentClient,
  tableName: string,
  modelCode: string,
): Promise<ModelRecord | undefined> {
  const { Item } = await documents.send(
    new GetCommand({ TableName: tableName, Key: { modelCode }, ConsistentRead: true }),
  );
  return Item as ModelRecord | undefined;
}
