import {
  type BatchClient,
  type JobSummary,
  ListJobsCommand,
  SubmitJobCommand,
  type SubmitJobCommandInput,
  TerminateJobCommand,
} from "@aws-sdk/client-batch";
import type { TrainingMethod } from "../core/catalog/base-models.ts";
import type { TrainingSubmission } from "../core/jobs/dispatch.ts";
import type { TrainingCanceller } from "../core/jobs/ports.ts";

/**
 * Where training runs: AWS Batch in the cloud ({@link BatchTrainingRunner}), a child process on the
 * local platform (local/platform/local-batch.ts). Both report state changes the same way: EventBridge
 * "Batch Job State Change" events to the job-status handler.
 */
export interface TrainingRunner extends TrainingCanceller {
  /**
   * Submits a run and returns its id. Idempotent by `submission.name`: when a run of that name already
   * exists (a dispatcher that crashed after submitting), its id is returned and nothing is submitted.
   */
  submit(submission: TrainingSubmission): Promise<string>;
}

export interface BatchTargets {
  /** Single-node jobs: one queue and one job definition per method. */
  readonly jobQueues: Readonly<Record<TrainingMethod, string>>;
  readonly jobDefinitions: Readonly<Record<TrainingMethod, string>>;
  /** Multi-node parallel jobs (any method); without it a run of more than one node is refused. */
  readonly multiNode?: MultiNodeTargets;
}

export interface MultiNodeTargets {
  /** The On-Demand, cluster-placement-group queue. */
  readonly jobQueue: string;
  /**
   * One job definition per EC2 instance type: a definition maps its type's EFA devices and is pinned
   * to that type (every node of a multi-node parallel job has the same instance type).
   */
  readonly jobDefinitions: Readonly<Record<string, string>>;
}

/** The statuses ListJobs is asked about when looking for an earlier submission of the same job. */
const LIVE_OR_DONE = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"];

export class BatchTrainingRunner implements TrainingRunner {
  constructor(
    private readonly batch: BatchClient,
    /** Needed to submit; the jobs API only terminates and passes none. */
    private readonly targets?: BatchTargets,
  ) {}

  async submit(submission: TrainingSubmission): Promise<string> {
    if (!this.targets) throw new Error("BatchTrainingRunner needs job queues and definitions to submit");
    const request = submitJobRequest(submission, this.targets);
    const existing = await this.findByName(request.jobQueue, submission.name);
    if (existing?.jobId) return existing.jobId;
    const { jobId } = await this.batch.send(new SubmitJobCommand(request));
    if (!jobId) throw new Error("SubmitJob returned no job id");
    return jobId;
  }

  async terminate(runId: string, reason: string): Promise<void> {
    await this.batch.send(new TerminateJobCommand({ jobId: runId, reason: reason.slice(0, 256) }));
  }

  /** ListJobs with a JOB_NAME filter searches every status; job names are platform job ids, so unique. */
  private async findByName(jobQueue: string, name: string): Promise<JobSummary | undefined> {
    const { jobSummaryList } = await this.batch.send(
      new ListJobsCommand({ jobQueue, filters: [{ name: "JOB_NAME", values: [name] }] }),
    );
    return jobSummaryList?.find((job) => job.jobName === name && LIVE_OR_DONE.includes(job.status ?? ""));
  }
}

/**
 * The SubmitJob request of a run. One node: the method's queue and job definition, the environment as
 * container overrides (as before multi-node jobs existed). More: a multi-node parallel job on the
 * multi-node queue, with the definition of the planned instance type; `numNodes` overrides the
 * definition's node count (its one node range, `0:`, is open-ended so that it may), and the
 * environment and GPU count go to every node through that same range.
 */
export function submitJobRequest(
  submission: TrainingSubmission,
  targets: BatchTargets,
): SubmitJobCommandInput & { jobQueue: string } {
  const common = {
    jobName: submission.name,
    // Parameters come back in every state-change event (tags do not): the status handler's key.
    parameters: { tenantId: submission.tenantId, jobId: submission.jobId },
    tags: { tenantId: submission.tenantId, jobId: submission.jobId },
    propagateTags: true,
  };
  const environment = Object.entries(submission.environment).map(([name, value]) => ({ name, value }));
  const { nodes, gpusPerNode, instanceType } = submission;
  if (!Number.isInteger(nodes) || nodes < 1) {
    throw new Error(`job ${submission.jobId}: a run needs a whole number of nodes, not ${nodes}`);
  }
  if (nodes === 1) {
    return {
      ...common,
      jobQueue: targets.jobQueues[submission.method],
      jobDefinition: targets.jobDefinitions[submission.method],
      // The plan's GPUs (all of one node of a type in the method's compute environment), so Batch
      // places the job on such a node and the launcher starts one process per GPU it gets.
      containerOverrides:
        gpusPerNode === undefined
          ? { environment }
          : { environment, resourceRequirements: [{ type: "GPU", value: String(gpusPerNode) }] },
    };
  }
  if (!targets.multiNode) {
    throw new Error("no multi-node job queue is configured: multi-node runs are refused");
  }
  if (gpusPerNode === undefined || !Number.isInteger(gpusPerNode) || gpusPerNode < 1) {
    throw new Error(`job ${submission.jobId}: a multi-node run needs its GPUs per node, not ${gpusPerNode}`);
  }
  const jobDefinition = instanceType ? targets.multiNode.jobDefinitions[instanceType] : undefined;
  if (!jobDefinition) {
    const known = Object.keys(targets.multiNode.jobDefinitions).join(", ");
    throw new Error(
      `job ${submission.jobId}: no multi-node job definition for instance type ${instanceType ?? "(none)"}; configured: ${known}`,
    );
  }
  return {
    ...common,
    jobQueue: targets.multiNode.jobQueue,
    jobDefinition,
    nodeOverrides: {
      numNodes: nodes,
      nodePropertyOverrides: [
        {
          targetNodes: "0:",
          containerOverrides: {
            environment,
            resourceRequirements: [{ type: "GPU", value: String(gpusPerNode) }],
          },
        },
      ],
    },
  };
}
