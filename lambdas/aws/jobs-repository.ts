import {
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { jobKey } from "../core/jobs/ids.ts";
import {
  type CreateJobOutcome,
  type DeleteJobOutcome,
  type DeleteModelOutcome,
  EventCursorNotFoundError,
  type IdempotencyRecord,
  type IdempotencyStore,
  type JobFileParam,
  type JobsStore,
  type ModelsStore,
  type NewJob,
  type Page,
  type TransitionWrite,
} from "../core/jobs/ports.ts";
import { type JobStatus, TERMINAL_STATUSES } from "../core/jobs/state-machine.ts";
import {
  type FineTunedModelStatus,
  type JobEventItem,
  type JobRecord,
  type ModelRecord,
  newJobEventItem,
} from "../core/jobs/wire.ts";
import { getModelRecord } from "./model-lookup.ts";
import { queryNewestFirst } from "./paged-query.ts";

export interface JobTables {
  readonly jobs: string;
  readonly events: string;
  readonly models: string;
  /** Needed by `create` only (the jobs API); the dispatcher and status handler get no access. */
  readonly files?: string;
  readonly idempotency?: string;
}

/** A new job stores `batchJobId: null` (a DynamoDB NULL, which exists): "no run yet" is either. */
const NO_RUN_YET = "(attribute_not_exists(batchJobId) OR attribute_type(batchJobId, :nullType))";

/**
 * The jobs context's tables: jobs, their events, the models they produce, and Idempotency-Keys. Writes
 * that must agree (a job and its model code; a status change and its event) go in one transaction.
 * Outcomes are reported as the ports declare them; which HTTP answer they make is the jobs API's choice.
 */
export class JobsRepository implements JobsStore, ModelsStore, IdempotencyStore {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tables: JobTables,
  ) {}

  /**
   * Creates a job in one transaction: the training (and validation) files must still be `processed`
   * and not claimed by a delete, and each gets the job added to its `usedByJobs` (what a file delete
   * reads to know the file is needed: lambdas/aws/file-usage.ts); the model code must be free
   * (conditional put on the `models` table, whose key it is — this is what makes codes globally
   * unique), and the Idempotency-Key, when given, must be new.
   */
  async create(args: NewJob): Promise<CreateJobOutcome> {
    const { job } = args;
    const { files: filesTable, idempotency: idempotencyTable } = this.tables;
    if (!filesTable || !idempotencyTable)
      throw new Error("JobsRepository.create needs the files and idempotency tables");
    const files: [JobFileParam, string][] = [["training_file", job.trainingFile]];
    // One item per file: a transaction may not write the same item twice.
    if (job.validationFile && job.validationFile !== job.trainingFile)
      files.push(["validation_file", job.validationFile]);
    const items: NamedItem<CreateCondition>[] = [
      ...files.map(([param, fileId]) => ({
        name: param,
        item: {
          Update: {
            TableName: filesTable,
            Key: { tenantId: job.tenantId, fileId },
            UpdateExpression: "ADD usedByJobs :job",
            ConditionExpression: "#status = :processed AND attribute_not_exists(deletingAt)",
            ExpressionAttributeNames: { "#status": "status" },
            ExpressionAttributeValues: { ":processed": "processed", ":job": new Set([job.jobId]) },
          },
        },
      })),
      {
        name: "job_id",
        item: {
          Put: { TableName: this.tables.jobs, Item: job, ConditionExpression: "attribute_not_exists(jobId)" },
        },
      },
      {
        name: "model_code",
        item: {
          Put: {
            TableName: this.tables.models,
            Item: args.model,
            ConditionExpression: "attribute_not_exists(modelCode)",
          },
        },
      },
      ...args.events.map((event) => ({
        name: "event" as const,
        item: { Put: { TableName: this.tables.events, Item: event } },
      })),
    ];
    if (args.idempotency) {
      items.push({
        name: "idempotency_key",
        item: {
          Put: {
            TableName: idempotencyTable,
            Item: args.idempotency,
            // TTL removes an expired key only within days: until then it is free to take again.
            ConditionExpression: "attribute_not_exists(id) OR #expiration < :now",
            ExpressionAttributeNames: { "#expiration": "expiration" },
            ExpressionAttributeValues: { ":now": job.createdAt },
          },
        },
      });
    }
    const result = await transact(this.documents, items);
    if (result.committed) return { outcome: "created" };
    // A taken key decides whatever else failed: the winner with the same key (and, when it sent the
    // same body, the same model code) explains the rest. Else the first failed item does, files first.
    if (result.failed.includes("idempotency_key")) return { outcome: "idempotency_key_taken" };
    const [first] = result.failed;
    switch (first) {
      case "training_file":
      case "validation_file":
        return {
          outcome: "file_not_processed",
          param: first,
          fileId: files.find(([param]) => param === first)?.[1] ?? "",
        };
      case "model_code":
        return { outcome: "model_code_taken", modelCode: args.model.modelCode };
      default:
        // A job id made twice: the ids' 50 random bits make this a bug, not a race to answer.
        throw new Error(`job ${job.jobId} was not created: its ${first} condition failed`, {
          cause: result.error,
        });
    }
  }

  async get(tenantId: string, jobId: string): Promise<JobRecord | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tables.jobs, Key: { tenantId, jobId }, ConsistentRead: true }),
    );
    return Item as JobRecord | undefined;
  }

  async list(tenantId: string, limit: number, after?: string): Promise<Page<JobRecord>> {
    return queryNewestFirst<JobRecord>(this.documents, {
      tableName: this.tables.jobs,
      partitionName: "tenantId",
      partitionValue: tenantId,
      sortName: "jobId",
      limit,
      after,
    });
  }

  /**
   * Applies an accepted state-machine transition: the job's status moves only if it is still one of
   * `allowedFrom` (and `extraCondition` holds), the event is appended and the model's status follows,
   * all or nothing. False when the condition failed: a concurrent change won, nothing was written.
   */
  async applyTransition(args: TransitionWrite): Promise<boolean> {
    const { job, result } = args;
    const fields: Record<string, unknown> = {
      ...args.fields,
      ...(args.runId ? { batchJobId: args.runId } : {}),
      status: result.to,
      updatedAt: args.nowSeconds,
      ...(result.finished ? { finishedAt: args.nowSeconds } : {}),
      ...(result.error ? { error: result.error } : {}),
    };
    const update = setExpression(fields);
    result.allowedFrom.forEach((status, i) => {
      update.values[`:from${i}`] = status;
    });
    let condition = `#f_status IN (${result.allowedFrom.map((_, i) => `:from${i}`).join(", ")})`;
    if (args.runId) {
      condition += ` AND (${NO_RUN_YET} OR #f_batchJobId = :f_batchJobId)`;
      update.values[":nullType"] = "NULL";
    }
    const items: NamedItem<"job_status" | "event" | "model_job">[] = [
      {
        name: "job_status",
        item: {
          Update: {
            TableName: this.tables.jobs,
            Key: { tenantId: job.tenantId, jobId: job.jobId },
            UpdateExpression: update.expression,
            ConditionExpression: `attribute_exists(jobId) AND ${condition}`,
            ExpressionAttributeNames: update.names,
            ExpressionAttributeValues: update.values,
          },
        },
      },
      {
        name: "event",
        item: {
          Put: {
            TableName: this.tables.events,
            Item:
              args.event ??
              newJobEventItem(job.tenantId, job.jobId, {
                level: result.message.level,
                message: result.message.text,
              }),
          },
        },
      },
    ];
    if (args.model) {
      const modelUpdate = setExpression({
        status: args.model.status,
        ...(args.model.artifactUri !== undefined ? { artifactUri: args.model.artifactUri } : {}),
      });
      modelUpdate.values[":job"] = job.jobId;
      items.push({
        name: "model_job",
        item: {
          Update: {
            TableName: this.tables.models,
            Key: { modelCode: job.modelCode },
            UpdateExpression: modelUpdate.expression,
            // The model may have been deleted meanwhile; then there is nothing to update, which is fine
            // only if it belonged to this job — a code reused by a later job must not be touched.
            ConditionExpression: "attribute_exists(modelCode) AND jobId = :job",
            ExpressionAttributeNames: modelUpdate.names,
            ExpressionAttributeValues: modelUpdate.values,
          },
        },
      });
    }
    const outcome = await transact(this.documents, items);
    if (outcome.committed) return true;
    // The status moved on (or the job is gone): a concurrent change won.
    if (outcome.failed.includes("job_status")) return false;
    if (outcome.failed.includes("model_job")) {
      // The model record is gone (deleted): apply the job's change alone.
      const { model: _gone, ...rest } = args;
      return this.applyTransition(rest);
    }
    throw new Error(`job ${job.jobId}: the ${outcome.failed.join(", ")} condition failed`, {
      cause: outcome.error,
    });
  }

  /**
   * Claims the right to submit a queued job to Batch for `leaseSeconds`: two deliveries of the same
   * message never submit at once. False when the job is no longer queued, already has its Batch job,
   * or another delivery holds an unexpired claim.
   */
  async claimDispatch(
    tenantId: string,
    jobId: string,
    token: string,
    nowSeconds: number,
    leaseSeconds: number,
  ) {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tables.jobs,
          Key: { tenantId, jobId },
          UpdateExpression: "SET dispatchClaim = :token, dispatchClaimExpires = :expires",
          ConditionExpression:
            `attribute_exists(jobId) AND #status = :queued AND ${NO_RUN_YET} AND ` +
            "(attribute_not_exists(dispatchClaimExpires) OR dispatchClaimExpires < :now)",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ":token": token,
            ":expires": nowSeconds + leaseSeconds,
            ":queued": "queued" satisfies JobStatus,
            ":now": nowSeconds,
            ":nullType": "NULL",
          },
        }),
      );
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === "ConditionalCheckFailedException") return false;
      throw error;
    }
  }

  async appendEvent(event: JobEventItem): Promise<void> {
    await this.documents.send(new PutCommand({ TableName: this.tables.events, Item: event }));
  }

  /**
   * A job's events, newest first. Event ids are not sort keys (the trainer makes its own), so `after`
   * is found by walking the newest pages; a job has at most a few thousand (throttled) events.
   */
  async listEvents(
    tenantId: string,
    jobId: string,
    limit: number,
    after?: string,
  ): Promise<Page<JobEventItem>> {
    const collected: JobEventItem[] = [];
    let found = after === undefined;
    for await (const items of this.eventPages(tenantId, jobId, { newestFirst: true, pageSize: 200 })) {
      for (const item of items) {
        if (!found) {
          found = item.id === after;
          continue;
        }
        collected.push(item);
        if (collected.length > limit) return { items: collected.slice(0, limit), hasMore: true };
      }
    }
    if (!found && after !== undefined) throw new EventCursorNotFoundError(after);
    return { items: collected, hasMore: false };
  }

  /** The newest `error`-level event (the trainer's own account of a failure), if any among the latest. */
  async latestErrorEvent(tenantId: string, jobId: string): Promise<JobEventItem | undefined> {
    const { items } = await this.listEvents(tenantId, jobId, 50);
    return items.find((item) => item.level === "error");
  }

  async getModel(modelCode: string): Promise<ModelRecord | undefined> {
    return getModelRecord(this.documents, this.tables.models, modelCode);
  }

  /** A tenant's fine-tuned models, newest first (all of them: a tenant has at most thousands). */
  async listModels(tenantId: string): Promise<ModelRecord[]> {
    const models: ModelRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tables.models,
          IndexName: "byTenant",
          KeyConditionExpression: "tenantId = :t",
          ExpressionAttributeValues: { ":t": tenantId },
          ScanIndexForward: false,
          ExclusiveStartKey: start,
        }),
      );
      models.push(...((page.Items ?? []) as ModelRecord[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return models;
  }

  /**
   * Deletes a tenant's finished model, freeing its code. `not_found` when the code is not the tenant's;
   * `still_training` while its job has not ended (the job would otherwise finish into a missing model).
   */
  async deleteModel(tenantId: string, modelCode: string): Promise<DeleteModelOutcome> {
    try {
      await this.documents.send(
        new DeleteCommand({
          TableName: this.tables.models,
          Key: { modelCode },
          ConditionExpression: "tenantId = :t AND #status <> :pending",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":t": tenantId, ":pending": "pending" satisfies FineTunedModelStatus },
        }),
      );
      return { outcome: "deleted" };
    } catch (error) {
      if ((error as { name?: string }).name !== "ConditionalCheckFailedException") throw error;
      const current = await this.getModel(modelCode);
      if (!current || current.tenantId !== tenantId) return { outcome: "not_found" };
      return { outcome: "still_training", jobId: current.jobId };
    }
  }

  /**
   * Deletes a tenant's job that has ended, then its events. The job's model and artifacts stay: a
   * deleted job's model can still be called and deleted on its own. `not_finished` (nothing deleted)
   * when the job has not ended; `not_found` when it is not the tenant's.
   */
  async deleteJob(tenantId: string, jobId: string): Promise<DeleteJobOutcome> {
    const values: Record<string, unknown> = {};
    TERMINAL_STATUSES.forEach((status, i) => {
      values[`:end${i}`] = status;
    });
    try {
      await this.documents.send(
        new DeleteCommand({
          TableName: this.tables.jobs,
          Key: { tenantId, jobId },
          ConditionExpression: `attribute_exists(jobId) AND #status IN (${Object.keys(values).join(", ")})`,
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      if ((error as { name?: string }).name !== "ConditionalCheckFailedException") throw error;
      const current = await this.get(tenantId, jobId);
      return current ? { outcome: "not_finished", job: current } : { outcome: "not_found" };
    }
    await this.deleteEvents(tenantId, jobId);
    return { outcome: "deleted" };
  }

  /** Every event of a job, 25 deletes a request (BatchWriteItem's limit), retrying what was throttled. */
  private async deleteEvents(tenantId: string, jobId: string): Promise<void> {
    for await (const items of this.eventPages(tenantId, jobId, { keysOnly: true })) {
      const keys = items.map(({ jobKey, eventKey }) => ({ jobKey, eventKey }));
      for (let i = 0; i < keys.length; i += 25) {
        let requests = keys.slice(i, i + 25).map((key) => ({ DeleteRequest: { Key: key } }));
        for (let attempt = 0; requests.length > 0; attempt++) {
          if (attempt === 5) throw new Error(`could not delete the events of ${jobId}: still throttled`);
          if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
          const result = await this.documents.send(
            new BatchWriteCommand({ RequestItems: { [this.tables.events]: requests } }),
          );
          requests = (result.UnprocessedItems?.[this.tables.events] ?? []) as typeof requests;
        }
      }
    }
  }

  /** A job's events, one query page at a time (oldest first unless `newestFirst`). */
  private async *eventPages(
    tenantId: string,
    jobId: string,
    options: { newestFirst?: boolean; pageSize?: number; keysOnly?: boolean } = {},
  ): AsyncGenerator<JobEventItem[]> {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tables.events,
          KeyConditionExpression: "jobKey = :k",
          ExpressionAttributeValues: { ":k": jobKey(tenantId, jobId) },
          ScanIndexForward: !options.newestFirst,
          ExclusiveStartKey: start,
          ...(options.pageSize ? { Limit: options.pageSize } : {}),
          ...(options.keysOnly ? { ProjectionExpression: "jobKey, eventKey" } : {}),
        }),
      );
      yield (page.Items ?? []) as JobEventItem[];
      start = page.LastEvaluatedKey;
    } while (start);
  }

  /**
   * Sets (or, with null, clears) a tenant's model's display name, and its job's when the job still
   * exists, in one transaction. The updated record, or undefined when the code is not the tenant's.
   */
  async renameModel(
    tenantId: string,
    modelCode: string,
    name: string | null,
  ): Promise<ModelRecord | undefined> {
    const model = await this.getModel(modelCode);
    if (!model || model.tenantId !== tenantId) return undefined;
    const modelUpdate = {
      TableName: this.tables.models,
      Key: { modelCode },
      UpdateExpression: "SET #name = :name",
      ConditionExpression: "tenantId = :t AND jobId = :job",
      ExpressionAttributeNames: { "#name": "name" },
      ExpressionAttributeValues: { ":name": name, ":t": tenantId, ":job": model.jobId },
    };
    const outcome = await transact<"model_owner" | "job_exists">(this.documents, [
      { name: "model_owner", item: { Update: modelUpdate } },
      {
        name: "job_exists",
        item: {
          Update: {
            TableName: this.tables.jobs,
            Key: { tenantId, jobId: model.jobId },
            UpdateExpression: "SET #name = :name",
            ConditionExpression: "attribute_exists(jobId)",
            ExpressionAttributeNames: { "#name": "name" },
            ExpressionAttributeValues: { ":name": name },
          },
        },
      },
    ]);
    if (!outcome.committed) {
      // The model was deleted (or its code reused) meanwhile: as if it never was the tenant's.
      if (outcome.failed.includes("model_owner")) return undefined;
      // The job was deleted: the model alone is renamed.
      try {
        await this.documents.send(new UpdateCommand(modelUpdate));
      } catch (single) {
        if ((single as { name?: string }).name === "ConditionalCheckFailedException") return undefined;
        throw single;
      }
    }
    return { ...model, name };
  }

  async getIdempotency(id: string): Promise<IdempotencyRecord | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tables.idempotency, Key: { id }, ConsistentRead: true }),
    );
    return Item as IdempotencyRecord | undefined;
  }
}

