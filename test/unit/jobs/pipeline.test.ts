import type { Context, SQSEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { DEFAULT_CATALOG, findBaseModel } from "../../../lambdas/core/catalog/base-models.ts";
import { failureCode, parseBatchStateChange } from "../../../lambdas/core/jobs/batch-event.ts";
import { checkpointFromManifest } from "../../../lambdas/core/jobs/checkpoints.ts";
import {
  resultArtifactUri,
  TRAINING_QUEUE_MAX_RECEIVES,
  trainerEnvironment,
} from "../../../lambdas/core/jobs/dispatch.ts";
import type { DispatchDependencies } from "../../../lambdas/dispatcher/dispatch.ts";
import { dispatcherHandler } from "../../../lambdas/dispatcher/index.ts";
import { JOB, jobRecord, plannedJobRecord, TENANT } from "../../fixtures/jobs.ts";

const job = jobRecord();

describe("the trainer's environment for a job", () => {
  const where = {
    datasetsBucket: "ds",
    artifactsBucket: "art",
    jobsTable: "ft-jobs",
    eventsTable: "ft-job-events",
  };

  it("names every variable of the container contract, with URIs under the tenant's prefix", () => {
    const env = trainerEnvironment(job, findBaseModel("tiny-chat")!, where);
    expect(env).toMatchObject({
      JOB_ID: JOB,
      TENANT_ID: TENANT,
      METHOD: "lora",
      OBJECTIVE: "supervised",
      BASE_MODEL_URI: "s3://art/base-models/tiny-chat/",
      TRAINING_FILE_URI: `s3://ds/tenants/${TENANT}/files/file-001k892a2fse5r8e5481r.jsonl`,
      OUTPUT_URI: `s3://art/tenants/${TENANT}/jobs/${JOB}/`,
      JOBS_TABLE: "ft-jobs",
      EVENTS_TABLE: "ft-job-events",
    });
    expect(JSON.parse(env.BASE_MODEL_SPEC!)).toEqual(findBaseModel("tiny-chat"));
    expect(env.VALIDATION_FILE_URI).toBeUndefined();
    expect(env.INIT_MODEL_URI).toBeUndefined();
  });

  it("says supervised for a record stored before objectives", () => {
    const { objective: _objective, ...older } = job;
    expect(trainerEnvironment(older, findBaseModel("tiny-chat")!, where).OBJECTIVE).toBe("supervised");
  });

  it("says dpo for a DPO job, and hands the trainer the resolved beta and evaluation keys", () => {
    const { job: dpo } = plannedJobRecord({
      model: "tiny-chat",
      method: {
        type: "dpo",
        dpo: { hyperparameters: { beta: 0.2, eval_interval: 5, validation_split: 0.1 } },
      },
    });
    const env = trainerEnvironment(dpo, findBaseModel("tiny-chat")!, where);
    expect(env.OBJECTIVE).toBe("dpo");
    expect(JSON.parse(env.HYPERPARAMETERS!)).toMatchObject({
      beta: 0.2,
      eval_interval: 5,
      early_stopping_patience: null,
      validation_split: 0.1,
    });
    expect(env.INIT_MODEL_URI).toBeUndefined();
  });

  it.each([
    ["lora", "adapter/"],
    ["full", "model/"],
  ] as const)("points INIT_MODEL_URI at a %s parent's %s, under the same tenant", (method, folder) => {
    const dpo = {
      ...job,
      objective: "dpo" as const,
      method,
      initModel: { modelCode: "acme-sft", jobId: "ftjob-parent", method },
    };
    const env = trainerEnvironment(dpo, findBaseModel("tiny-chat")!, where);
    expect(env.INIT_MODEL_URI).toBe(`s3://art/tenants/${TENANT}/jobs/ftjob-parent/${folder}`);
    expect(env.INIT_MODEL_URI).toBe(
      resultArtifactUri("art", { tenantId: TENANT, jobId: "ftjob-parent", method }),
    );
    expect(env.OUTPUT_URI).toBe(`s3://art/tenants/${TENANT}/jobs/${JOB}/`);
  });

  it("sends the multiplier, and a model's own base rate in its catalog entry (the trainer multiplies)", () => {
    const env = trainerEnvironment(job, findBaseModel("tiny-chat")!, where);
    expect(JSON.parse(env.HYPERPARAMETERS!).learning_rate).toBeUndefined();
    expect(JSON.parse(env.BASE_MODEL_SPEC!).methods.lora.baseLearningRate).toBe(4e-3);
    const glm = findBaseModel("chatglm3-6b", DEFAULT_CATALOG)!;
    const standard = trainerEnvironment({ ...job, model: glm.name }, glm, where);
    expect(JSON.parse(standard.HYPERPARAMETERS!).learning_rate_multiplier).toBe(2);
    expect(JSON.parse(standard.BASE_MODEL_SPEC!).methods.lora.baseLearningRate).toBeUndefined();
  });

  it("points a succeeded job's model at adapter/ for LoRA and model/ for full", () => {
    expect(resultArtifactUri("art", job)).toBe(`s3://art/tenants/${TENANT}/jobs/${JOB}/adapter/`);
    expect(resultArtifactUri("art", { ...job, method: "full" })).toBe(
      `s3://art/tenants/${TENANT}/jobs/${JOB}/model/`,
    );
  });
});

describe("Batch job state change events", () => {
  const detail = (extra: Record<string, unknown>) => ({
    jobId: "batch-1",
    jobName: JOB,
    jobQueue: "arn:aws:batch:us-east-1:1:job-queue/ft-lora",
    parameters: { tenantId: TENANT, jobId: JOB },
    ...extra,
  });

  it("finds the platform job in the Batch parameters", () => {
    expect(parseBatchStateChange(detail({ status: "RUNNING" }))).toMatchObject({
      tenantId: TENANT,
      jobId: JOB,
      batchJobId: "batch-1",
      event: { type: "batch_running" },
    });
  });

  it("ignores jobs that are not the platform's and statuses it does not know", () => {
    expect(parseBatchStateChange({ jobId: "x", status: "RUNNING" })).toBeUndefined();
    expect(parseBatchStateChange("nonsense")).toBeUndefined();
    expect(parseBatchStateChange(detail({ status: "PAUSED" }))?.event).toBeUndefined();
  });

  it("carries the trainer's exit code into the failure: 2 bad input, 3 out of memory", () => {
    const failed = parseBatchStateChange(
      detail({
        status: "FAILED",
        statusReason: "Essential container in task exited",
        attempts: [{ container: { exitCode: 3 } }],
      }),
    );
    expect(failed?.exitCode).toBe(3);
    expect(failed?.event).toMatchObject({
      type: "batch_failed",
      reason: expect.stringMatching(/out of GPU memory/),
    });
    expect(failureCode(2)).toBe("invalid_training_input");
    expect(failureCode(3)).toBe("out_of_memory");
    expect(failureCode(1)).toBe("training_failed");
  });

  it("keeps Batch's own reason for the operator's log and gives the tenant the job id as a reference", () => {
    const reason = "CannotPullContainerError: 123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-trainer:x";
    const failed = parseBatchStateChange(detail({ status: "FAILED", statusReason: reason }));
    expect(failed?.reason).toBe(reason);
    expect(failed?.event).toEqual({ type: "batch_failed", reason: `an internal error (reference ${JOB})` });
    expect(parseBatchStateChange(detail({ status: "RUNNING", statusReason: reason }))?.event).toEqual({
      type: "batch_running",
    });
  });

  it("marks RUNNABLE after an attempt as a retry (a Spot reclaim), which keeps the job running", () => {
    const retry = parseBatchStateChange(
      detail({
        status: "RUNNABLE",
        attempts: [{ container: { exitCode: 137 }, statusReason: "Host EC2 terminated" }],
      }),
    );
    expect(retry?.event).toEqual({ type: "batch_queued", batchStatus: "RUNNABLE", attempt: 2 });
  });
});

describe("checkpoints from the trainer's manifests", () => {
  it("reads step, metrics and time, with an id that is the same on every listing", () => {
    const manifest = { step: 20, created_at: 1_700_000_100, metrics: { train_loss: 0.4, valid_loss: null } };
    const record = checkpointFromManifest(job, 20, manifest);
    expect(record).toEqual({
      checkpointId: "ftckpt-001k892a2fse5r8e5481r-20",
      jobId: JOB,
      modelCode: "zorbia-facts",
      createdAt: 1_700_000_100,
      stepNumber: 20,
      metrics: { step: 20, train_loss: 0.4 },
    });
    expect(checkpointFromManifest(job, 20, manifest)?.checkpointId).toBe(record?.checkpointId);
  });

  it("skips a manifest that is not one, or that names another step", () => {
    expect(checkpointFromManifest(job, 20, { step: 10 })).toBeUndefined();
    expect(checkpointFromManifest(job, 20, "garbage")).toBeUndefined();
  });
});

describe("the dispatcher's handler on a runner that refuses the run", () => {
  const applied: unknown[] = [];
  const deps = (): DispatchDependencies => ({
    jobs: {
      get: async () => job,
      claimDispatch: async () => true,
      applyTransition: async (change) => {
        applied.push(change.result);
        return true;
      },
    },
    runner: {
      submit: async () => {
        throw Object.assign(new Error("job definition ft-lora does not exist"), { name: "ClientException" });
      },
      terminate: async () => {},
    },
    catalog: DEFAULT_CATALOG,
    locations: { datasetsBucket: "d", artifactsBucket: "a", jobsTable: "j", eventsTable: "e" },
    log: () => {},
  });
  const delivery = (receives: number) =>
    ({
      Records: [
        {
          messageId: `m${receives}`,
          body: JSON.stringify({ tenantId: TENANT, jobId: JOB }),
          attributes: { ApproximateReceiveCount: String(receives) },
          eventSource: "aws:sqs",
        },
      ],
    }) as unknown as SQSEvent;
  const handle = dispatcherHandler(deps);

  it("has SQS redeliver before the last delivery, then fails the job on it and consumes the message", async () => {
    for (let receives = 1; receives < TRAINING_QUEUE_MAX_RECEIVES; receives++) {
      // Every record of the batch failed: Powertools throws, so Lambda hands the batch back to SQS.
      await expect(handle(delivery(receives), {} as Context)).rejects.toThrow(/All records failed/);
    }
    expect(applied).toEqual([]);
    const last = await handle(delivery(TRAINING_QUEUE_MAX_RECEIVES), {} as Context);
    expect(last.batchItemFailures).toEqual([]);
    expect(applied).toMatchObject([{ ok: true, to: "failed", error: { code: "dispatch_failed" } }]);
  });
});
