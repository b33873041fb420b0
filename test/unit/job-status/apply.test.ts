import { describe, expect, it } from "vitest";
import type { FileRecord } from "../../../lambdas/core/files/file-record.ts";
import type { TransitionWrite } from "../../../lambdas/core/jobs/ports.ts";
import type { JobRecord } from "../../../lambdas/core/jobs/wire.ts";
import { newJobEventItem, toJobObject } from "../../../lambdas/core/jobs/wire.ts";
import { applyBatchStateChange, type StatusDependencies } from "../../../lambdas/job-status/apply.ts";
import { parseResultSummary } from "../../../lambdas/job-status/result-summary.ts";
import { JOB, jobRecord, TENANT } from "../../fixtures/jobs.ts";

const ROOT = `tenants/${TENANT}/jobs/${JOB}/`;
const RESULTS_FILE = "file-001k892a2fse5r8e5481r";
const RESULTS_KEY = `tenants/${TENANT}/files/${RESULTS_FILE}.csv`;
const CSV =
  "step,epoch,train_loss,train_mean_token_accuracy,valid_loss,valid_mean_token_accuracy,full_valid_loss," +
  "full_valid_mean_token_accuracy,learning_rate,trained_tokens\n1,0.5,2.1,0.41,,,,,0.0001,512\n" +
  "2,1,1.7,0.52,1.8,0.5,1.75,0.51,0.00005,1024\n";
const RESULT = {
  objective: "supervised",
  steps: 2,
  trained_tokens: 1024,
  final_loss: 1.7,
  delivered_step: 2,
  best_step: 2,
  early_stopped: false,
  full_valid_loss: 1.75,
  full_valid_mean_token_accuracy: 0.51,
  validation_split: { fraction: 0.1, examples: 4 },
};

const succeeded = {
  jobId: "batch-1",
  jobName: JOB,
  status: "SUCCEEDED",
  parameters: { tenantId: TENANT, jobId: JOB },
};

/**
 * In-memory stand-ins for the adapters: a jobs table whose transition is conditional on the status (as
 * DynamoDB's), the artifacts bucket, the datasets bucket and the files table (a conditional put).
 */
function platform(
  options: { result?: unknown; csv?: string | null; job?: Partial<JobRecord>; trainerError?: string } = {},
) {
  let job: JobRecord = jobRecord({ status: "running", batchJobId: "batch-1", ...options.job });
  const artifacts = new Map<string, { body: string; json?: unknown }>();
  if (options.result !== undefined) {
    artifacts.set(`${ROOT}result.json`, { body: JSON.stringify(options.result), json: options.result });
  }
  if (options.csv !== null) artifacts.set(`${ROOT}results.csv`, { body: options.csv ?? CSV });
  const datasets = new Map<string, { body: string; contentType: string }>();
  const files = new Map<string, FileRecord>();
  const calls = { copies: 0, creates: 0, transitions: [] as TransitionWrite[] };
  /** Runs before a transition is written: a test's chance to let a concurrent change win. */
  let beforeWrite: (() => void) | undefined;

  const deps: StatusDependencies = {
    jobs: {
      get: async () => job,
      applyTransition: async (write) => {
        beforeWrite?.();
        beforeWrite = undefined;
        if (!write.result.allowedFrom.includes(job.status)) return false;
        calls.transitions.push(write);
        job = { ...job, ...(write.fields as Partial<JobRecord>), status: write.result.to };
        return true;
      },
      latestErrorEvent: async () =>
        options.trainerError === undefined
          ? undefined
          : newJobEventItem(
              TENANT,
              JOB,
              { level: "error", message: options.trainerError },
              1_700_000_400_000,
            ),
    },
    artifacts: {
      bucket: "ft-artifacts",
      getJson: async (key) => {
        const object = artifacts.get(key);
        if (!object) return undefined;
        return object.json !== undefined ? object.json : JSON.parse(object.body);
      },
      head: async (key) => {
        const object = artifacts.get(key);
        return object ? { bytes: Buffer.byteLength(object.body), eTag: '"e"' } : undefined;
      },
    },
    resultFiles: {
      datasets: {
        copyFrom: async (source, key, contentType) => {
          calls.copies++;
          expect(source.bucket).toBe("ft-artifacts");
          const object = artifacts.get(source.key);
          if (!object) throw Object.assign(new Error("NoSuchKey"), { name: "NoSuchKey" });
          datasets.set(key, { body: object.body, contentType });
        },
      },
      files: {
        createIfAbsent: async (record) => {
          calls.creates++;
          const key = `${record.tenantId}/${record.fileId}`;
          if (files.has(key)) return false;
          files.set(key, record);
          return true;
        },
      },
    },
    now: () => 1_700_000_500_000,
  };
  return {
    deps,
    artifacts,
    datasets,
    files,
    calls,
    job: () => job,
    setJob: (next: JobRecord) => {
      job = next;
    },
    raceBeforeWrite: (change: () => void) => {
      beforeWrite = change;
    },
  };
}

