import { z } from "zod";
import type { BaseModel, TrainingMethod } from "../catalog/base-models.ts";
import { datasetObjectKey } from "../files/file-record.ts";
import { hyperparametersEnv } from "./hyperparameters.ts";
import type { JobRecord } from "./wire.ts";
import { jobArtifactKeys } from "./wire.ts";

/**
 * What travels from the create handler to the dispatcher on the training queue, and what the
 * dispatcher hands the training runner (AWS Batch, or the local runner). Pure: no AWS calls here.
 */

/**
 * Deliveries of one training message before it goes to the dead-letter queue (the queue's
 * `maxReceiveCount`). On the last one, a run that still cannot be submitted fails the job
 * (`dispatch_failed`) instead of leaving it `queued` with its message in the DLQ.
 */
export const TRAINING_QUEUE_MAX_RECEIVES = 5;

/** The training queue's message body: only the key; the job record is the truth. */
export const trainingMessageSchema = z
  .object({ tenantId: z.string().min(1), jobId: z.string().min(1) })
  .strict();
export type TrainingMessage = z.infer<typeof trainingMessageSchema>;

/** One training run to submit: a Batch job in AWS, a child process locally. */
export interface TrainingSubmission {
  /** The platform job id: also the Batch job name, which makes a resubmission findable. */
  readonly name: string;
  readonly tenantId: string;
  readonly jobId: string;
  readonly method: TrainingMethod;
  /** Nodes of the run: 1 is a single-node job (the method's job queue), more a multi-node parallel job. */
  readonly nodes: number;
  /**
   * Training processes (one per GPU) on each node. Undefined for a job without a plan (an older
   * record): the trainer then starts one per GPU it sees, as it always did.
   */
  readonly gpusPerNode?: number;
  /**
   * The planner's EC2 instance type. A multi-node run is pinned to it: every node of a multi-node
   * parallel job has the same type, and each type has its own job definition (its EFA devices).
   */
  readonly instanceType?: string;
  /** The trainer's environment contract (batch-images/trainer/README.md). */
  readonly environment: Readonly<Record<string, string>>;
}

/**
 * The name of the job's current training run (the Batch job name): the platform job id for the first
 * run, `{jobId}-resume-{n}` after the n-th resume. A submission is idempotent by name, and a Batch
 * event whose job name is not the current run's is about a run a pause ended (stale).
 */
export function runName(job: Pick<JobRecord, "jobId" | "resumes">): string {
  return job.resumes ? `${job.jobId}-resume-${job.resumes}` : job.jobId;
}

/** The compute a job's run gets: {@link JobRecord.resources}, or one node for a record that has none. */
export function trainingResources(
  job: JobRecord,
): Pick<TrainingSubmission, "nodes" | "gpusPerNode" | "instanceType"> {
  if (!job.resources) return { nodes: 1 };
  const { nodes, gpusPerNode, instanceType } = job.resources;
  return { nodes, gpusPerNode, instanceType };
}

/** Where the trainer reads and writes. */
export interface TrainingLocations {
  readonly datasetsBucket: string;
  readonly artifactsBucket: string;
  readonly jobsTable: string;
  readonly eventsTable: string;
}

/**
 * The trainer's environment for a job, exactly as the container contract names it. `OBJECTIVE` is
 * always set (`supervised` for a record older than DPO); `INIT_MODEL_URI` only for a job that starts
 * from a fine-tuned model: that model's job's result, `adapter/` or `model/`, under the same tenant;
 * `TRAINING_FILE_ETAG` / `VALIDATION_FILE_ETAG` when the job recorded the validated objects' ETags.
 */
export function trainerEnvironment(
  job: JobRecord,
  baseModel: BaseModel,
  where: TrainingLocations,
): Record<string, string> {
  const dataset = (fileId: string) =>
    `s3://${where.datasetsBucket}/${datasetObjectKey(job.tenantId, fileId)}`;
  const env: Record<string, string> = {
    JOB_ID: job.jobId,
    TENANT_ID: job.tenantId,
    METHOD: job.method,
    OBJECTIVE: job.objective ?? "supervised",
    BASE_MODEL_URI: `s3://${where.artifactsBucket}/${baseModel.weightsPrefix}`,
    TRAINING_FILE_URI: dataset(job.trainingFile),
    OUTPUT_URI: `s3://${where.artifactsBucket}/${jobArtifactKeys(job.tenantId, job.jobId, job.method).root}`,
    HYPERPARAMETERS: hyperparametersEnv(job.hyperparameters),
    JOBS_TABLE: where.jobsTable,
    EVENTS_TABLE: where.eventsTable,
    // The catalog entry as this catalog (override included) has it: the trainer takes the family, the
    // model's own base learning rate and its sequence limit from it, validated by the catalog's rules.
    BASE_MODEL_SPEC: JSON.stringify(baseModel),
  };
  if (job.validationFile) env.VALIDATION_FILE_URI = dataset(job.validationFile);
  // The objects the validator read: the trainer downloads with If-Match on them and fails as invalid
  // input when the object under the key is another one.
  if (job.trainingFileETag) env.TRAINING_FILE_ETAG = job.trainingFileETag;
  if (job.validationFile && job.validationFileETag) env.VALIDATION_FILE_ETAG = job.validationFileETag;
  if (job.initModel) {
    // The parent is the same tenant's model (the jobs API checked the owner), so the URI stays under
    // tenants/{TENANT_ID}/, the only prefix the trainer reads.
    const parent = { tenantId: job.tenantId, jobId: job.initModel.jobId, method: job.initModel.method };
    env.INIT_MODEL_URI = resultArtifactUri(where.artifactsBucket, parent);
  }
  // The container's launcher (ft_trainer.launch) starts FT_NPROC_PER_NODE torchrun workers on each of
  // FT_NNODES nodes; in a multi-node parallel job Batch's AWS_BATCH_JOB_NUM_NODES says the same.
  const resources = trainingResources(job);
  env.FT_NNODES = String(resources.nodes);
  if (resources.gpusPerNode !== undefined) env.FT_NPROC_PER_NODE = String(resources.gpusPerNode);
  return env;
}

/** The artifact a succeeded job leaves: `s3://…/adapter/` for LoRA, `s3://…/model/` for full. */
export function resultArtifactUri(
  artifactsBucket: string,
  job: Pick<JobRecord, "tenantId" | "jobId" | "method">,
) {
  return `s3://${artifactsBucket}/${jobArtifactKeys(job.tenantId, job.jobId, job.method).result}`;
}
