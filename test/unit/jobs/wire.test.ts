import { describe, expect, it } from "vitest";
import { parseCreateJobRequest, planJob } from "../../../lambdas/core/jobs/create-request.ts";
import {
  eventKey,
  isJobId,
  jobKey,
  newCheckpointId,
  newEventId,
  newJobId,
} from "../../../lambdas/core/jobs/ids.ts";
import { JOB_STATUSES, type JobStatus } from "../../../lambdas/core/jobs/state-machine.ts";
import {
  type JobRecord,
  modelStatusForJob,
  newJobEventItem,
  newJobRecord,
  toCheckpointObject,
  toFineTunedModelObject,
  toJobEventObject,
  toJobObject,
} from "../../../lambdas/core/jobs/wire.ts";

const TENANT = "tn_0123456789abcdef";
const JOB = "ftjob-01hx0000000abcdefghij";

function record(overrides: Partial<JobRecord> = {}): JobRecord {
  const request = parseCreateJobRequest({
    model: "qwen2.5-7b-instruct",
    training_file: "file-train",
    validation_file: "file-val",
    suffix: "bot",
    seed: 11,
    metadata: { team: "support" },
  });
  const plan = planJob(request, { jobId: JOB, dataset: { examples: 500 }, tag: "abc123" });
  return {
    ...newJobRecord({ tenantId: TENANT, jobId: JOB, createdAt: 1_700_000_000, request, plan }),
    ...overrides,
  };
}

/** What `auto` resolves to for {@link record}'s 500 examples on qwen2.5-7b-instruct (LoRA). */
const RESOLVED = {
  n_epochs: 3,
  batch_size: 1,
  learning_rate_multiplier: 0.5,
  lora_r: 8,
  lora_alpha: 16,
  lora_dropout: 0.05,
  max_seq_length: 2048,
  beta: null,
  eval_interval: null,
  early_stopping_patience: null,
  validation_split: 0,
};

describe("newJobRecord", () => {
  it("starts a job in validating_files with nothing trained", () => {
    const job = record();
    expect(job).toMatchObject({
      tenantId: TENANT,
      jobId: JOB,
      model: "qwen2.5-7b-instruct",
      trainingFile: "file-train",
      validationFile: "file-val",
      method: "lora",
      objective: "supervised",
      hyperparameters: { ...RESOLVED, seed: 11 },
      modelCode: "qwen2.5-7b-bot-abc123",
      name: null,
      requestId: null,
      resources: { nodes: 1, gpusPerNode: 1, instanceType: "g6e.2xlarge" },
      userProvidedSuffix: "bot",
      seed: 11,
      metadata: { team: "support" },
      status: "validating_files",
      createdAt: 1_700_000_000,
      resultFiles: [],
    });
    for (const nothingYet of [
      "finishedAt",
      "batchJobId",
      "error",
      "trainedTokens",
      "estimatedFinish",
    ] as const) {
      expect(job[nothingYet]).toBeNull();
    }
  });
});