/** The items of a create transaction, by what each one's failed condition means. */
type CreateCondition = JobFileParam | "job_id" | "model_code" | "event" | "idempotency_key";

type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/** A transaction item, named by what the failure of its condition means. */
interface NamedItem<Name extends string> {
  readonly name: Name;
  readonly item: TransactItem;
}

type TransactionResult<Name extends string> =
  | { readonly committed: true }
  /** `failed`: the items whose condition failed, in item order (never empty); `error` the cancellation. */
  | { readonly committed: false; readonly failed: readonly Name[]; readonly error: unknown };

/** Tries of a transaction that a conflicting one cancelled (e.g. a file delete reading the same file). */
const CONFLICT_ATTEMPTS = 4;

/**
 * Runs the items as one transaction and says which named conditions failed. DynamoDB reports one
 * CancellationReason per item, in item order: this is the one place that relies on it. A cancellation
 * by a conflicting transaction alone is tried again (a few times, then thrown); any other without a
 * failed condition (throttling) is thrown as it came.
 */
async function transact<Name extends string>(
  documents: DynamoDBDocumentClient,
  items: readonly NamedItem<Name>[],
): Promise<TransactionResult<Name>> {
  for (let attempt = 1; ; attempt++) {
    try {
      await documents.send(new TransactWriteCommand({ TransactItems: items.map(({ item }) => item) }));
      return { committed: true };
    } catch (error) {
      const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
      if ((error as { name?: string }).name !== "TransactionCanceledException" || !reasons) throw error;
      if (reasons.length !== items.length) throw error;
      const failed = items
        .filter((_, i) => reasons[i]?.Code === "ConditionalCheckFailed")
        .map(({ name }) => name);
      if (failed.length > 0) return { committed: false, failed, error };
      const conflictOnly = reasons.every((r) => r.Code === "None" || r.Code === "TransactionConflict");
      if (!conflictOnly || attempt >= CONFLICT_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt * (0.5 + Math.random())));
    }
  }
}

/** `SET #f_a = :f_a, …` for the given fields (undefined ones skipped). */
function setExpression(fields: Readonly<Record<string, unknown>>) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    names[`#f_${key}`] = key;
    values[`:f_${key}`] = value;
    sets.push(`#f_${key} = :f_${key}`);
  }
  return { expression: `SET ${sets.join(", ")}`, names, values };
}
