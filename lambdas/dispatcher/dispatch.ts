import { randomUUID } from "node:crypto";
import type { JobsRepository } from "../aws/jobs-repository.ts";
import type { JobOutcomeSample } from "../aws/observability.ts";
import type { TrainingRunner } from "../aws/training-runner.ts";
import { type BaseModelCatalog, findBaseModel } from "../core/catalog/base-models.ts";
import {
  runName,
  TRAINING_QUEUE_MAX_RECEIVES,
  type TrainingLocations,
  type TrainingMessage,
  trainerEnvironment,
  trainingResources,
} from "../core/jobs/dispatch.ts";
import { type JobEvent, transition } from "../core/jobs/state-machine.ts";
import type { JobRecord } from "../core/jobs/wire.ts";

export interface DispatchDependencies {
  readonly jobs: Pick<JobsRepository, "get" | "claimDispatch" | "applyTransition">;
  readonly runner: TrainingRunner;
  readonly catalog: BaseModelCatalog;
  readonly locations: TrainingLocations;
  readonly now?: () => number;
  readonly log: (message: string, details: Record<string, unknown>) => void;
  /**
   * Counts a job this dispatch failed (the `JobsFinished` metric): such a job never runs, so no Batch
   * event tells the status function, which counts the outcomes of the runs.
   */
  readonly recordOutcome?: (sample: JobOutcomeSample) => void;
}

/**
 * Longer than one dispatch can take (a few API calls), shorter than the queue's redelivery: a
 * dispatcher that died mid-way leaves a claim that a later delivery may take over. The runner's
 * submit is idempotent by name, so that takeover never starts a second training run.
 */
const CLAIM_SECONDS = 300;

export type DispatchOutcome =
  | "submitted"
  | "already_submitted"
  | "not_queued"
  | "missing"
  | "failed"
  | "cancelled"
  | "paused";

/** Which delivery of the message this is: on the last one a submit error fails the job. */
export interface Delivery {
  readonly last: boolean;
}

/**
 * One training-queue message → one submitted training run, at most once: a claim stops concurrent
 * deliveries, and the run id is stored with `attribute_not_exists(batchJobId)`. Throws (the message is
 * redelivered) when another delivery holds the claim or the runner is unavailable; on the last
 * delivery a runner that still refuses the run fails the job, so the tenant sees `failed` with a reason.
 */
export async function dispatchJob(
  message: TrainingMessage,
  deps: DispatchDependencies,
  delivery: Delivery = { last: false },
): Promise<DispatchOutcome> {
  const nowSeconds = () => Math.floor((deps.now?.() ?? Date.now()) / 1000);
  const job = await deps.jobs.get(message.tenantId, message.jobId);
  if (!job) return "missing";
  if (job.batchJobId) return "already_submitted";
  if (job.status !== "queued") return "not_queued";

  if (!(await deps.jobs.claimDispatch(job.tenantId, job.jobId, randomUUID(), nowSeconds(), CLAIM_SECONDS))) {
    const current = await deps.jobs.get(job.tenantId, job.jobId);
    if (!current || current.batchJobId) return "already_submitted";
    if (current.status !== "queued") return "not_queued";
    throw new Error(`job ${job.jobId} is being dispatched by another delivery; retrying later`);
  }

  const baseModel = findBaseModel(job.model, deps.catalog);
  if (!baseModel) {
    await record(job, { type: "dispatch_failed", reason: `base model '${job.model}' is no longer offered` });
    return "failed";
  }
  let runId: string;
  try {
    runId = await deps.runner.submit({
      name: runName(job),
      tenantId: job.tenantId,
      jobId: job.jobId,
      method: job.method,
      ...trainingResources(job),
      environment: trainerEnvironment(job, baseModel, deps.locations),
    });
  } catch (error) {
    if (!delivery.last) throw error;
    // The operator's log gets the runner's error; the tenant gets no internal names (queues, ARNs).
    deps.log("the training run could not be submitted on the last delivery; the job fails", {
      jobId: job.jobId,
      error: (error as Error).message,
    });
    const reason = `the training service did not accept the job after ${TRAINING_QUEUE_MAX_RECEIVES} attempts`;
    await record(job, { type: "dispatch_failed", reason });
    return "failed";
  }

  // The store is conditional; Batch may already have moved the job to running, or the tenant cancelled
  // or paused it.
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await deps.jobs.get(job.tenantId, job.jobId);
    if (!current) return "missing";
    if (current.batchJobId === runId) return "already_submitted";
    const result = transition(current.status, { type: "dispatched", batchJobId: runId });
    if (!result.ok) {
      if (current.status === "cancelled") {
        // The cancel won the race: nothing else will stop the run we just started.
        await deps.runner.terminate(runId, `Job ${job.jobId} was cancelled before it started`);
        deps.log("terminated a run submitted for a cancelled job", { jobId: job.jobId, runId });
        return "cancelled";
      }
      if (current.status === "paused") {
        // The pause won the race: the job holds no compute; its resume submits a run of its own.
        await deps.runner.terminate(runId, `Job ${job.jobId} was paused before it started`);
        deps.log("terminated a run submitted for a paused job", { jobId: job.jobId, runId });
        return "paused";
      }
      return "not_queued";
    }
    const applied = await deps.jobs.applyTransition({
      job: current,
      result,
      nowSeconds: nowSeconds(),
      runId: runId,
    });
    if (applied) return "submitted";
  }
  throw new Error(`job ${job.jobId} kept changing while its run id was stored; retrying`);

  async function record(current: JobRecord, event: JobEvent) {
    const result = transition(current.status, event);
    if (!result.ok) return;
    const applied = await deps.jobs.applyTransition({
      job: current,
      result,
      nowSeconds: nowSeconds(),
      model: { status: "failed" },
    });
    if (applied) deps.recordOutcome?.({ outcome: "failed", method: current.method });
  }
}
