import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { EventBridgeEvent } from "aws-lambda";
import type { TrainingRunner } from "../../lambdas/aws/training-runner.ts";
import type { TrainingSubmission } from "../../lambdas/core/jobs/dispatch.ts";

/**
 * Between SIGTERM and SIGKILL for a terminated run: Batch's (ECS's) default stop timeout, in which the
 * trainer writes the checkpoint a paused job resumes from.
 */
const TERMINATE_GRACE_MS = 30_000;

const LOCAL_METRICS_INTERVAL_SECONDS = "2";

export type BatchStateChangeEvent = EventBridgeEvent<"Batch Job State Change", Record<string, unknown>>;

export interface LocalBatchOptions {
  /** The trainer command; it gets the submission's environment (the container contract) on top of this process's. */
  readonly command: readonly string[];
  /** The job-status handler: every state change goes there, in order, as EventBridge would deliver it. */
  readonly onStateChange: (event: BatchStateChangeEvent) => Promise<unknown>;
  /** Runs at once; more wait as RUNNABLE (a laptop has one "GPU"). Default 1. */
  readonly concurrency?: number;
  /** Where each run's scratch directory and log go. */
  readonly workDir: string;
  readonly log?: (line: string) => void;
}

interface Run {
  readonly id: string;
  readonly submission: TrainingSubmission;
  status: "RUNNABLE" | "STARTING" | "RUNNING" | "SUCCEEDED" | "FAILED";
  child?: ChildProcess;
  terminated?: string;
  /** State changes of one run are delivered one after another, as their order matters. */
  delivery: Promise<void>;
  /** Settles when its process has ended and its log is on disk (at once for a run never started). */
  closed?: Promise<void>;
}

/**
 * AWS Batch for the local platform: each submission runs the trainer entrypoint as a child process
 * with the same environment contract, and its state changes (RUNNABLE, STARTING, RUNNING, SUCCEEDED or
 * FAILED with the exit code) reach the same job-status handler in the shape of EventBridge's
 * "Batch Job State Change". Submissions are idempotent by name, like the AWS runner.
 */
export class LocalBatch implements TrainingRunner {
  private readonly runs = new Map<string, Run>();
  private readonly byName = new Map<string, string>();
  private readonly waiting: Run[] = [];
  private active = 0;
  private stopped = false;

  constructor(private readonly options: LocalBatchOptions) {
    mkdirSync(join(options.workDir, "runs"), { recursive: true });
  }

  async submit(submission: TrainingSubmission): Promise<string> {
    const existing = this.byName.get(submission.name);
    if (existing) return existing;
    const run: Run = {
      id: `local-${randomUUID()}`,
      submission,
      status: "RUNNABLE",
      delivery: Promise.resolve(),
    };
    this.runs.set(run.id, run);
    this.byName.set(submission.name, run.id);
    // As in Batch, the submission itself emits no event; the move to RUNNABLE does.
    this.emit(run, "RUNNABLE");
    this.waiting.push(run);
    setImmediate(() => this.schedule());
    return run.id;
  }

  /**
   * Runs again a job whose run this platform lost (it was stopped, or killed, while the run waited or
   * trained): the same run id, so the job's record still names it, moving RUNNABLE → RUNNING as Batch
   * does when it retries a job after losing its host (a running job's RUNNABLE is recorded as an
   * interruption). The trainer resumes from its newest checkpoint.
   */
  resume(runId: string, submission: TrainingSubmission): void {
    if (this.runs.has(runId)) return;
    const run: Run = { id: runId, submission, status: "RUNNABLE", delivery: Promise.resolve() };
    this.runs.set(run.id, run);
    this.byName.set(submission.name, run.id);
    this.emit(run, "RUNNABLE");
    this.waiting.push(run);
    setImmediate(() => this.schedule());
  }

