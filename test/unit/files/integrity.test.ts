import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactGetCommand,
  type TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { claimFileForDeletion } from "../../../lambdas/aws/file-usage.ts";
import { JobsRepository } from "../../../lambdas/aws/jobs-repository.ts";
import { findBaseModel } from "../../../lambdas/core/catalog/base-models.ts";
import { jobsStillUsing, uploadHeaders } from "../../../lambdas/core/files/file-record.ts";
import { trainerEnvironment } from "../../../lambdas/core/jobs/dispatch.ts";
import { createJob } from "../../../lambdas/jobs-api/create-job.ts";
import { jobRecord } from "../../fixtures/jobs.ts";
import { fakeDependencies, TENANT } from "../jobs-api/fakes.ts";

/**
 * Integrity of training data: a presigned upload is good for one PUT, a job trains the exact object
 * that was validated, and a file delete and a job create never leave a job without its file.
 */

describe("a presigned upload's headers", () => {
  it("pin the declared type and size and make the URL good for one upload (If-None-Match: *)", () => {
    expect(uploadHeaders({ contentType: "application/jsonl", bytes: 1234 })).toEqual({
      "content-type": "application/jsonl",
      "content-length": "1234",
      "if-none-match": "*",
    });
  });
});

describe("which jobs still need a file", () => {
  it("counts only jobs that have not ended; an ended or deleted job never needs it again", () => {
    expect(
      jobsStillUsing([
        { jobId: "ftjob-a", status: "validating_files" },
        { jobId: "ftjob-b", status: "queued" },
        { jobId: "ftjob-c", status: "running" },
        { jobId: "ftjob-d", status: "succeeded" },
        { jobId: "ftjob-e", status: "failed" },
        { jobId: "ftjob-f", status: "cancelled" },
        { jobId: "ftjob-g", status: undefined },
      ]),
    ).toEqual(["ftjob-a", "ftjob-b", "ftjob-c"]);
    expect(jobsStillUsing([])).toEqual([]);
  });
});

describe("a job records the validated objects", () => {
  it("stores each file's validatedETag on the job and hands them to the trainer", async () => {
    const fakes = fakeDependencies();
    const training = fakes.files.add(TENANT);
    const validation = fakes.files.add(TENANT);
    const result = await createJob(fakes.deps, {
      tenantId: TENANT,
      body: {
        model: "tiny-chat",
        training_file: training,
        validation_file: validation,
        model_code: "etag-job",
      },
    });
    if (result.kind !== "job") throw new Error("expected a job");
    expect(result.job).toMatchObject({
      trainingFileETag: `"etag-${training}"`,
      validationFileETag: `"etag-${validation}"`,
    });
    const env = trainerEnvironment(result.job, findBaseModel("tiny-chat")!, {
      datasetsBucket: "ds",
      artifactsBucket: "art",
      jobsTable: "jobs",
      eventsTable: "events",
    });
    expect(env.TRAINING_FILE_ETAG).toBe(`"etag-${training}"`);
    expect(env.VALIDATION_FILE_ETAG).toBe(`"etag-${validation}"`);
  });

  it("sends no ETag for a record that has none (older jobs train as before)", () => {
    const env = trainerEnvironment(jobRecord(), findBaseModel("tiny-chat")!, {
      datasetsBucket: "ds",
      artifactsBucket: "art",
      jobsTable: "jobs",
      eventsTable: "events",
    });
    expect(env.TRAINING_FILE_ETAG).toBeUndefined();
    expect(env.VALIDATION_FILE_ETAG).toBeUndefined();
  });

  it("adds the job to its files' users, and refuses a file a delete has claimed with 400", async () => {
    const fakes = fakeDependencies();
    const file = fakes.files.add(TENANT);
    const body = { model: "tiny-chat", training_file: file, validation_file: file, model_code: "uses-file" };
    const result = await createJob(fakes.deps, { tenantId: TENANT, body });
    if (result.kind !== "job") throw new Error("expected a job");
    expect([...(fakes.files.records.get(`${TENANT}/${file}`)?.usedByJobs ?? [])]).toEqual([result.job.jobId]);

    fakes.files.update(TENANT, file, { deletingAt: 1 });
    await expect(
      createJob(fakes.deps, { tenantId: TENANT, body: { ...body, model_code: "claimed-file" } }),
    ).rejects.toMatchObject({ status: 400, code: "file_not_found", param: "training_file" });
  });

  it("answers 400 when a delete claims the file between the check and the transaction", async () => {
    const fakes = fakeDependencies();
    const file = fakes.files.add(TENANT);
    fakes.jobs.beforeCreate = () => fakes.files.update(TENANT, file, { deletingAt: 1 });
    await expect(
      createJob(fakes.deps, {
        tenantId: TENANT,
        body: { model: "tiny-chat", training_file: file, model_code: "raced" },
      }),
    ).rejects.toMatchObject({ status: 400, code: "invalid_file", param: "training_file" });
    expect(fakes.jobs.jobs.size).toBe(0);
  });
});

