import { HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { type DynamoDBDocumentClient, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { JobsRepository } from "../../lambdas/aws/jobs-repository.ts";
import { type BaseModelCatalog, findBaseModel } from "../../lambdas/core/catalog/base-models.ts";
import type { DeployerMessage } from "../../lambdas/core/deployments/deployment.ts";
import type { FileRecord } from "../../lambdas/core/files/file-record.ts";
import {
  runName,
  type TrainingMessage,
  type TrainingSubmission,
  trainerEnvironment,
  trainingResources,
} from "../../lambdas/core/jobs/dispatch.ts";
import { transition } from "../../lambdas/core/jobs/state-machine.ts";
import type { JobRecord, ModelRecord } from "../../lambdas/core/jobs/wire.ts";
import type { BootstrappedResources } from "../bootstrap.ts";

export interface ResumeDependencies {
  readonly documents: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
  readonly resources: BootstrappedResources;
  /** Starts a lost run again under its id (LocalBatch.resume). */
  readonly resumeRun: (runId: string, submission: TrainingSubmission) => void;
  readonly catalog: BaseModelCatalog;
  readonly now?: () => number;
  readonly log?: (line: string) => void;
}

export interface ResumeSummary {
  /** Files sent to the validator again (`uploaded`, or `pending_upload` whose object has arrived). */
  readonly filesToValidate: number;
  /** Queued jobs never submitted: sent to the dispatcher again. */
  readonly jobsRequeued: number;
  /** Jobs whose run was lost (queued or running): started again, resuming from the newest checkpoint. */
  readonly runsResumed: number;
  /** Jobs whose run could not be started again: failed, saying why. */
  readonly jobsFailed: number;
  /** Deployments that were deploying or deployed: deploying again on the restarted inference server. */
  readonly deploymentsRestarted: number;
}

/**
 * The work a stopped (or killed) local platform left unfinished, derived again from DynamoDB, which
 * survives a restart, rather than from the SQS messages, which do not (LocalStack keeps queues in
 * memory). Runs at start, before the pollers: every message it sends is idempotent on the other side
 * (the validator skips validated files, the dispatcher submits once, the deployer starts once per
 * deployment id), so a LocalStack that kept its queues only gets duplicates that change nothing.
 */
export async function resumeUnfinishedWork(deps: ResumeDependencies): Promise<ResumeSummary> {
  const summary = {
    filesToValidate: await validateWaitingFiles(deps),
    ...(await resumeJobs(deps)),
    deploymentsRestarted: await restartDeployments(deps),
  };
  const parts = Object.entries(summary)
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${name} ${n}`);
  if (parts.length) deps.log?.(`resumed after a restart: ${parts.join(", ")}`);
  return summary;
}

/**
 * `uploaded` files (their object is in S3, possibly restored) and `pending_upload` files whose presigned
 * PUT arrived while no validator ran: an S3 event for each, as S3 would have sent. An `uploaded` file
 * whose object was lost fails validation with `object_missing`, asking for the upload again.
 */
async function validateWaitingFiles(deps: ResumeDependencies): Promise<number> {
  const bucket = deps.resources.buckets.datasets;
  const files = await scan<FileRecord>(deps.documents, deps.resources.tables.files, "#s IN (:a, :b)", {
    ":a": "pending_upload",
    ":b": "uploaded",
  });
  let sent = 0;
  for (const file of files) {
    const object = await deps.s3
      .send(new HeadObjectCommand({ Bucket: bucket, Key: file.objectKey }))
      .catch(() => undefined);
    if (file.status === "pending_upload" && !object) continue; // its upload URL may still be used
    const event = {
      Records: [
        {
          eventVersion: "2.1",
          eventSource: "aws:s3",
          awsRegion: process.env.AWS_REGION ?? "us-east-1",
          eventTime: new Date().toISOString(),
          eventName: "ObjectCreated:Put",
          s3: {
            s3SchemaVersion: "1.0",
            bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
            object: {
              key: file.objectKey.split("/").map(encodeURIComponent).join("/"),
              size: object?.ContentLength ?? 0,
              eTag: (object?.ETag ?? "").replaceAll('"', ""),
            },
          },
        },
      ],
    };
    await send(deps.sqs, deps.resources.queueUrls.validation, event);
    sent++;
  }
  return sent;
}

/**
 * Queued and running jobs only: a `paused` job is held (its run was terminated when it was paused) and
 * stays paused across a restart until its tenant resumes it.
 */
async function resumeJobs(
  deps: ResumeDependencies,
): Promise<Pick<ResumeSummary, "jobsRequeued" | "runsResumed" | "jobsFailed">> {
  const { tables, buckets } = deps.resources;
  const jobs = await scan<JobRecord>(deps.documents, tables.jobs, "#s IN (:a, :b)", {
    ":a": "queued",
    ":b": "running",
  });
  const repository = new JobsRepository(deps.documents, {
    jobs: tables.jobs,
    events: tables["job-events"],
    models: tables.models,
  });
  const counts = { jobsRequeued: 0, runsResumed: 0, jobsFailed: 0 };
  const nowSeconds = () => Math.floor((deps.now?.() ?? Date.now()) / 1000);
  for (const job of jobs) {
    if (job.status === "queued" && !job.batchJobId) {
      // A claim held by a dispatcher that died with the platform would hold the job back for minutes.
      await deps.documents
        .send(
          new UpdateCommand({
            TableName: tables.jobs,
            Key: { tenantId: job.tenantId, jobId: job.jobId },
            UpdateExpression: "REMOVE dispatchClaim, dispatchClaimExpires",
            ConditionExpression:
              "#s = :queued AND (attribute_not_exists(batchJobId) OR attribute_type(batchJobId, :null))",
            ExpressionAttributeNames: { "#s": "status" },
            ExpressionAttributeValues: { ":queued": "queued", ":null": "NULL" },
          }),
        )
        .catch(() => {});
      const message: TrainingMessage = { tenantId: job.tenantId, jobId: job.jobId };
      await send(deps.sqs, deps.resources.queueUrls.training, message);
      counts.jobsRequeued++;
      continue;
    }
    const base = findBaseModel(job.model, deps.catalog);
    if (!job.batchJobId || !base) {
      const reason = `its training run was lost when the local platform stopped${
        base ? "" : `, and its base model '${job.model}' is no longer offered`
      }`;
      const result = transition(job.status, { type: "batch_failed", reason });
      if (result.ok) {
        await repository.applyTransition({
          job,
          result,
          nowSeconds: nowSeconds(),
          model: { status: "failed" },
        });
        counts.jobsFailed++;
      }
      continue;
    }
    deps.resumeRun(job.batchJobId, {
      name: runName(job),
      tenantId: job.tenantId,
      jobId: job.jobId,
      method: job.method,
      ...trainingResources(job),
      environment: trainerEnvironment(job, base, {
        datasetsBucket: buckets.datasets,
        artifactsBucket: buckets.artifacts,
        jobsTable: tables.jobs,
        eventsTable: tables["job-events"],
      }),
    });
    counts.runsResumed++;
  }
  return counts;
}

/**
 * Live deployments lost their server (the local inference server starts empty): each is `deploying`
 * again, with as long to pass its health check as it had at first, and its deploy message is sent
 * again. The deployer loads it, or fails it saying why.
 */
async function restartDeployments(deps: ResumeDependencies): Promise<number> {
  const models = await scan<ModelRecord>(
    deps.documents,
    deps.resources.tables.models,
    "deployment.#s IN (:a, :b)",
    { ":a": "deploying", ":b": "deployed" },
  );
  const nowSeconds = Math.floor((deps.now?.() ?? Date.now()) / 1000);
  let restarted = 0;
  for (const model of models) {
    const deployment = model.deployment!;
    try {
      await deps.documents.send(
        new UpdateCommand({
          TableName: deps.resources.tables.models,
          Key: { modelCode: model.modelCode },
          UpdateExpression:
            "SET deployment.#s = :deploying, deployment.deadline = :deadline, deployment.deployedAt = :null " +
            "REMOVE deployment.endpoint",
          ConditionExpression: "deployment.id = :id AND deployment.#s IN (:deploying, :deployed)",
          ExpressionAttributeNames: { "#s": "status" },
          ExpressionAttributeValues: {
            ":deploying": "deploying",
            ":deployed": "deployed",
            ":deadline": nowSeconds + Math.max(60, deployment.deadline - deployment.requestedAt),
            ":null": null,
            ":id": deployment.id,
          },
        }),
      );
    } catch (error) {
      if ((error as { name?: string }).name === "ConditionalCheckFailedException") continue;
      throw error;
    }
    const message: DeployerMessage = {
      action: "deploy",
      modelCode: model.modelCode,
      deploymentId: deployment.id,
    };
    await send(deps.sqs, deps.resources.queueUrls.deployments, message);
    restarted++;
  }
  return restarted;
}

async function scan<T>(
  documents: DynamoDBDocumentClient,
  table: string,
  filter: string,
  values: Record<string, unknown>,
): Promise<T[]> {
  const items: T[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({
        TableName: table,
        FilterExpression: filter,
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: values,
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...((page.Items ?? []) as T[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

async function send(sqs: SQSClient, queueUrl: string, body: unknown): Promise<void> {
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(body) }));
}
