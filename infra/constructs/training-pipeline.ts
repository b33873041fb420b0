import { Duration, Stack } from "aws-cdk-lib";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { CONFIG_ENV, SERVICES } from "../resources/definitions.ts";
import { KEY_PATTERNS } from "../resources/key-patterns.ts";
import { bind, NAME_ONLY, type TableRef } from "./bind.ts";
import type { PlatformCatalog } from "./catalog.ts";
import type { DurableQueue } from "./durable-queue.ts";
import { acknowledge } from "./nag.ts";
import { deadLetterAlarm } from "./observability.ts";
import { PlatformFunction } from "./platform-function.ts";
import { grantOnBatchJobs, METHODS, type TrainingCompute, type TrainingData } from "./training-compute.ts";

export interface TrainingPipelineProps extends TrainingData {
  /** The Batch queues and job definitions jobs are submitted to. */
  readonly compute: TrainingCompute;
  /** A job's model record follows its status. */
  readonly modelsTable: TableRef<"models">;
  /** A succeeded job's results file is recorded in it (job-status, a conditional put). */
  readonly filesTable: TableRef<"files">;
  /** The `training` queue the jobs API sends to. */
  readonly queue: DurableQueue;
  readonly alarmTopic: sns.ITopic;
  /** The dispatcher resolves each job's base model (weights, family, planner facts) in it. */
  readonly catalog: PlatformCatalog;
  /** How many dispatcher invocations may run at once (SQS event source maximum concurrency); 5 by default. */
  readonly dispatcherConcurrency?: number;
}

/**
 * The pipeline half of the training bounded context: the dispatcher (training queue → SubmitJob on
 * {@link TrainingCompute}) and the job-status function (EventBridge "Batch Job State Change" → job and
 * model records).
 */
export class TrainingPipeline extends Construct {
  readonly dispatcher: PlatformFunction;
  readonly jobStatus: PlatformFunction;
  readonly stateChangeRule: events.Rule;

  constructor(scope: Construct, id: string, props: TrainingPipelineProps) {
    super(scope, id);
    this.dispatcher = this.createDispatcher(props);
    this.jobStatus = this.createJobStatus(props);
    this.stateChangeRule = this.createStateChangeRule(props);
  }