describe("toJobObject", () => {
  it("is the OpenAI fine_tuning.job object with model_code beside it", () => {
    const hyperparameters = RESOLVED;
    expect(toJobObject(record())).toEqual({
      id: JOB,
      object: "fine_tuning.job",
      model: "qwen2.5-7b-instruct",
      created_at: 1_700_000_000,
      finished_at: null,
      fine_tuned_model: null,
      organization_id: TENANT,
      result_files: [],
      training_summary: null,
      status: "validating_files",
      validation_file: "file-val",
      training_file: "file-train",
      hyperparameters,
      method: { type: "lora", hyperparameters },
      training_type: "lora",
      parent_model: null,
      trained_tokens: null,
      error: null,
      seed: 11,
      metadata: { team: "support" },
      estimated_finish: null,
      user_provided_suffix: "bot",
      integrations: [],
      model_code: "qwen2.5-7b-bot-abc123",
      name: null,
      request_id: null,
    });
  });

  it("shows the display name and the zhipuai SDK's request_id, and null for records made before them", () => {
    const named = toJobObject(record({ name: "客服助手", requestId: "req-9" }));
    expect(named).toMatchObject({ name: "客服助手", request_id: "req-9" });
    const { name: _name, requestId: _requestId, ...older } = record();
    expect(toJobObject(older as JobRecord)).toMatchObject({ name: null, request_id: null });
  });

  it.each(JOB_STATUSES)(
    "shows fine_tuned_model only once the job has succeeded (%s)",
    (status: JobStatus) => {
      const object = toJobObject(record({ status }));
      expect(object.fine_tuned_model).toBe(status === "succeeded" ? "qwen2.5-7b-bot-abc123" : null);
      expect(object.model_code).toBe("qwen2.5-7b-bot-abc123");
    },
  );

  it("shows a finished job's results and error", () => {
    const object = toJobObject(
      record({
        status: "failed",
        finishedAt: 1_700_000_900,
        trainedTokens: 12_345,
        resultFiles: ["file-metrics"],
        error: { code: "training_failed", message: "OOM", param: null },
      }),
    );
    expect(object).toMatchObject({
      finished_at: 1_700_000_900,
      trained_tokens: 12_345,
      result_files: ["file-metrics"],
      error: { code: "training_failed", message: "OOM", param: null },
    });
  });

  it("does not show the seed inside hyperparameters, nor the tenant's Batch job id", () => {
    const object = toJobObject(record({ batchJobId: "batch-1" }));
    expect(object.hyperparameters).not.toHaveProperty("seed");
    expect(JSON.stringify(object)).not.toContain("batch-1");
  });

  it("copies rather than shares the record's arrays and objects", () => {
    const source = record({ resultFiles: ["file-1"] });
    const object = toJobObject(source);
    object.result_files.push("file-2");
    (object.metadata as Record<string, string>).x = "y";
    expect(source.resultFiles).toEqual(["file-1"]);
    expect(source.metadata).toEqual({ team: "support" });
  });

  describe("a DPO job", () => {
    const dpoRecord = (method: Record<string, unknown>, model = "qwen2.5-7b-instruct") => {
      const request = parseCreateJobRequest({ model, training_file: "file-pairs", method, seed: 3 });
      const fineTunedModel = {
        modelCode: "acme-sft",
        jobId: "ftjob-sft",
        baseModel: "qwen2.5-7b-instruct",
        method: "full" as const,
        status: "ready" as const,
      };
      const plan = planJob(request, { jobId: JOB, dataset: { examples: 500 }, fineTunedModel });
      return newJobRecord({ tenantId: TENANT, jobId: JOB, createdAt: 1_700_000_000, request, plan });
    };

    it("records its objective, and the fine-tuned model it starts from", () => {
      const job = dpoRecord({ type: "dpo" }, "acme-sft");
      expect(job).toMatchObject({
        model: "qwen2.5-7b-instruct",
        objective: "dpo",
        method: "full",
        initModel: { modelCode: "acme-sft", jobId: "ftjob-sft", method: "full" },
      });
      expect(dpoRecord({ type: "dpo" })).not.toHaveProperty("initModel");
    });

    it("shows OpenAI's dpo method with beta, LoRA or full as training_type, and the parent model", () => {
      const object = toJobObject(
        dpoRecord({ type: "dpo", dpo: { hyperparameters: { beta: 0.25 } } }, "acme-sft"),
      );
      const hyperparameters = { ...RESOLVED, lora_r: null, lora_alpha: null, lora_dropout: null, beta: 0.25 };
      expect(object).toMatchObject({
        model: "qwen2.5-7b-instruct",
        hyperparameters,
        method: { type: "dpo", dpo: { hyperparameters } },
        training_type: "full",
        parent_model: "acme-sft",
      });
      expect(object.method).not.toHaveProperty("hyperparameters");
    });

    it("shows a LoRA DPO job from the base model with training_type lora and no parent", () => {
      const object = toJobObject(dpoRecord({ type: "dpo", dpo: { use_lora: true } }));
      expect(object).toMatchObject({ method: { type: "dpo" }, training_type: "lora", parent_model: null });
    });
  });

  it("shows a record stored before objectives as supervised, with the later hyperparameters as they meant", () => {
    const { objective: _objective, ...older } = record();
    const { beta, eval_interval, early_stopping_patience, validation_split, ...hyperparameters } =
      older.hyperparameters as typeof RESOLVED & { seed: number };
    const object = toJobObject({ ...older, hyperparameters });
    expect(object.method).toEqual({ type: "lora", hyperparameters: RESOLVED });
    expect(object.hyperparameters).toEqual(RESOLVED);
    expect(object.training_type).toBe("lora");
  });

  it("shows null metadata and validation file when absent", () => {
    const object = toJobObject(record({ metadata: null, validationFile: null }));
    expect(object.metadata).toBeNull();
    expect(object.validation_file).toBeNull();
  });
});