  /**
   * Stops trainer processes a previous platform left running (it was killed with them still alive), as
   * recorded under `{workDir}/runs/`: their jobs are resumed by a fresh run, never trained twice at once.
   */
  async reapLeftovers(): Promise<number> {
    const dir = join(this.options.workDir, "runs");
    const leftovers: number[] = [];
    for (const entry of readdirSync(dir)) {
      const file = join(dir, entry);
      try {
        const { pid, command } = JSON.parse(readFileSync(file, "utf8")) as { pid: number; command: string };
        if (isRunning(pid, command)) {
          process.kill(pid, "SIGTERM");
          leftovers.push(pid);
        }
      } catch {
        // Gone meanwhile, or an unreadable record: nothing to stop.
      }
      rmSync(file, { force: true });
    }
    for (let i = 0; i < 100 && leftovers.some((pid) => isRunning(pid)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const pid of leftovers.filter((pid) => isRunning(pid))) process.kill(pid, "SIGKILL");
    return leftovers.length;
  }

  async terminate(runId: string, reason: string): Promise<void> {
    const run = this.runs.get(runId);
    if (!run || run.status === "SUCCEEDED" || run.status === "FAILED") return;
    run.terminated = reason;
    const queued = this.waiting.indexOf(run);
    if (queued >= 0) {
      this.waiting.splice(queued, 1);
      this.finish(run, "FAILED", undefined, reason);
      return;
    }
    run.child?.kill("SIGTERM");
    // On SIGTERM the trainer checkpoints its current step and exits (a pause); one that does not gets
    // what Batch would send after its grace period.
    setTimeout(() => run.child?.exitCode === null && run.child.kill("SIGKILL"), TERMINATE_GRACE_MS).unref();
  }

  /** Waits until every state change so far has been delivered (tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.runs.values()].map((run) => run.delivery));
  }

  /**
   * Stops every run (Ctrl-C of the local platform). A run this stop interrupts reports nothing: its job
   * stays queued or running, and a platform that keeps its state resumes it at the next start.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.waiting.length = 0;
    const children = [...this.runs.values()].filter((run) => run.child);
    for (const run of children) run.child!.kill("SIGTERM");
    const kill = setTimeout(() => {
      for (const run of children) if (run.child!.exitCode === null) run.child!.kill("SIGKILL");
    }, 10_000);
    await Promise.all(children.map((run) => run.closed));
    clearTimeout(kill);
    await this.settled();
  }

  private schedule(): void {
    while (!this.stopped && this.active < (this.options.concurrency ?? 1) && this.waiting.length > 0) {
      this.start(this.waiting.shift()!);
    }
  }

  private start(run: Run): void {
    this.active++;
    this.emit(run, "STARTING");
    const [command, ...args] = this.options.command;
    const scratch = join(this.options.workDir, run.id);
    mkdirSync(scratch, { recursive: true });
    const logPath = join(this.options.workDir, `${run.submission.jobId}.log`);
    const logFile = createWriteStream(logPath, { flags: "a" });
    // The plan's nodes and GPUs per node are the cloud's: locally every run is one node, where the
    // launcher counts the GPUs it sees, else starts FT_LOCAL_NPROC CPU processes.
    const {
      FT_NPROC_PER_NODE: _cloudGpus,
      FT_NNODES: _cloudNodes,
      ...environment
    } = run.submission.environment;
    const child = spawn(command!, args, {
      env: {
        // A local CPU job lasts seconds to minutes: a metrics event every 2 s (not the cloud's 15) keeps
        // the console's loss curve moving. An operator setting; the tenant's hyperparameters can not.
        FT_METRICS_INTERVAL_SECONDS: LOCAL_METRICS_INTERVAL_SECONDS,
        ...process.env,
        ...environment,
        FT_WORK_DIR: scratch,
        PYTHONUNBUFFERED: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    run.child = child;
    // Where the next platform finds it, should this one be killed before the run ends (reapLeftovers).
    const record = join(this.options.workDir, "runs", `${run.id}.json`);
    if (child.pid)
      writeFileSync(record, JSON.stringify({ pid: child.pid, command: this.options.command.join(" ") }));
    child.stdout.pipe(logFile, { end: false });
    child.stderr.pipe(logFile, { end: false });
    this.options.log?.(`${run.submission.jobId}: started ${run.id} (log ${logPath})`);
    this.emit(run, "RUNNING");
    child.on("error", (error) => {
      logFile.write(`spawn failed: ${error.message}\n`);
    });
    // The run ends once its log is on disk: whoever reacts to the final state may read the log at once.
    let closed: () => void = () => {};
    run.closed = new Promise((resolve) => {
      closed = resolve;
    });
    child.on("close", (code, signal) =>
      logFile.end(() => {
        this.active--;
        rmSync(record, { force: true });
        closed();
        const exitCode = code ?? (signal ? 128 + (signal === "SIGKILL" ? 9 : 15) : 1);
        if (this.stopped && exitCode !== 0 && !run.terminated) {
          // Not a failure of the job: the platform is stopping. Its job resumes at the next start.
          this.options.log?.(`${run.submission.jobId}: interrupted by the platform's stop (log ${logPath})`);
          return;
        }
        if (run.terminated) this.finish(run, "FAILED", exitCode, run.terminated);
        else if (exitCode === 0) this.finish(run, "SUCCEEDED", 0);
        else this.finish(run, "FAILED", exitCode, `Essential container in task exited (code ${exitCode})`);
        const where = exitCode === 0 ? "" : `; log ${logPath}`;
        this.options.log?.(`${run.submission.jobId}: ${run.status} (exit ${exitCode}${where})`);
        this.schedule();
      }),
    );
  }

  private finish(run: Run, status: "SUCCEEDED" | "FAILED", exitCode?: number, reason?: string): void {
    this.emit(run, status, exitCode, reason);
  }

  private emit(run: Run, status: Run["status"], exitCode?: number, reason?: string): void {
    run.status = status;
    const container = exitCode === undefined ? {} : { exitCode, ...(reason ? { reason } : {}) };
    const event: BatchStateChangeEvent = {
      version: "0",
      id: randomUUID(),
      "detail-type": "Batch Job State Change",
      source: "aws.batch",
      account: "000000000000",
      time: new Date().toISOString(),
      region: process.env.AWS_REGION ?? "us-east-1",
      resources: [],
      detail: {
        jobId: run.id,
        jobName: run.submission.name,
        jobQueue: `local-${run.submission.method}`,
        status,
        ...(reason ? { statusReason: reason } : {}),
        parameters: { tenantId: run.submission.tenantId, jobId: run.submission.jobId },
        attempts: exitCode === undefined ? [] : [{ container }],
        container,
      },
    };
    run.delivery = run.delivery.then(() => this.deliver(event));
  }

  /** EventBridge retries a failed target; so does this, a few times, then logs and drops. */
  private async deliver(event: BatchStateChangeEvent): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.onStateChange(event);
        return;
      } catch (error) {
        if (attempt >= 5) {
          this.options.log?.(
            `state change ${String(event.detail.status)} dropped: ${(error as Error).message}`,
          );
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }
}

/** The process is alive and, where /proc tells, still runs `command` (a pid is reused after it ends). */
function isRunning(pid: number, command?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (!command || !existsSync(`/proc/${pid}/cmdline`)) return true;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    return cmdline.includes(command.split(" ").at(-1)!);
  } catch {
    return false;
  }
}
