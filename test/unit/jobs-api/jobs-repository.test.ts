import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { JobsRepository } from "../../../lambdas/aws/jobs-repository.ts";
import { EventCursorNotFoundError, type NewJob } from "../../../lambdas/core/jobs/ports.ts";
import { transition } from "../../../lambdas/core/jobs/state-machine.ts";
import { fakeDependencies, storedJob, TENANT } from "./fakes.ts";

/**
 * The DynamoDB adapter's reading of a cancelled transaction: DynamoDB answers one CancellationReason per
 * item, in item order, and the repository names each item by what its failed condition means.
 */

type Command = { input: unknown };

/** A document client whose `send` is `answer`; every command sent is kept. */
function documents(answer: (command: Command) => unknown) {
  const sent: Command[] = [];
  const client = {
    send: async (command: Command) => {
      sent.push(command);
      return answer(command);
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, sent };
}

const cancelled = (...codes: string[]) =>
  Object.assign(new Error("Transaction cancelled"), {
    name: "TransactionCanceledException",
    CancellationReasons: codes.map((Code) => ({ Code })),
  });

const TABLES = { jobs: "jobs", events: "events", models: "models", files: "files", idempotency: "keys" };

/** A write of a job with a validation file, two events and an Idempotency-Key: 7 items. */
async function newJob(): Promise<NewJob> {
  const fakes = fakeDependencies();
  const job = await storedJob(fakes, { validationFile: "file-validation" });
  return {
    job,
    model: fakes.jobs.models.get(job.modelCode)!,
    events: fakes.jobs.eventsOf(TENANT, job.jobId),
    idempotency: { id: `${TENANT}#k`, requestHash: "h", jobId: job.jobId, expiration: 1 },
  };
}

describe("JobsRepository.create", () => {
  // Items: training file, validation file, job, model code, event, event, Idempotency-Key.
  const OK = "None";
  const FAILED = "ConditionalCheckFailed";

  it("writes the seven items of a job in one transaction", async () => {
    const write = await newJob();
    const { client, sent } = documents(() => ({}));
    expect(await new JobsRepository(client, TABLES).create(write)).toEqual({ outcome: "created" });
    const [command] = sent;
    expect(command).toBeInstanceOf(TransactWriteCommand);
    expect((command as TransactWriteCommand).input.TransactItems).toHaveLength(7);
  });

  it("names the file whose condition failed", async () => {
    const write = await newJob();
    const outcomes = [];
    for (const reasons of [
      [FAILED, OK, OK, OK, OK, OK, OK],
      [OK, FAILED, OK, FAILED, OK, OK, OK],
    ]) {
      const { client } = documents(() => {
        throw cancelled(...reasons);
      });
      outcomes.push(await new JobsRepository(client, TABLES).create(write));
    }
    expect(outcomes).toEqual([
      { outcome: "file_not_processed", param: "training_file", fileId: write.job.trainingFile },
      { outcome: "file_not_processed", param: "validation_file", fileId: "file-validation" },
    ]);
  });

  it("reports a taken model code, and a taken key whatever else failed", async () => {
    const write = await newJob();
    const answer = async (...reasons: string[]) => {
      const { client } = documents(() => {
        throw cancelled(...reasons);
      });
      return new JobsRepository(client, TABLES).create(write);
    };
    expect(await answer(OK, OK, OK, FAILED, OK, OK, OK)).toEqual({
      outcome: "model_code_taken",
      modelCode: write.model.modelCode,
    });
    expect(await answer(OK, OK, OK, FAILED, OK, OK, FAILED)).toEqual({ outcome: "idempotency_key_taken" });
  });

  it("throws an Error with the cancellation as its cause when the job id itself was taken", async () => {
    const write = await newJob();
    const cancellation = cancelled(OK, OK, FAILED, OK, OK, OK, OK);
    const { client } = documents(() => {
      throw cancellation;
    });
    await expect(new JobsRepository(client, TABLES).create(write)).rejects.toMatchObject({
      message: expect.stringContaining("job_id condition failed"),
      cause: cancellation,
    });
  });

  it("rethrows a cancellation without a failed condition, or with reasons it can not pair with its items", async () => {
    const write = await newJob();
    for (const cancellation of [
      cancelled(OK, OK, "TransactionConflict", OK, OK, OK, OK),
      cancelled(FAILED),
    ]) {
      const { client } = documents(() => {
        throw cancellation;
      });
      await expect(new JobsRepository(client, TABLES).create(write)).rejects.toBe(cancellation);
    }
  });
});

describe("JobsRepository.applyTransition", () => {
  async function cancelWrite() {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes);
    const result = transition(job.status, { type: "cancel_requested" });
    if (!result.ok) throw new Error("queued jobs cancel");
    return { job, result, nowSeconds: 1, model: { status: "failed" as const } };
  }

  it("is false when the job's status condition failed: a concurrent change won", async () => {
    const { client } = documents(() => {
      throw cancelled("ConditionalCheckFailed", "None", "None");
    });
    expect(await new JobsRepository(client, TABLES).applyTransition(await cancelWrite())).toBe(false);
  });

  it("applies the job's change alone when its model is gone", async () => {
    const { client, sent } = documents((command) => {
      const items = (command as TransactWriteCommand).input.TransactItems ?? [];
      if (items.length === 3) throw cancelled("None", "None", "ConditionalCheckFailed");
      return {};
    });
    expect(await new JobsRepository(client, TABLES).applyTransition(await cancelWrite())).toBe(true);
    expect(sent.map((c) => (c as TransactWriteCommand).input.TransactItems?.length)).toEqual([3, 2]);
  });
});

