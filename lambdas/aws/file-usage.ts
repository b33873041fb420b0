import { type DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";

/** Statuses in which a job still needs its files. */
const UNFINISHED = ["validating_files", "queued", "running"];

/** Which of a tenant's unfinished jobs use a file (blocks deleting it). */
export async function unfinishedJobsUsingFile(
  documents: DynamoDBDocumentClient,
  jobsTable: string,
  tenantId: string,
  fileId: string,
): Promise<string[]> {
  const jobIds: string[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new QueryCommand({
        TableName: jobsTable,
        KeyConditionExpression: "tenantId = :t",
        FilterExpression: "(trainingFile = :f OR validationFile = :f) AND #status IN (:s0, :s1, :s2)",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":t": tenantId,
          ":f": fileId,
          ":s0": UNFINISHED[0],
          ":s1": UNFINISHED[1],
          ":s2": UNFINISHED[2],
        },
        ProjectionExpression: "jobId",
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) jobIds.push(item.jobId as string);
    start = page.LastEvaluatedKey;
  } while (start);
  return jobIds;
}