  private createDispatcher(props: TrainingPipelineProps): PlatformFunction {
    const stack = Stack.of(this);
    const { compute } = props;
    const multiNodeDefinitions = Object.values(compute.multiNode.jobDefinitions);
    const fn = new PlatformFunction(this, "Dispatcher", {
      entry: "lambdas/dispatcher/index.ts",
      service: SERVICES.dispatcher,
      description: "Training queue → AWS Batch SubmitJob",
      // The training queue's visibility timeout (360 s) is six times this.
      timeout: Duration.seconds(60),
      memorySize: 512,
      environment: {
        [CONFIG_ENV.batchJobQueues]: stack.toJsonString({
          lora: compute.jobQueues.lora.jobQueueArn,
          full: compute.jobQueues.full.jobQueueArn,
        }),
        [CONFIG_ENV.batchJobDefinitions]: stack.toJsonString({
          lora: compute.jobDefinitions.lora.jobDefinitionArn,
          full: compute.jobDefinitions.full.jobDefinitionArn,
        }),
        [CONFIG_ENV.batchMultinodeJobQueue]: compute.multiNode.jobQueue.jobQueueArn,
        // Instance type → its multi-node job definition.
        [CONFIG_ENV.batchMultinodeJobDefinitions]: stack.toJsonString(
          Object.fromEntries(
            Object.entries(compute.multiNode.jobDefinitions).map(([type, d]) => [type, d.jobDefinitionArn]),
          ),
        ),
      },
    });
    bind(fn, props.jobsTable, { actions: ["GetItem", "UpdateItem"] });
    bind(fn, props.eventsTable, { actions: ["PutItem"] });
    // A job that cannot be submitted fails its model record in the same transaction.
    bind(fn, props.modelsTable, { actions: ["UpdateItem"] });
    // Only named in the trainer's URIs: the trainer's own role reads and writes them.
    bind(fn, props.datasetsBucket, NAME_ONLY);
    bind(fn, props.artifactsBucket, NAME_ONLY);
    props.catalog.bind(fn);

    for (const method of METHODS) {
      compute.jobDefinitions[method].grantSubmitJob(fn, compute.jobQueues[method]);
    }
    // Multi-node job definitions have no grantSubmitJob.
    iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ["batch:SubmitJob"],
      resourceArns: [
        compute.multiNode.jobQueue.jobQueueArn,
        ...multiNodeDefinitions.map((d) => d.jobDefinitionArn),
      ],
    });
    // SubmitJob with tags needs TagResource on the new job; TerminateJob when a cancel raced the submit.
    grantOnBatchJobs(
      fn,
      ["TagResource", "TerminateJob"],
      "Batch job ids are only known after SubmitJob: tags the new job, terminates this account's jobs in this region.",
    );
    // Finds an earlier submission of the same job (idempotent resubmission); ListJobs takes no resource.
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ["batch:ListJobs"], resources: ["*"] }));
    acknowledge(
      fn.role!,
      "AwsSolutions-IAM5[Action::batch:ListJobs]",
      "batch:ListJobs supports no resource-level permissions.",
    );
    fn.addEventSource(
      new SqsEventSource(props.queue.queue, {
        batchSize: 5,
        reportBatchItemFailures: true,
        // Bounds the SubmitJob rate and the DynamoDB writes however deep the queue gets.
        maxConcurrency: props.dispatcherConcurrency ?? 5,
      }),
    );
    acknowledge(
      fn,
      "Serverless-LambdaEventSourceMappingDestination",
      "Failed messages go to the training queue's own DLQ (redrive policy, alarmed); SQS mappings take no on-failure destination.",
    );
    return fn;
  }

  private createJobStatus(props: TrainingPipelineProps): PlatformFunction {
    const fn = new PlatformFunction(this, "JobStatus", {
      entry: "lambdas/job-status/index.ts",
      service: SERVICES.jobStatus,
      description: "Batch Job State Change → job status, model status",
      timeout: Duration.seconds(30),
      memorySize: 512,
    });
    bind(fn, props.jobsTable, { actions: ["GetItem", "UpdateItem"] });
    // Records the change; reads the trainer's last error event to explain a failure.
    bind(fn, props.eventsTable, { actions: ["PutItem", "Query"] });
    bind(fn, props.modelsTable, { actions: ["UpdateItem"] });
    bind(fn, props.artifactsBucket, {
      objects: [
        {
          // The trainer writes result.json last; results.csv is the copy's source (apply.ts).
          keys: [KEY_PATTERNS.results, KEY_PATTERNS.resultsCsv],
          actions: ["GetObject"],
          why: "Reads result.json and results.csv of finished jobs; which job's comes from the event's parameters.",
        },
      ],
    });
    // A succeeded job's results.csv becomes a tenant file: the object (a copy) and its record.
    bind(fn, props.datasetsBucket, {
      objects: [
        {
          keys: [KEY_PATTERNS.resultsFiles],
          actions: ["PutObject"],
          why: "Writes results files only (never a dataset); the tenant and file id come from the job record.",
        },
      ],
    });
    bind(fn, props.filesTable, { actions: ["PutItem"] });
    return fn;
  }

  /** EventBridge: this platform's Batch job state changes → job-status, retried, then to a DLQ (alarmed). */
  private createStateChangeRule(props: TrainingPipelineProps): events.Rule {
    const dlq = new sqs.Queue(this, "JobStatusDlq", {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    acknowledge(
      dlq,
      "AwsSolutions-SQS3",
      "This is the dead-letter queue of the job-status rule target; an operator inspects and replays it.",
    );
    acknowledge(
      dlq,
      "Serverless-SQSRedrivePolicy",
      "This is the dead-letter queue itself; its messages are inspected and replayed by an operator.",
    );
    deadLetterAlarm(
      this,
      "JobStatusDlqAlarm",
      dlq,
      "Batch state changes the job-status function could not apply: a job's status is stale",
      props.alarmTopic,
    );

    const rule = new events.Rule(this, "BatchStateChangeRule", {
      description: "AWS Batch job state changes of the platform's training job queues",
      eventPattern: {
        source: ["aws.batch"],
        detailType: ["Batch Job State Change"],
        detail: { jobQueue: props.compute.jobQueueArns },
      },
    });
    rule.addTarget(
      new targets.LambdaFunction(this.jobStatus, {
        deadLetterQueue: dlq,
        retryAttempts: 8,
        maxEventAge: Duration.hours(6),
      }),
    );
    return rule;
  }
}
