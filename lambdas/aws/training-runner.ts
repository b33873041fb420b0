import {
  type BatchClient,
  type JobSummary,
  ListJobsCommand,
  SubmitJobCommand,
  TerminateJobCommand,
} from "@aws-sdk/client-batch";
import type { TrainingMethod } from "../core/catalog/base-models.ts";
import type { TrainingSubmission } from "../core/jobs/dispatch.ts";

/**
 * Where training runs: AWS Batch in the cloud ({@link BatchTrainingRunner}), a child process on the
 * local platform (local/platform/local-batch.ts). Both report state changes the same way: EventBridge
 * "Batch Job State Change" events to the job-status handler.
 */
export interface TrainingRunner {
  /**
   * Submits a run and returns its id. Idempotent by `submission.name`: when a run of that name already
   * exists (a dispatcher that crashed after submitting), its id is returned and nothing is submitted.
   */
  submit(submission: TrainingSubmission): Promise<string>;
  /** Stops a run; a run that already ended is not an error. */
  terminate(runId: string, reason: string): Promise<void>;
}

export interface BatchTargets {
  readonly jobQueues: Readonly<Record<TrainingMethod, string>>;
  readonly jobDefinitions: Readonly<Record<TrainingMethod, string>>;
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
    const jobQueue = this.targets.jobQueues[submission.method];
    const existing = await this.findByName(jobQueue, submission.name);
    if (existing?.jobId) return existing.jobId;
    const { jobId } = await this.batch.send(
      new SubmitJobCommand({
        jobName: submission.name,
        jobQueue,
        jobDefinition: this.targets.jobDefinitions[submission.method],
        // Parameters come back in every state-change event (tags do not): the status handler's key.
        parameters: { tenantId: submission.tenantId, jobId: submission.jobId },
        tags: { tenantId: submission.tenantId, jobId: submission.jobId },
        propagateTags: true,
        containerOverrides: {
          environment: Object.entries(submission.environment).map(([name, value]) => ({ name, value })),
        },
      }),
    );
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