type Command = { input: Record<string, unknown> };

/** A document client whose `send` is `answer`; every command sent is kept. */
function documents(answer: (command: Command, index: number) => unknown) {
  const sent: Command[] = [];
  const client = {
    send: async (command: Command) => {
      sent.push(command);
      return answer(command, sent.length - 1);
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, sent };
}

const named = (name: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, ...extra });

describe("JobsRepository.create and the file's users", () => {
  const TABLES = { jobs: "jobs", events: "events", models: "models", files: "files", idempotency: "keys" };

  async function write(validationFile: string | null) {
    const fakes = fakeDependencies();
    const training = fakes.files.add(TENANT);
    const result = await createJob(fakes.deps, {
      tenantId: TENANT,
      body: {
        model: "tiny-chat",
        training_file: training,
        model_code: "write-items",
        ...(validationFile ? { validation_file: validationFile === "same" ? training : validationFile } : {}),
      },
    });
    if (result.kind !== "job") throw new Error("expected a job");
    return {
      job: result.job,
      model: fakes.jobs.models.get("write-items")!,
      events: fakes.jobs.eventsOf(TENANT, result.job.jobId),
    };
  }

  it("adds the job to each file on condition that it is processed and not claimed by a delete", async () => {
    const newJob = await write(null);
    const { client, sent } = documents(() => ({}));
    await new JobsRepository(client, TABLES).create(newJob);
    const items = (sent[0] as TransactWriteCommand).input.TransactItems!;
    expect(items[0]).toEqual({
      Update: {
        TableName: "files",
        Key: { tenantId: TENANT, fileId: newJob.job.trainingFile },
        UpdateExpression: "ADD usedByJobs :job",
        ConditionExpression: "#status = :processed AND attribute_not_exists(deletingAt)",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":processed": "processed", ":job": new Set([newJob.job.jobId]) },
      },
    });
  });

  it("writes a file used for training and validation once (a transaction may not write an item twice)", async () => {
    const newJob = await write("same");
    const { client, sent } = documents(() => ({}));
    await new JobsRepository(client, TABLES).create(newJob);
    const items = (sent[0] as TransactWriteCommand).input.TransactItems!;
    expect(items.filter((item) => item.Update?.TableName === "files")).toHaveLength(1);
  });

  it("tries again when a conflicting transaction (a delete reading the file) cancelled it", async () => {
    const newJob = await write(null);
    const conflict = named("TransactionCanceledException", {
      CancellationReasons: [
        { Code: "TransactionConflict" },
        { Code: "None" },
        { Code: "None" },
        { Code: "None" },
        { Code: "None" },
      ],
    });
    const { client, sent } = documents((_, i) => {
      if (i === 0) throw conflict;
      return {};
    });
    expect(await new JobsRepository(client, TABLES).create(newJob)).toEqual({ outcome: "created" });
    expect(sent).toHaveLength(2);
  });
});

