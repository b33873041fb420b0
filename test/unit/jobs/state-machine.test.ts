import { describe, expect, it } from "vitest";
import { CONTRACT } from "../../../lambdas/core/contract.ts";
import { ConflictError } from "../../../lambdas/core/errors.ts";
import {
  BATCH_STATUSES,
  batchStatusToEvent,
  isTerminal,
  JOB_EVENT_TYPES,
  JOB_STATUSES,
  type JobEvent,
  type JobEventType,
  type JobStatus,
  jobNotCancellable,
  jobNotPausable,
  jobNotResumable,
  TERMINAL_STATUSES,
  transition,
} from "../../../lambdas/core/jobs/state-machine.ts";

const sample: Record<JobEventType, JobEvent> = {
  files_validated: { type: "files_validated" },
  files_invalid: { type: "files_invalid", reason: "line 3: invalid JSON", param: "training_file" },
  dispatched: { type: "dispatched", batchJobId: "b-123" },
  dispatch_failed: { type: "dispatch_failed", reason: "job definition missing" },
  batch_queued: { type: "batch_queued", batchStatus: "RUNNABLE" },
  batch_starting: { type: "batch_starting" },
  batch_running: { type: "batch_running" },
  batch_succeeded: { type: "batch_succeeded" },
  batch_failed: { type: "batch_failed", reason: "OutOfMemoryError: Container killed" },
  cancel_requested: { type: "cancel_requested" },
  pause_requested: { type: "pause_requested" },
  resume_requested: { type: "resume_requested" },
};

const Q = "queued";
const R = "running";
const P = "paused";
const S = "succeeded";
const F = "failed";
const C = "cancelled";
const x = "rejected";
type Outcome = JobStatus | typeof x;

/**
 * The expected outcome of every (status, event) pair: the status it leads to, or rejected. Rows are
 * events, columns the statuses in JOB_STATUSES order (validating_files, queued, running, paused,
 * succeeded, failed, cancelled).
 */
const EXPECTED: Record<JobEventType, [Outcome, Outcome, Outcome, Outcome, Outcome, Outcome, Outcome]> = {
  files_validated: [Q, x, x, x, x, x, x],
  files_invalid: [F, x, x, F, x, x, x],
  dispatched: [x, Q, R, x, x, x, x],
  dispatch_failed: [x, F, x, x, x, x, x],
  batch_queued: [x, Q, R, x, x, x, x],
  batch_starting: [x, R, R, x, x, x, x],
  batch_running: [x, R, R, x, x, x, x],
  batch_succeeded: [x, S, S, S, x, x, x],
  batch_failed: [x, F, F, x, x, x, x],
  cancel_requested: [C, C, C, C, x, x, x],
  pause_requested: [P, P, P, x, x, x, x],
  resume_requested: [x, x, x, Q, x, x, x],
};

const pairs = JOB_EVENT_TYPES.flatMap((event) =>
  JOB_STATUSES.map((status, column) => [status, event, EXPECTED[event][column]!] as const),
);