describe("job-status on success: the results file", () => {
  it("copies results.csv to the tenant's files as a processed fine-tune-results file the job names", async () => {
    const p = platform({ result: RESULT });
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("applied");

    expect(p.job()).toMatchObject({ status: "succeeded", resultFiles: [RESULTS_FILE], trainedTokens: 1024 });
    expect(p.datasets.get(RESULTS_KEY)).toEqual({ body: CSV, contentType: "text/csv" });
    expect(p.files.get(`${TENANT}/${RESULTS_FILE}`)).toEqual({
      tenantId: TENANT,
      fileId: RESULTS_FILE,
      filename: `${JOB}-results.csv`,
      purpose: "fine-tune-results",
      bytes: Buffer.byteLength(CSV),
      contentType: "text/csv",
      objectKey: RESULTS_KEY,
      createdAt: 1_700_000_500,
      status: "processed",
    });
    expect(toJobObject(p.job()).result_files).toEqual([RESULTS_FILE]);
  });

  it("succeeds with no result files when the trainer wrote no results.csv (an older trainer)", async () => {
    const p = platform({ result: { trained_tokens: 1234, steps: 1 }, csv: null });
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("applied");
    expect(p.job()).toMatchObject({ status: "succeeded", resultFiles: [], trainedTokens: 1234 });
    expect(p.calls.copies).toBe(0);
    expect(p.files.size).toBe(0);
  });

  it("makes no second file when EventBridge delivers the success again", async () => {
    const p = platform({ result: RESULT });
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("applied");
    // A terminal status takes no second success: the event is dropped.
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("rejected");
    expect(p.files.size).toBe(1);
    expect(p.calls.copies).toBe(1);
    expect(p.calls.transitions).toHaveLength(1);
    expect(p.job().resultFiles).toEqual([RESULTS_FILE]);
  });

  it("makes one file when two deliveries race: the loser finds the winner's file and the job succeeded", async () => {
    const p = platform({ result: RESULT });
    const first = applyBatchStateChange(succeeded, p.deps);
    const second = applyBatchStateChange(succeeded, p.deps);
    expect((await Promise.all([first, second])).sort()).toEqual(["applied", "rejected"]);
    expect(p.files.size).toBe(1);
    expect(p.calls.creates).toBe(2);
    expect(p.job().resultFiles).toEqual([RESULTS_FILE]);
  });

  it("keeps a file the tenant deleted deleted when the success is delivered again", async () => {
    const p = platform({ result: RESULT });
    await applyBatchStateChange(succeeded, p.deps);
    p.files.clear();
    p.datasets.clear();
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("rejected");
    expect(p.files.size).toBe(0);
    expect(p.datasets.size).toBe(0);
  });

  it("publishes nothing for a run without result.json, which fails, whatever results.csv it left", async () => {
    const p = platform({ csv: CSV });
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("applied");
    expect(p.job()).toMatchObject({ status: "failed" });
    expect(p.job().resultFiles).toEqual([]);
    expect(p.calls.copies).toBe(0);
    expect(p.files.size).toBe(0);
  });

  it("publishes nothing for a success that arrives after a cancel", async () => {
    const p = platform({ result: RESULT, job: { status: "cancelled" } });
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("rejected");
    expect(p.calls.copies).toBe(0);
    expect(p.files.size).toBe(0);
  });

  it("lets a cancel that wins the race keep the job cancelled (the copied file stays the tenant's)", async () => {
    const p = platform({ result: RESULT });
    p.raceBeforeWrite(() => p.setJob({ ...p.job(), status: "cancelled" }));
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("rejected");
    expect(p.job()).toMatchObject({ status: "cancelled", resultFiles: [] });
  });

  it("lets a failing copy fail the delivery (EventBridge retries it) without changing the job", async () => {
    const p = platform({ result: RESULT });
    p.deps.resultFiles.datasets.copyFrom = async () => {
      throw Object.assign(new Error("slow down"), { name: "SlowDown" });
    };
    await expect(applyBatchStateChange(succeeded, p.deps)).rejects.toThrow("slow down");
    expect(p.job().status).toBe("running");
    expect(p.files.size).toBe(0);
  });
});