describe("claimFileForDeletion", () => {
  const TABLES = { files: "files", jobs: "jobs" };
  const FILE = "file-001k892a2fse5r8e5481r";

  /** A client that answers the legacy query, the file read, the jobs read and the claim in turn. */
  function table(options: {
    file: Record<string, unknown> | undefined;
    statuses?: Record<string, string>;
    claim?: (attempt: number) => void;
    legacy?: string[];
  }) {
    let claims = 0;
    return documents((command) => {
      if (command instanceof QueryCommand)
        return { Items: (options.legacy ?? []).map((jobId) => ({ jobId })) };
      if (command instanceof GetCommand) return { Item: options.file };
      if (command instanceof TransactGetCommand) {
        const items = command.input.TransactItems as unknown as { Get: { Key: { jobId: string } } }[];
        return {
          Responses: items.map(({ Get }) => {
            const status = options.statuses?.[Get.Key.jobId];
            return status ? { Item: { jobId: Get.Key.jobId, status } } : {};
          }),
        };
      }
      if (command instanceof UpdateCommand) {
        options.claim?.(claims++);
        return {};
      }
      throw new Error(`unexpected ${command.constructor.name}`);
    });
  }

  it("claims a file no job used, on condition that still none did", async () => {
    const { client, sent } = table({ file: { fileId: FILE } });
    expect(await claimFileForDeletion(client, TABLES, TENANT, FILE, 100)).toEqual({ claimed: true });
    const update = sent.find((c) => c instanceof UpdateCommand)!;
    expect(update.input).toMatchObject({
      UpdateExpression: "SET deletingAt = :now",
      ConditionExpression: "attribute_exists(fileId) AND attribute_not_exists(usedByJobs)",
    });
  });

  it("refuses while a job that used the file has not ended, naming it", async () => {
    const { client, sent } = table({
      file: { fileId: FILE, usedByJobs: new Set(["ftjob-done", "ftjob-gone", "ftjob-busy"]) },
      statuses: { "ftjob-done": "succeeded", "ftjob-busy": "running" },
    });
    expect(await claimFileForDeletion(client, TABLES, TENANT, FILE, 100)).toEqual({
      claimed: false,
      jobIds: ["ftjob-busy"],
    });
    expect(sent.some((c) => c instanceof UpdateCommand)).toBe(false);
  });

  it("claims a file whose jobs all ended, on condition that no job was added since", async () => {
    const { client, sent } = table({
      file: { fileId: FILE, usedByJobs: new Set(["ftjob-done", "ftjob-gone"]) },
      statuses: { "ftjob-done": "failed" },
    });
    expect(await claimFileForDeletion(client, TABLES, TENANT, FILE, 100)).toEqual({ claimed: true });
    const update = sent.find((c) => c instanceof UpdateCommand)!;
    expect(update.input).toMatchObject({
      ConditionExpression: "attribute_exists(fileId) AND size(usedByJobs) = :users",
      ExpressionAttributeValues: { ":now": 100, ":users": 2 },
    });
  });

  it("reads again when a job took the file meanwhile, and then refuses", async () => {
    let file: Record<string, unknown> = { fileId: FILE };
    const { client } = table({
      get file() {
        return file;
      },
      statuses: { "ftjob-new": "queued" },
      claim: () => {
        file = { fileId: FILE, usedByJobs: new Set(["ftjob-new"]) };
        throw named("ConditionalCheckFailedException");
      },
    });
    expect(await claimFileForDeletion(client, TABLES, TENANT, FILE, 100)).toEqual({
      claimed: false,
      jobIds: ["ftjob-new"],
    });
  });

  it("finishes a delete that claimed the file and died, and refuses for jobs that predate the users set", async () => {
    const claimed = table({ file: { fileId: FILE, deletingAt: 50 } });
    expect(await claimFileForDeletion(claimed.client, TABLES, TENANT, FILE, 100)).toEqual({ claimed: true });
    expect(claimed.sent.some((c) => c instanceof UpdateCommand)).toBe(false);

    const legacy = table({ file: { fileId: FILE }, legacy: ["ftjob-old"] });
    expect(await claimFileForDeletion(legacy.client, TABLES, TENANT, FILE, 100)).toEqual({
      claimed: false,
      jobIds: ["ftjob-old"],
    });
  });
});