describe("job events", () => {
  it("keys events by {tenantId}#{jobId} and evt#{ms:013}#{hex}", () => {
    const item = newJobEventItem(
      TENANT,
      JOB,
      { level: "info", message: "Job started." },
      1_700_000_000_123,
      "0a1b2c",
    );
    expect(item).toEqual({
      jobKey: `${TENANT}#${JOB}`,
      eventKey: "evt#1700000000123#0a1b2c",
      id: expect.stringMatching(/^ftevent-[0-9a-v]{21}$/),
      createdAt: 1_700_000_000,
      level: "info",
      type: "message",
      message: "Job started.",
      data: null,
    });
  });

  it("is the OpenAI fine_tuning.job.event object", () => {
    const item = newJobEventItem(
      TENANT,
      JOB,
      { level: "info", type: "metrics", message: "Step 10/100", data: { step: 10, train_loss: 1.25 } },
      1_700_000_005_000,
      "ffffff",
    );
    expect(toJobEventObject(item)).toEqual({
      id: item.id,
      object: "fine_tuning.job.event",
      created_at: 1_700_000_005,
      level: "info",
      message: "Step 10/100",
      type: "metrics",
      data: { step: 10, train_loss: 1.25 },
    });
  });

  it("sorts event keys by time, including across digit counts", () => {
    const keys = [5, 999, 1000, 1_700_000_000_000, 9_999_999_999_999].map((ms) => eventKey(ms, "000000"));
    expect([...keys].sort()).toEqual(keys);
    expect(keys[0]).toBe("evt#0000000000005#000000");
  });

  it("makes a random hex tail by default", () => {
    expect(eventKey(1)).toMatch(/^evt#0000000000001#[0-9a-f]{6}$/);
    expect(new Set(Array.from({ length: 50 }, () => eventKey(1))).size).toBeGreaterThan(45);
  });

  it.each([-1, 1.5, 1e13, Number.NaN])("refuses the epoch millis %s", (ms) => {
    expect(() => eventKey(ms, "000000")).toThrow();
  });

  it.each(["", "abc", "ABCDEF", "0000000", "g00000"])("refuses the hex tail %j", (hex) => {
    expect(() => eventKey(1, hex)).toThrow();
  });
});

describe("ids", () => {
  it("makes job, event and checkpoint ids with their prefixes", () => {
    expect(newJobId()).toMatch(/^ftjob-[0-9a-v]{21}$/);
    expect(newEventId()).toMatch(/^ftevent-[0-9a-v]{21}$/);
    expect(newCheckpointId()).toMatch(/^ftckpt-[0-9a-v]{21}$/);
  });

  it("makes job ids that sort by creation time", () => {
    const ids = [1, 1000, 1_700_000_000_000, 1_700_000_000_001, 4_000_000_000_000].map((ms) => newJobId(ms));
    expect([...ids].sort()).toEqual(ids);
  });

  it("recognises job ids and nothing else", () => {
    expect(isJobId(newJobId())).toBe(true);
    expect(isJobId(newEventId())).toBe(false);
    expect(isJobId("ftjob-../../etc")).toBe(false);
    expect(isJobId("")).toBe(false);
  });

  it("joins tenant and job in the events partition key", () => {
    expect(jobKey("tn_a", "ftjob-b")).toBe("tn_a#ftjob-b");
  });
});

describe("toCheckpointObject", () => {
  it("is the OpenAI fine_tuning.job.checkpoint object", () => {
    expect(
      toCheckpointObject({
        checkpointId: "ftckpt-1",
        jobId: JOB,
        modelCode: "acme-bot",
        createdAt: 1_700_000_100,
        stepNumber: 88,
        metrics: { step: 88, train_loss: 0.5, valid_loss: 0.7 },
      }),
    ).toEqual({
      id: "ftckpt-1",
      object: "fine_tuning.job.checkpoint",
      created_at: 1_700_000_100,
      fine_tuning_job_id: JOB,
      fine_tuned_model_checkpoint: "acme-bot:step-88",
      step_number: 88,
      metrics: { step: 88, train_loss: 0.5, valid_loss: 0.7 },
    });
  });
});

describe("fine-tuned models", () => {
  it("is the OpenAI model object owned by the tenant, rooted at its base model", () => {
    expect(
      toFineTunedModelObject({
        modelCode: "acme-bot",
        tenantId: TENANT,
        jobId: JOB,
        baseModel: "glm-4-9b-chat",
        method: "lora",
        status: "ready",
        createdAt: 1_700_000_000,
        artifactUri: "s3://artifacts/tenants/x/jobs/y/adapter/",
      }),
    ).toEqual({
      id: "acme-bot",
      object: "model",
      created: 1_700_000_000,
      owned_by: TENANT,
      name: null,
      root: "glm-4-9b-chat",
      parent: "glm-4-9b-chat",
      status: "ready",
      fine_tuning_job_id: JOB,
      method: "lora",
    });
  });

  it.each([
    ["validating_files", "pending"],
    ["queued", "pending"],
    ["running", "pending"],
    ["succeeded", "ready"],
    ["failed", "failed"],
    ["cancelled", "failed"],
  ] as const)("is %s's model status %s", (job, model) => {
    expect(modelStatusForJob(job)).toBe(model);
  });
});