describe("job-status on success: the training summary", () => {
  it("stores result.json's account of the delivered weights, shown as training_summary", async () => {
    const p = platform({ result: RESULT });
    await applyBatchStateChange(succeeded, p.deps);
    expect(p.job().trainingSummary).toEqual({
      deliveredStep: 2,
      bestStep: 2,
      earlyStopped: false,
      fullValidLoss: 1.75,
      fullValidMeanTokenAccuracy: 0.51,
      validationSplit: { fraction: 0.1, examples: 4 },
    });
    expect(toJobObject(p.job()).training_summary).toEqual({
      delivered_step: 2,
      best_step: 2,
      early_stopped: false,
      full_valid_loss: 1.75,
      full_valid_mean_token_accuracy: 0.51,
      validation_split: { fraction: 0.1, examples: 4 },
    });
  });

  it("shows training_summary null before success, and for a trainer that reports no evaluation", async () => {
    const p = platform({ result: { trained_tokens: 10, steps: 1, final_loss: 2 } });
    expect(toJobObject(p.job()).training_summary).toBeNull();
    await applyBatchStateChange(succeeded, p.deps);
    expect(p.job().status).toBe("succeeded");
    expect(p.job().trainingSummary).toBeUndefined();
    expect(toJobObject(p.job()).training_summary).toBeNull();
  });

  it("succeeds with no summary when result.json is not valid JSON (Python's bare NaN), rather than retrying", async () => {
    const p = platform({ csv: null });
    p.artifacts.set(`${ROOT}result.json`, { body: '{"trained_tokens": 5, "full_valid_loss": NaN}' });
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("applied");
    expect(p.job()).toMatchObject({ status: "succeeded", trainedTokens: null, resultFiles: [] });
    expect(p.job().trainingSummary).toBeUndefined();
  });

  it("still fails the event on a read error other than bad JSON, so that it is retried", async () => {
    const p = platform({ result: RESULT });
    p.deps.artifacts.getJson = async () => {
      throw Object.assign(new Error("access denied"), { name: "AccessDenied" });
    };
    await expect(applyBatchStateChange(succeeded, p.deps)).rejects.toThrow("access denied");
    expect(p.job().status).toBe("running");
  });
});

describe("parseResultSummary", () => {
  const nothing = {
    deliveredStep: null,
    bestStep: null,
    earlyStopped: null,
    fullValidLoss: null,
    fullValidMeanTokenAccuracy: null,
    validationSplit: null,
  };

  it("keeps a run without validation data: no best step, no full validation, no split", () => {
    expect(
      parseResultSummary({
        trained_tokens: 900,
        delivered_step: 30,
        best_step: null,
        early_stopped: false,
        full_valid_loss: null,
        full_valid_mean_token_accuracy: null,
        validation_split: null,
      }),
    ).toEqual({
      trainedTokens: 900,
      trainingSummary: { ...nothing, deliveredStep: 30, earlyStopped: false },
    });
  });

  it.each([
    ["a string step", { delivered_step: "12" }],
    ["a fractional step", { delivered_step: 1.5 }],
    ["a negative step", { best_step: -1 }],
    ["a numeric flag", { early_stopped: 1 }],
    ["a negative loss", { full_valid_loss: -0.1 }],
    ["an accuracy over 1", { full_valid_mean_token_accuracy: 1.5 }],
    ["a split fraction of 1", { validation_split: { fraction: 1, examples: 10 } }],
    ["a split without examples", { validation_split: { fraction: 0.1 } }],
    ["a split as a number", { validation_split: 0.1 }],
  ])("reads %s as null, keeping the fields that are right", (_, bad) => {
    const parsed = parseResultSummary({ trained_tokens: 7, delivered_step: 3, early_stopped: true, ...bad });
    expect(parsed.trainedTokens).toBe(7);
    const summary = parsed.trainingSummary;
    const [field] = Object.keys(bad);
    const camel = field!.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()) as keyof typeof nothing;
    expect(summary?.[camel]).toBeNull();
    if (field !== "delivered_step") expect(summary?.deliveredStep).toBe(3);
    if (field !== "early_stopped") expect(summary?.earlyStopped).toBe(true);
  });

  it.each([
    ["an array", []],
    ["a number", 42],
    ["a string", "done"],
    ["null", null],
    ["an empty object", {}],
  ])("reads %s as a result that says nothing", (_, raw) => {
    expect(parseResultSummary(raw)).toEqual({ trainedTokens: null, trainingSummary: undefined });
  });

  it("keeps no field it does not know (DPO's reward metrics, the trainer's paths)", () => {
    const parsed = parseResultSummary({
      ...RESULT,
      full_valid_reward_accuracy: 0.8,
      result: "s3://bucket/tenants/x/",
    });
    expect(Object.keys(parsed.trainingSummary ?? {}).sort()).toEqual(Object.keys(nothing).sort());
  });
});