describe("transition", () => {
  it("covers every (status, event) pair in the expected table", () => {
    expect(pairs).toHaveLength(JOB_STATUSES.length * JOB_EVENT_TYPES.length);
    expect(Object.keys(EXPECTED).sort()).toEqual([...JOB_EVENT_TYPES].sort());
  });

  it.each(pairs)("from %s on %s gives %s", (status, event, expected) => {
    const result = transition(status, sample[event]);
    if (expected === x) {
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toBe(isTerminal(status) ? "terminal" : "not_allowed");
      return;
    }
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.from).toBe(status);
    expect(result.to).toBe(expected);
    expect(result.changed).toBe(expected !== status);
    expect(result.finished).toBe(isTerminal(expected));
    expect(result.message.text.length).toBeGreaterThan(0);
    // allowedFrom: exactly the statuses this event takes to the same place.
    const sameTarget = JOB_STATUSES.filter((_, column) => EXPECTED[event][column] === expected);
    expect(result.allowedFrom).toEqual(sameTarget);
    expect(result.allowedFrom).toContain(status);
  });

  it("never changes a terminal status, whatever the event", () => {
    for (const status of TERMINAL_STATUSES) {
      for (const event of JOB_EVENT_TYPES) {
        expect(transition(status, sample[event])).toEqual({ ok: false, from: status, reason: "terminal" });
      }
    }
  });

  it("never lets a late running event overwrite cancelled", () => {
    expect(transition("cancelled", { type: "batch_running" }).ok).toBe(false);
    const running = transition("queued", { type: "batch_running" });
    expect(running.ok && running.allowedFrom).toEqual(["queued", "running"]);
  });

  it("never puts a terminal status in an allowedFrom set", () => {
    for (const [status, event] of pairs) {
      const result = transition(status, sample[event]);
      if (result.ok) for (const from of result.allowedFrom) expect(isTerminal(from)).toBe(false);
    }
  });

  it("keeps a running job running when Batch goes back to RUNNABLE for a retry", () => {
    const result = transition("running", { type: "batch_queued", batchStatus: "RUNNABLE", attempt: 2 });
    expect(result).toMatchObject({ ok: true, to: "running", changed: false, allowedFrom: ["running"] });
    expect(result.ok && result.message).toEqual({
      level: "warn",
      text: "Training interrupted; waiting for capacity to resume from the newest checkpoint (attempt 2).",
    });
  });

  it("says a queued job waits for capacity", () => {
    const result = transition("queued", { type: "batch_queued" });
    expect(result.ok && result.message).toEqual({ level: "info", text: "Waiting for training capacity." });
  });

  it("records the Batch job id in the dispatched message", () => {
    const result = transition("queued", { type: "dispatched", batchJobId: "abc-123" });
    expect(result.ok && result.message.text).toContain("abc-123");
  });

  it("starts a job on its first running event and then reports it as still running", () => {
    const first = transition("queued", { type: "batch_running", attempt: 1 });
    expect(first.ok && first.message.text).toBe("Training started (attempt 1).");
    const again = transition("running", { type: "batch_running" });
    expect(again.ok && again.message.text).toBe("Training running.");
  });

  it("fails a job with the Batch reason as training_failed", () => {
    const result = transition("running", { type: "batch_failed", reason: "OutOfMemoryError" });
    expect(result).toMatchObject({
      ok: true,
      to: "failed",
      finished: true,
      error: { code: "training_failed", message: "OutOfMemoryError", param: null },
      message: { level: "error", text: "Training failed: OutOfMemoryError" },
    });
  });

  it("fails a job with a generic message when Batch gives no reason", () => {
    const result = transition("queued", { type: "batch_failed" });
    expect(result.ok && result.error).toEqual({
      code: "training_failed",
      message: "Training failed.",
      param: null,
    });
    expect(result.ok && result.message.text).toBe("Training failed.");
  });

  it("fails a job whose files are invalid with invalid_training_file", () => {
    const result = transition("validating_files", { type: "files_invalid", reason: "too few examples" });
    expect(result.ok && result.error).toEqual({
      code: "invalid_training_file",
      message: "too few examples",
      param: "training_file",
    });
    const named = transition("validating_files", { type: "files_invalid", param: "validation_file" });
    expect(named.ok && named.error?.param).toBe("validation_file");
    expect(named.ok && named.error?.message).toBe("The training file could not be validated.");
  });

  it("fails a job that could not be dispatched with dispatch_failed", () => {
    const result = transition("queued", { type: "dispatch_failed" });
    expect(result.ok && result.error?.code).toBe("dispatch_failed");
    expect(result.ok && result.message.text).toBe("Job could not be submitted.");
  });

  it("has no error on transitions that do not fail", () => {
    for (const [status, event] of pairs) {
      const result = transition(status, sample[event]);
      if (result.ok && result.to !== "failed") expect(result.error).toBeNull();
      if (result.ok && result.to === "failed") expect(result.error).not.toBeNull();
    }
  });

  it("announces success in OpenAI's words", () => {
    const result = transition("running", { type: "batch_succeeded" });
    expect(result.ok && result.message).toEqual({
      level: "info",
      text: "The job has successfully completed.",
    });
  });

  it.each([
    ["files_invalid", "error"],
    ["dispatch_failed", "error"],
    ["batch_failed", "error"],
    ["cancel_requested", "info"],
    ["files_validated", "info"],
  ] as const)("logs %s at level %s", (event, level) => {
    const from = event === "files_invalid" || event === "files_validated" ? "validating_files" : "queued";
    const result = transition(from, sample[event]);
    expect(result.ok && result.message.level).toBe(level);
  });
});

describe("batchStatusToEvent", () => {
  it.each([
    ["SUBMITTED", { type: "batch_queued", batchStatus: "SUBMITTED" }],
    ["PENDING", { type: "batch_queued", batchStatus: "PENDING" }],
    ["RUNNABLE", { type: "batch_queued", batchStatus: "RUNNABLE" }],
    ["STARTING", { type: "batch_starting" }],
    ["RUNNING", { type: "batch_running" }],
    ["SUCCEEDED", { type: "batch_succeeded" }],
    ["FAILED", { type: "batch_failed" }],
  ])("maps %s to %j", (status, event) => {
    expect(batchStatusToEvent(status)).toEqual(event);
  });

  it("maps every Batch status", () => {
    for (const status of BATCH_STATUSES) expect(batchStatusToEvent(status)).toBeDefined();
  });

  it("carries the attempt and the failure reason", () => {
    expect(batchStatusToEvent("RUNNABLE", { attempt: 2 })).toEqual({
      type: "batch_queued",
      batchStatus: "RUNNABLE",
      attempt: 2,
    });
    expect(batchStatusToEvent("RUNNING", { attempt: 3 })).toEqual({ type: "batch_running", attempt: 3 });
    expect(batchStatusToEvent("FAILED", { statusReason: "Host EC2 terminated" })).toEqual({
      type: "batch_failed",
      reason: "Host EC2 terminated",
    });
  });

  it.each(["", "running", "DELETED", "UNKNOWN"])("ignores the unknown status %j", (status) => {
    expect(batchStatusToEvent(status)).toBeUndefined();
  });
});