describe("JobsRepository.renameModel", () => {
  const model = { modelCode: "bot", tenantId: TENANT, jobId: "ftjob-1", status: "ready" };

  it("is undefined when the model's condition failed, and renames the model alone when its job is gone", async () => {
    for (const [reasons, renamed] of [
      [["ConditionalCheckFailed", "None"], undefined],
      [["None", "ConditionalCheckFailed"], { ...model, name: "New" }],
    ] as const) {
      const { client, sent } = documents((command) => {
        if (command instanceof GetCommand) return { Item: model };
        if (command instanceof TransactWriteCommand) throw cancelled(...reasons);
        return {};
      });
      expect(await new JobsRepository(client, TABLES).renameModel(TENANT, "bot", "New")).toEqual(renamed);
      expect(sent.at(-1) instanceof UpdateCommand).toBe(renamed !== undefined);
    }
  });
});

describe("JobsRepository.deleteModel", () => {
  it("reports not_found for another tenant's code and still_training for a pending model", async () => {
    const refused = Object.assign(new Error("failed"), { name: "ConditionalCheckFailedException" });
    for (const [item, outcome] of [
      [undefined, { outcome: "not_found" }],
      [{ modelCode: "bot", tenantId: "tn_other", jobId: "ftjob-1" }, { outcome: "not_found" }],
      [
        { modelCode: "bot", tenantId: TENANT, jobId: "ftjob-1" },
        { outcome: "still_training", jobId: "ftjob-1" },
      ],
    ] as const) {
      const { client } = documents((command) => {
        if (command instanceof GetCommand) return { Item: item };
        throw refused;
      });
      expect(await new JobsRepository(client, TABLES).deleteModel(TENANT, "bot")).toEqual(outcome);
    }
  });
});

describe("JobsRepository.listEvents", () => {
  it("throws EventCursorNotFoundError for an `after` that is not among the job's events", async () => {
    const { client } = documents(() => ({ Items: [] }));
    await expect(
      new JobsRepository(client, TABLES).listEvents(TENANT, "ftjob-1", 10, "ftevent-x"),
    ).rejects.toBeInstanceOf(EventCursorNotFoundError);
  });
});
