import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactGetCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { type FileUser, jobsStillUsing } from "../core/files/file-record.ts";
import type { JobStatus } from "../core/jobs/state-machine.ts";

/** Statuses in which a job still needs its files (a paused job reads them again when resumed). */
const UNFINISHED = ["validating_files", "queued", "running", "paused"];

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
        FilterExpression: "(trainingFile = :f OR validationFile = :f) AND #status IN (:s0, :s1, :s2, :s3)",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":t": tenantId,
          ":f": fileId,
          ":s0": UNFINISHED[0],
          ":s1": UNFINISHED[1],
          ":s2": UNFINISHED[2],
          ":s3": UNFINISHED[3],
        },
        ProjectionExpression: "jobId",
        ExclusiveStartKey: start,
        ConsistentRead: true,
      }),
    );
    for (const item of page.Items ?? []) jobIds.push(item.jobId as string);
    start = page.LastEvaluatedKey;
  } while (start);
  return jobIds;
}

/** Whether a delete may remove the file: it holds the claim, or these unfinished jobs need the file. */
export type DeletionClaim =
  | { readonly claimed: true }
  | { readonly claimed: false; readonly jobIds: string[] };

/** How often a claim reads again after a job took the file meanwhile (then that job answers 409). */
const CLAIM_ATTEMPTS = 4;
/** TransactGetItems reads at most 100 items. */
const TRANSACT_GET_LIMIT = 100;

/**
 * Claims a file for deletion unless an unfinished job needs it: the delete half of making job create
 * and file delete safe against each other. Either the job holds the file, or the file is gone and the
 * create is a 400; never a job whose file was deleted under it.
 *
 * The file item is the one place both sides write, so DynamoDB serialises them there:
 * - creating a job adds its id to the file's `usedByJobs` set in the create transaction, on condition
 *   that the file is `processed` and has no `deletingAt` (JobsRepository.create);
 * - a delete reads the file, reads every job of `usedByJobs` in transactions (TransactGetItems never
 *   returns a job whose create is still committing as missing: it conflicts instead, and is retried),
 *   and when none is unfinished sets `deletingAt`, on condition that `usedByJobs` has the size it read.
 *   The set only grows, so the same size means the same jobs: no job took the file since. If one did,
 *   the claim reads again and that job answers 409. Once `deletingAt` is set no create can succeed.
 * A claim left by a delete that died midway is taken over by the next delete of the file. Jobs that
 * predate `usedByJobs` are found by the tenant's jobs query as before.
 *
 * A decrement when jobs end would also work, but would make the dispatcher and the status function
 * (every path to a terminal status) write the files table; reading the holders keeps it here.
 */
export async function claimFileForDeletion(
  documents: DynamoDBDocumentClient,
  tables: { readonly files: string; readonly jobs: string },
  tenantId: string,
  fileId: string,
  nowSeconds: number,
): Promise<DeletionClaim> {
  const legacy = await unfinishedJobsUsingFile(documents, tables.jobs, tenantId, fileId);
  if (legacy.length > 0) return { claimed: false, jobIds: legacy };
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    const { Item: file } = await documents.send(
      new GetCommand({
        TableName: tables.files,
        Key: { tenantId, fileId },
        ProjectionExpression: "fileId, usedByJobs, deletingAt",
        ConsistentRead: true,
      }),
    );
    // Gone (a concurrent delete finished), or claimed by a delete that did not finish: ours to finish.
    if (!file || file.deletingAt !== undefined) return { claimed: true };
    const users = [...((file.usedByJobs as Set<string> | undefined) ?? [])];
    const busy = jobsStillUsing(await readUsers(documents, tables.jobs, tenantId, users));
    if (busy.length > 0) return { claimed: false, jobIds: busy };
    try {
      await documents.send(
        new UpdateCommand({
          TableName: tables.files,
          Key: { tenantId, fileId },
          UpdateExpression: "SET deletingAt = :now",
          ConditionExpression:
            users.length === 0
              ? "attribute_exists(fileId) AND attribute_not_exists(usedByJobs)"
              : "attribute_exists(fileId) AND size(usedByJobs) = :users",
          ExpressionAttributeValues: {
            ":now": nowSeconds,
            ...(users.length === 0 ? {} : { ":users": users.length }),
          },
        }),
      );
      return { claimed: true };
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name !== "ConditionalCheckFailedException" && name !== "TransactionConflictException") throw error;
      await pause(attempt);
    }
  }
  throw new Error(`file ${fileId} kept gaining jobs while it was being deleted`);
}

/** The jobs' statuses, read in transactions of up to 100 (undefined for a job that is gone). */
async function readUsers(
  documents: DynamoDBDocumentClient,
  jobsTable: string,
  tenantId: string,
  jobIds: readonly string[],
): Promise<FileUser[]> {
  const users: FileUser[] = [];
  for (let i = 0; i < jobIds.length; i += TRANSACT_GET_LIMIT) {
    const chunk = jobIds.slice(i, i + TRANSACT_GET_LIMIT);
    const responses = await retryConflicts(async () => {
      const result = await documents.send(
        new TransactGetCommand({
          TransactItems: chunk.map((jobId) => ({
            Get: {
              TableName: jobsTable,
              Key: { tenantId, jobId },
              ProjectionExpression: "jobId, #status",
              ExpressionAttributeNames: { "#status": "status" },
            },
          })),
        }),
      );
      return result.Responses ?? [];
    });
    chunk.forEach((jobId, j) => {
      users.push({ jobId, status: responses[j]?.Item?.status as JobStatus | undefined });
    });
  }
  return users;
}

/** Runs `read` again while it is cancelled by a conflicting transaction (a job being created). */
async function retryConflicts<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      const name = (error as { name?: string }).name;
      const conflict = name === "TransactionCanceledException" || name === "TransactionConflictException";
      if (!conflict || attempt >= 4) throw error;
      await pause(attempt);
    }
  }
}

function pause(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt * (0.5 + Math.random())));
}