describe("jobNotCancellable", () => {
  it.each([
    ["succeeded", "already succeeded"],
    ["failed", "already failed"],
  ] as const)("is a 409 for a %s job", (status, message) => {
    const error = jobNotCancellable(status);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.code).toBe("job_not_cancellable");
    expect(error.message).toContain(message);
  });
});

describe("statuses", () => {
  it("are OpenAI's seven, three of them terminal", () => {
    expect(JOB_STATUSES.join(" ")).toBe("validating_files queued running paused succeeded failed cancelled");
    expect(JOB_STATUSES.filter(isTerminal)).toEqual(["succeeded", "failed", "cancelled"]);
  });

  it("are the contract's, which the Python side reads too", () => {
    expect([...JOB_STATUSES]).toEqual(CONTRACT.jobStatuses);
  });
});

describe("pause and resume", () => {
  it("pauses a running job with a message saying its compute is released", () => {
    const result = transition("running", { type: "pause_requested" });
    expect(result).toMatchObject({ ok: true, to: "paused", changed: true, finished: false, error: null });
    expect(result.ok && result.allowedFrom).toEqual(["validating_files", "queued", "running"]);
    expect(result.ok && result.message.text).toMatch(/checkpoint.*compute is released/);
  });

  it("holds a queued job, saying training had not started", () => {
    const result = transition("queued", { type: "pause_requested" });
    expect(result.ok && result.message.text).toBe("Job paused before training started.");
  });

  it("resumes a paused job to queued, and only a paused one", () => {
    const result = transition("paused", { type: "resume_requested" });
    expect(result).toMatchObject({ ok: true, to: "queued", allowedFrom: ["paused"], finished: false });
    for (const status of JOB_STATUSES.filter((s) => s !== "paused")) {
      expect(transition(status, { type: "resume_requested" }).ok).toBe(false);
    }
  });

  it("does not pause a paused job again (the handler answers it unchanged)", () => {
    expect(transition("paused", { type: "pause_requested" })).toEqual({
      ok: false,
      from: "paused",
      reason: "not_allowed",
    });
  });

  it("keeps a paused job paused when its terminated run reports FAILED", () => {
    const failed = transition("paused", { type: "batch_failed", reason: "Paused by the tenant" });
    expect(failed).toEqual({ ok: false, from: "paused", reason: "not_allowed" });
    // A job that failed while running is still failed only from queued or running.
    const running = transition("running", { type: "batch_failed" });
    expect(running.ok && running.allowedFrom).toEqual(["queued", "running"]);
  });

  it("keeps a paused job paused on the late queued, starting and running events of its run", () => {
    for (const type of ["batch_queued", "batch_starting", "batch_running"] as const) {
      expect(transition("paused", { type }).ok).toBe(false);
    }
  });

  it("lets success win a race with the pause: the run finished before the SIGTERM", () => {
    const result = transition("paused", { type: "batch_succeeded" });
    expect(result).toMatchObject({ ok: true, to: "succeeded", finished: true });
    // The pause written first and the success event applied after it both hold the condition.
    expect(result.ok && result.allowedFrom).toEqual(["queued", "running", "paused"]);
  });

  it("lets the pause lose to a success that was written first", () => {
    expect(transition("succeeded", { type: "pause_requested" })).toEqual({
      ok: false,
      from: "succeeded",
      reason: "terminal",
    });
  });

  it("cancels a paused job, and a cancel written first leaves nothing to pause or resume", () => {
    const cancelled = transition("paused", { type: "cancel_requested" });
    expect(cancelled).toMatchObject({ ok: true, to: "cancelled", finished: true });
    expect(cancelled.ok && cancelled.allowedFrom).toContain("paused");
    expect(transition("cancelled", { type: "pause_requested" }).ok).toBe(false);
    expect(transition("cancelled", { type: "resume_requested" }).ok).toBe(false);
  });

  it("rejects a late dispatched in paused, so the dispatcher terminates what it submitted", () => {
    expect(transition("paused", { type: "dispatched", batchJobId: "b-9" })).toEqual({
      ok: false,
      from: "paused",
      reason: "not_allowed",
    });
  });

  it("fails a paused job whose files turn out invalid, and ignores a late files_validated", () => {
    expect(transition("paused", { type: "files_invalid" })).toMatchObject({ ok: true, to: "failed" });
    expect(transition("paused", { type: "files_validated" }).ok).toBe(false);
  });
});

describe("jobNotPausable and jobNotResumable", () => {
  it.each([
    ["succeeded", "already succeeded"],
    ["failed", "already failed"],
    ["cancelled", "already been cancelled"],
  ] as const)("pausing a %s job is a 409 job_not_pausable", (status, message) => {
    const error = jobNotPausable(status);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.code).toBe("job_not_pausable");
    expect(error.message).toContain(message);
  });

  it("resuming a job that is not paused is a 409 job_not_resumable naming its status", () => {
    const error = jobNotResumable("validating_files");
    expect(error.code).toBe("job_not_resumable");
    expect(error.message).toBe("The job is validating files; only a paused job can be resumed.");
  });
});