describe("job-status on failure: what the tenant reads", () => {
  const failed = (exitCode: number | undefined, reason: string) => ({
    jobId: "batch-1",
    jobName: JOB,
    status: "FAILED",
    statusReason: reason,
    parameters: { tenantId: TENANT, jobId: JOB },
    attempts: [{ container: { ...(exitCode === undefined ? {} : { exitCode }), reason } }],
  });
  const written = async (detail: unknown, trainerError?: string) => {
    const p = platform(trainerError === undefined ? {} : { trainerError });
    await expect(applyBatchStateChange(detail, p.deps)).resolves.toBe("applied");
    const [write] = p.calls.transitions;
    return { error: write!.result.error, event: write!.event!.message };
  };

  it("keeps the trainer's own (already tenant-safe) error event as the job's error", async () => {
    const message = `Training failed due to an internal error (reference ${JOB})`;
    const { error } = await written(failed(1, "Essential container in task exited"), message);
    expect(error).toEqual({ code: "training_failed", message, param: null });
  });

  it("never shows Batch's own reason for a failure it cannot word for the tenant: the job id is the reference", async () => {
    const reason =
      "CannotPullContainerError: pull image manifest has been retried 5 time(s): 123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-trainer:abc not found";
    for (const exitCode of [undefined, 1, 137]) {
      const { error, event } = await written(failed(exitCode, reason));
      expect(error?.message).toBe(`an internal error (reference ${JOB})`);
      expect(event).toBe(`Training failed: an internal error (reference ${JOB})`);
      expect(JSON.stringify({ error, event })).not.toMatch(/dkr\.ecr|123456789012|CannotPull/);
    }
  });

  it("words the run's time limit, a lost instance and the trainer's exit codes for the tenant", async () => {
    expect((await written(failed(undefined, "Job attempt duration exceeded timeout"))).error?.message).toBe(
      "the run exceeded its time limit",
    );
    expect(
      (await written(failed(undefined, "Host EC2 (instance i-0abc123) terminated."))).event,
    ).not.toContain("i-0abc123");
    expect((await written(failed(2, "Essential container in task exited"))).error).toMatchObject({
      code: "invalid_training_input",
      message: expect.stringMatching(/rejected/),
    });
    expect((await written(failed(3, "Essential container in task exited"))).error).toMatchObject({
      code: "out_of_memory",
      message: expect.stringMatching(/out of GPU memory/),
    });
  });
});

describe("job-status for a paused job", () => {
  const change = (status: string, run = { id: "batch-1", name: JOB }) => ({
    jobId: run.id,
    jobName: run.name,
    status,
    parameters: { tenantId: TENANT, jobId: JOB },
    ...(status === "FAILED"
      ? { statusReason: `Paused by the tenant (${JOB})`, attempts: [{ container: { exitCode: 143 } }] }
      : {}),
  });

  it("keeps a paused job paused when its terminated run reports FAILED: the pause is no failure", async () => {
    const p = platform({ job: { status: "paused" } });
    await expect(applyBatchStateChange(change("FAILED"), p.deps)).resolves.toBe("rejected");
    expect(p.job()).toMatchObject({ status: "paused", error: null });
    expect(p.calls.transitions).toEqual([]);
  });

  it("keeps a paused job paused on its run's late RUNNABLE, STARTING and RUNNING", async () => {
    const p = platform({ job: { status: "paused" } });
    for (const status of ["RUNNABLE", "STARTING", "RUNNING"]) {
      await expect(applyBatchStateChange(change(status), p.deps)).resolves.toBe("rejected");
    }
    expect(p.job().status).toBe("paused");
  });

  it("lets a success that raced the pause win: the run had finished, with its result complete", async () => {
    const p = platform({ result: RESULT, job: { status: "paused" } });
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("applied");
    expect(p.job()).toMatchObject({ status: "succeeded", resultFiles: [RESULTS_FILE] });
  });

  it("keeps a paused job paused when its run exits 0 without a result (no success to win with)", async () => {
    const p = platform({ job: { status: "paused" } });
    await expect(applyBatchStateChange(succeeded, p.deps)).resolves.toBe("rejected");
    expect(p.job().status).toBe("paused");
  });

  it("ignores the paused run's late events after a resume, by its run name", async () => {
    const p = platform({ job: { status: "queued", batchJobId: null, resumes: 1 } });
    await expect(applyBatchStateChange(change("FAILED"), p.deps)).resolves.toBe("stale_run");
    await expect(applyBatchStateChange(change("RUNNING"), p.deps)).resolves.toBe("stale_run");
    expect(p.job().status).toBe("queued");
  });

  it("follows the resumed run, named after the resume", async () => {
    const p = platform({ job: { status: "queued", batchJobId: null, resumes: 1 } });
    const resumed = { id: "batch-2", name: `${JOB}-resume-1` };
    await expect(applyBatchStateChange(change("RUNNING", resumed), p.deps)).resolves.toBe("applied");
    expect(p.job().status).toBe("running");
  });
});
