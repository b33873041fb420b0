import { type DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";

/**
 * One page of a tenant's items, newest first, for OpenAI-style `after`/`limit` lists: the sort key is a
 * time-sortable id, so `after` (the last id of the previous page) is a key condition, not a scan.
 */
export async function queryNewestFirst<T>(
  documents: DynamoDBDocumentClient,
  args: {
    tableName: string;
    partitionName: string;
    partitionValue: string;
    sortName: string;
    limit: number;
    after?: string | undefined;
  },
): Promise<{ items: T[]; hasMore: boolean }> {
  const { after } = args;
  const { Items } = await documents.send(
    new QueryCommand({
      TableName: args.tableName,
      KeyConditionExpression: after ? "#pk = :pk AND #sk < :after" : "#pk = :pk",
      ExpressionAttributeNames: { "#pk": args.partitionName, ...(after ? { "#sk": args.sortName } : {}) },
      ExpressionAttributeValues: { ":pk": args.partitionValue, ...(after ? { ":after": after } : {}) },
      ScanIndexForward: false,
      // One extra item tells whether another page exists without a second request.
      Limit: args.limit + 1,
    }),
  );
  const items = (Items ?? []) as T[];
  return { items: items.slice(0, args.limit), hasMore: items.length > args.limit };
}
