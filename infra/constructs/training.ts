import { fileURLToPath } from "node:url";
import { Annotations, Aws, Duration, RemovalPolicy, Size, Stack } from "aws-cdk-lib";
import * as batch from "aws-cdk-lib/aws-batch";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecr from "aws-cdk-lib/aws-ecr";
import { Platform } from "aws-cdk-lib/aws-ecr-assets";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { TrainingMethod } from "../../lambdas/core/catalog/base-models.ts";
import { type ConfiguredInstanceTypes, configuredInstanceTypes } from "../../lambdas/core/jobs/resources.ts";
import type { DurableQueue } from "./durable-queue.ts";
import { DEFAULT_MULTI_NODE, type MultiNodeCapacity, MultiNodeTraining } from "./multinode.ts";
import { acknowledge, arnToken } from "./nag.ts";
import type { Network } from "./network.ts";
import { deadLetterAlarm } from "./observability.ts";
import { PlatformFunction } from "./platform-function.ts";

/** How one training method (LoRA or full) runs on AWS Batch. */
export interface MethodCapacity {
  /** EC2 instance types of its compute environments. */
  readonly instanceTypes: readonly string[];
  /** GPUs, vCPUs and memory one job asks for: must fit on one of the instance types. */
  readonly gpus: number;
  readonly vcpus: number;
  readonly memoryGiB: number;
  /** Upper bound of vCPUs each compute environment may run (cost ceiling). */
  readonly maxvCpus: number;
  /**
   * Spot first with On-Demand fallback (true), or On-Demand only (false). Spot is a fit where a
   * reclaimed instance only costs the steps since the last checkpoint.
   */
  readonly spot: boolean;
}

/** Defaults: LoRA on one GPU of 24–48 GiB, full-parameter on an 8-GPU node. */
export const DEFAULT_CAPACITY: Readonly<Record<TrainingMethod, MethodCapacity>> = {
  // g5.2xlarge / g6e.2xlarge: 8 vCPUs, 32/64 GiB; 28 GiB leaves the ECS agent and the OS their share.
  lora: {
    instanceTypes: ["g5.2xlarge", "g6e.2xlarge", "g6.2xlarge"],
    gpus: 1,
    vcpus: 7,
    memoryGiB: 28,
    maxvCpus: 64,
    spot: true,
  },
  // p4d.24xlarge: 96 vCPUs, 1152 GiB, 8×A100 40 GiB; p5.48xlarge: 192 vCPUs, 2048 GiB, 8×H100.
  full: {
    instanceTypes: ["p4d.24xlarge", "p5.48xlarge"],
    gpus: 8,
    vcpus: 90,
    memoryGiB: 1000,
    maxvCpus: 384,
    spot: false,
  },
};

export interface TrainingProps {
  readonly network: Network;
  readonly jobsTable: dynamodb.ITable;
  readonly eventsTable: dynamodb.ITable;
  readonly modelsTable: dynamodb.ITable;
  readonly datasetsBucket: s3.IBucket;
  readonly artifactsBucket: s3.IBucket;
  /** The `training` queue the jobs API sends to. */
  readonly queue: DurableQueue;
  readonly alarmTopic: sns.ITopic;
  /**
   * The trainer image in a registry (context `trainerImageUri`); by default the image is built from
   * `batch-images/trainer` and pushed to the bootstrap ECR repository at deploy (synth needs no Docker).
   */
  readonly trainerImageUri?: string;
  readonly capacity?: Partial<Record<TrainingMethod, Partial<MethodCapacity>>>;
  /**
   * Multi-node parallel jobs (the planner's plans of more than one node, either method): EFA instance
   * types and the node ceiling; {@link DEFAULT_MULTI_NODE} by default.
   */
  readonly multiNode?: Partial<MultiNodeCapacity>;
  /** Hours one attempt of a job may run before Batch stops it; 24 by default. */
  readonly timeoutHours?: number;
  /** How many dispatcher invocations may run at once (SQS event source maximum concurrency); 5 by default. */
  readonly dispatcherConcurrency?: number;
  /** GiB of root volume per training instance: image layers, base weights and checkpoints; 500 by default. */
  readonly volumeGiB?: number;
}

const METHODS: readonly TrainingMethod[] = ["lora", "full"];

/** The trainer resumes from its newest checkpoint: a retried attempt loses little work. */
const RETRY_ATTEMPTS = 3;
/**
 * The AWS-recommended pattern: retry when the host went away (Spot reclaim, instance failure: status
 * reason "Host EC2 (instance i-…) terminated."), exit on anything else — a trainer error would fail the
 * same way again.
 */
const RETRY_ON_HOST_LOSS: readonly batch.RetryStrategy[] = [
  batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
  batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom({ onReason: "*" })),
];

/**
 * The training bounded context: GPU compute environments and job queues on AWS Batch (one per method
 * for single-node jobs, one for multi-node parallel jobs), the trainer's job definitions and roles, the
 * dispatcher (training queue → SubmitJob) and the job-status function (EventBridge "Batch Job State
 * Change" → job and model records).
 */
export class Training extends Construct {
  readonly jobQueues: Readonly<Record<TrainingMethod, batch.JobQueue>>;
  readonly jobDefinitions: Readonly<Record<TrainingMethod, batch.EcsJobDefinition>>;
  /** Multi-node parallel jobs: their queue, compute environment and one job definition per instance type. */
  readonly multiNode: MultiNodeTraining;
  /**
   * The instance types of each method's compute and of the multi-node compute: the resource planner's
   * choices (the jobs function reads them as `TRAINING_INSTANCE_TYPES`), so a plan always fits a queue.
   */
  readonly instanceTypes: ConfiguredInstanceTypes;
  readonly jobRole: iam.Role;
  readonly instanceSecurityGroup: ec2.SecurityGroup;
  readonly dispatcher: PlatformFunction;
  readonly jobStatus: PlatformFunction;
  readonly stateChangeRule: events.Rule;

  constructor(scope: Construct, id: string, props: TrainingProps) {
    super(scope, id);
    const { vpc } = props.network;

    this.instanceSecurityGroup = new ec2.SecurityGroup(this, "InstanceSecurityGroup", {
      vpc,
      description:
        "Batch GPU training instances: no inbound; outbound to the VPC endpoints only (no internet route)",
      allowAllOutbound: true,
    });

    // Room for the trainer image (CUDA + torch), a base model's weights and checkpoints under /scratch.
    const launchTemplate = new ec2.LaunchTemplate(this, "InstanceLaunchTemplate", {
      requireImdsv2: true,
      // Containers in bridge mode are one hop further from the instance metadata service.
      httpPutResponseHopLimit: 2,
      blockDevices: [
        {
          deviceName: "/dev/xvda",
          volume: ec2.BlockDeviceVolume.ebs(props.volumeGiB ?? 500, {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
    });

    const image = containerImage(this, "TrainerImage", props.trainerImageUri, "batch-images/trainer");

    this.jobRole = this.createJobRole(props);
    const logGroup = new logs.LogGroup(this, "TrainerLogs", {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const executionRole = new iam.Role(this, "TrainerExecutionRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "Pulls the trainer image and writes its logs",
    });

    const timeout = Duration.hours(props.timeoutHours ?? 24);
    const jobQueues = {} as Record<TrainingMethod, batch.JobQueue>;
    const jobDefinitions = {} as Record<TrainingMethod, batch.EcsJobDefinition>;
    const configured: Record<TrainingMethod, readonly string[]> = { lora: [], full: [] };
    for (const method of METHODS) {
      const capacity: MethodCapacity = { ...DEFAULT_CAPACITY[method], ...props.capacity?.[method] };
      configured[method] = capacity.instanceTypes;
      const name = method === "lora" ? "Lora" : "Full";
      const environments = this.computeEnvironments(name, capacity, launchTemplate, props);
      jobQueues[method] = new batch.JobQueue(this, `${name}JobQueue`, {
        // Spot first; On-Demand takes the jobs Spot cannot place (order 2). A method without Spot has
        // its On-Demand environment alone.
        computeEnvironments: environments.map((computeEnvironment, i) => ({
          computeEnvironment,
          order: i + 1,
        })),
        priority: 1,
      });
      jobDefinitions[method] = new batch.EcsJobDefinition(this, `${name}JobDefinition`, {
        retryAttempts: RETRY_ATTEMPTS,
        retryStrategies: [...RETRY_ON_HOST_LOSS],
        timeout,
        propagateTags: true,
        container: new batch.EcsEc2ContainerDefinition(this, `${name}Container`, {
          image,
          gpu: capacity.gpus,
          cpu: capacity.vcpus,
          memory: Size.gibibytes(capacity.memoryGiB),
          jobRole: this.jobRole,
          executionRole,
          // torch DataLoader workers exchange batches through /dev/shm; Docker's default 64 MiB is too
          // small. A quarter of the job's memory, at most 64 GiB (tmpfs: only what is used counts).
          linuxParameters: new batch.LinuxParameters(this, `${name}LinuxParameters`, {
            sharedMemorySize: Size.gibibytes(Math.min(64, Math.max(1, Math.floor(capacity.memoryGiB / 4)))),
          }),
          logging: ecs.LogDriver.awsLogs({ logGroup, streamPrefix: method }),
          environment: {
            // The dispatcher passes every job's own values (and these again) as container overrides.
            JOBS_TABLE: props.jobsTable.tableName,
            EVENTS_TABLE: props.eventsTable.tableName,
            METHOD: method,
            FT_WORK_DIR: "/scratch",
          },
        }),
      });
    }
    this.jobQueues = jobQueues;
    this.jobDefinitions = jobDefinitions;
    const multiNodeCapacity = { ...DEFAULT_MULTI_NODE, ...props.multiNode };
    this.instanceTypes = { ...configured, multiNode: multiNodeCapacity.instanceTypes };
    // A type the planner does not know would fail every create at the jobs function's cold start: fail
    // the synth instead.
    for (const method of METHODS) configuredInstanceTypes(this.instanceTypes, method);
    this.multiNode = new MultiNodeTraining(this, "MultiNode", {
      network: props.network,
      capacity: multiNodeCapacity,
      image,
      jobRole: this.jobRole,
      executionRole,
      logGroup,
      timeout,
      retryAttempts: RETRY_ATTEMPTS,
      retryStrategies: RETRY_ON_HOST_LOSS,
      // METHOD comes from the dispatcher: one multi-node definition serves both methods.
      environment: {
        JOBS_TABLE: props.jobsTable.tableName,
        EVENTS_TABLE: props.eventsTable.tableName,
        FT_WORK_DIR: "/scratch",
      },
      volumeGiB: props.volumeGiB ?? 500,
    });
    acknowledge(
      executionRole,
      "AwsSolutions-IAM5[Resource::*]",
      "ecr:GetAuthorizationToken supports no resource-level permissions; image pulls are scoped to the repository.",
    );

    this.dispatcher = this.createDispatcher(props);
    this.jobStatus = this.createJobStatus(props);
    this.stateChangeRule = this.createStateChangeRule(props);
  }

  /** Spot (when allowed) then On-Demand managed EC2 compute environments on the ECS GPU AMI, scaling from 0. */
  private computeEnvironments(
    name: string,
    capacity: MethodCapacity,
    launchTemplate: ec2.LaunchTemplate,
    props: TrainingProps,
  ): batch.ManagedEc2EcsComputeEnvironment[] {
    const kinds = capacity.spot ? (["Spot", "OnDemand"] as const) : (["OnDemand"] as const);
    return kinds.map((kind) => {
      const environment = new batch.ManagedEc2EcsComputeEnvironment(this, `${name}${kind}`, {
        vpc: props.network.vpc,
        vpcSubnets: props.network.subnets,
        securityGroups: [this.instanceSecurityGroup],
        spot: kind === "Spot",
        allocationStrategy:
          kind === "Spot"
            ? batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
            : batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
        instanceTypes: capacity.instanceTypes.map((type) => new ec2.InstanceType(type)),
        useOptimalInstanceClasses: false,
        images: [{ imageType: batch.EcsMachineImageType.ECS_AL2023_NVIDIA }],
        minvCpus: 0,
        maxvCpus: capacity.maxvCpus,
        launchTemplate,
        updateToLatestImageVersion: true,
      });
      acknowledge(
        environment,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]",
        "The instance role Batch documents for ECS container instances (agent registration, ECR pulls); AWS maintains its scope. Jobs get their own job role.",
      );
      return environment;
    });
  }

  /** What the trainer container may do: read datasets and base weights, write its job's artifacts and events. */
  private createJobRole(props: TrainingProps): iam.Role {
    const role = new iam.Role(this, "TrainerJobRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "The trainer container: datasets in, checkpoints and results out, progress events",
    });
    const datasets = props.datasetsBucket;
    const artifacts = props.artifactsBucket;
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject"],
        resources: [datasets.arnForObjects("tenants/*")],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject"],
        resources: [artifacts.arnForObjects("base-models/*")],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject", "s3:PutObject"],
        resources: [artifacts.arnForObjects("tenants/*")],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:ListBucket"],
        resources: [artifacts.bucketArn],
        conditions: { StringLike: { "s3:prefix": ["base-models/*", "tenants/*"] } },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({ actions: ["dynamodb:PutItem"], resources: [props.eventsTable.tableArn] }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({ actions: ["dynamodb:UpdateItem"], resources: [props.jobsTable.tableArn] }),
    );
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${arnToken(datasets)}/tenants/*]`,
      "Reads training files under tenants/*; the job's own file is named by the dispatcher.",
    );
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${arnToken(artifacts)}/base-models/*]`,
      "Reads base model weights, a shared read-only catalog under base-models/*.",
    );
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${arnToken(artifacts)}/tenants/*]`,
      "Writes checkpoints and results under tenants/*; the job's own prefix is passed as OUTPUT_URI.",
    );
    return role;
  }

  private createDispatcher(props: TrainingProps): PlatformFunction {
    const stack = Stack.of(this);
    const fn = new PlatformFunction(this, "Dispatcher", {
      entry: "lambdas/dispatcher/index.ts",
      description: "Training queue → AWS Batch SubmitJob",
      // The training queue's visibility timeout (360 s) is six times this.
      timeout: Duration.seconds(60),
      memorySize: 512,
      environment: {
        JOBS_TABLE: props.jobsTable.tableName,
        EVENTS_TABLE: props.eventsTable.tableName,
        MODELS_TABLE: props.modelsTable.tableName,
        DATASETS_BUCKET: props.datasetsBucket.bucketName,
        ARTIFACTS_BUCKET: props.artifactsBucket.bucketName,
        BATCH_JOB_QUEUES: stack.toJsonString({
          lora: this.jobQueues.lora.jobQueueArn,
          full: this.jobQueues.full.jobQueueArn,
        }),
        BATCH_JOB_DEFINITIONS: stack.toJsonString({
          lora: this.jobDefinitions.lora.jobDefinitionArn,
          full: this.jobDefinitions.full.jobDefinitionArn,
        }),
        BATCH_MULTINODE_JOB_QUEUE: this.multiNode.jobQueue.jobQueueArn,
        // Instance type → its multi-node job definition.
        BATCH_MULTINODE_JOB_DEFINITIONS: stack.toJsonString(
          Object.fromEntries(
            Object.entries(this.multiNode.jobDefinitions).map(([type, d]) => [type, d.jobDefinitionArn]),
          ),
        ),
      },
    });
    const jobArns = batchJobArns(this);
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["batch:SubmitJob"],
        resources: [
          ...METHODS.map((m) => this.jobQueues[m].jobQueueArn),
          ...METHODS.map((m) => this.jobDefinitions[m].jobDefinitionArn),
          this.multiNode.jobQueue.jobQueueArn,
          ...Object.values(this.multiNode.jobDefinitions).map((d) => d.jobDefinitionArn),
        ],
      }),
    );
    // SubmitJob with tags needs TagResource on the new job; TerminateJob when a cancel raced the submit.
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["batch:TagResource", "batch:TerminateJob"], resources: [jobArns] }),
    );
    // Finds an earlier submission of the same job (idempotent resubmission); ListJobs takes no resource.
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ["batch:ListJobs"], resources: ["*"] }));
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        resources: [props.jobsTable.tableArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["dynamodb:PutItem"], resources: [props.eventsTable.tableArn] }),
    );
    // A job that cannot be submitted fails its model record in the same transaction.
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["dynamodb:UpdateItem"], resources: [props.modelsTable.tableArn] }),
    );
    acknowledge(
      fn.role!,
      batchJobArnsFinding(this),
      "Batch job ids are only known after SubmitJob: tags the new job, terminates this account's jobs in this region.",
    );
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

  private createJobStatus(props: TrainingProps): PlatformFunction {
    const fn = new PlatformFunction(this, "JobStatus", {
      entry: "lambdas/job-status/index.ts",
      description: "Batch Job State Change → job status, model status",
      timeout: Duration.seconds(30),
      memorySize: 512,
      environment: {
        JOBS_TABLE: props.jobsTable.tableName,
        EVENTS_TABLE: props.eventsTable.tableName,
        MODELS_TABLE: props.modelsTable.tableName,
        ARTIFACTS_BUCKET: props.artifactsBucket.bucketName,
      },
    });
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        resources: [props.jobsTable.tableArn],
      }),
    );
    // Records the change; reads the trainer's last error event to explain a failure.
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:PutItem", "dynamodb:Query"],
        resources: [props.eventsTable.tableArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["dynamodb:UpdateItem"], resources: [props.modelsTable.tableArn] }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject"],
        resources: [props.artifactsBucket.arnForObjects("tenants/*")],
      }),
    );
    acknowledge(
      fn.role!,
      `AwsSolutions-IAM5[Resource::${arnToken(props.artifactsBucket)}/tenants/*]`,
      "Reads result.json of finished jobs under tenants/*; which job's comes from the event's parameters.",
    );
    return fn;
  }

  /** EventBridge: this platform's Batch job state changes → job-status, retried, then to a DLQ (alarmed). */
  private createStateChangeRule(props: TrainingProps): events.Rule {
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
        detail: {
          jobQueue: [
            ...METHODS.map((m) => this.jobQueues[m].jobQueueArn),
            this.multiNode.jobQueue.jobQueueArn,
          ],
        },
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

/**
 * `arn:…:batch:{region}:{account}:job/*`: every Batch job of this account and region. Written with the
 * pseudo parameters whatever the stack's env, so that the cdk-nag finding below never changes.
 */
export function batchJobArns(_scope: Construct): string {
  return `arn:${Aws.PARTITION}:batch:${Aws.REGION}:${Aws.ACCOUNT_ID}:job/*`;
}

/** The cdk-nag IAM5 finding that {@link batchJobArns} raises. */
export function batchJobArnsFinding(_scope: Construct): string {
  return "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job/*]";
}

const ECR_IMAGE = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)(?::([^@]+)|@(.+))?$/;

/**
 * A workload's container image. With a URI: an ECR image is pulled with permissions granted to the
 * execution role (any other registry is unreachable without an internet route, hence the warning).
 * Without: the image is built from `directory` by `cdk deploy` (Docker needed there, not at synth) for
 * x86_64, the GPU instances' architecture, whatever machine deploys.
 */
export function containerImage(
  scope: Construct,
  id: string,
  uri: string | undefined,
  directory: string,
): ecs.ContainerImage {
  if (!uri) return ecs.ContainerImage.fromAsset(repoPath(directory), { platform: Platform.LINUX_AMD64 });
  const ecrImage = ECR_IMAGE.exec(uri);
  if (!ecrImage) {
    Annotations.of(scope).addWarningV2(
      "ft:notEcrImage",
      `${uri} is not an ECR image: the private subnets have no internet route; use ECR (or an ECR pull-through cache).`,
    );
    return ecs.ContainerImage.fromRegistry(uri);
  }
  const [, account, region, name, tag, digest] = ecrImage;
  const partition = uri.includes(".amazonaws.com.cn/") ? "aws-cn" : "aws";
  const repository = ecr.Repository.fromRepositoryAttributes(scope, id, {
    repositoryArn: `arn:${partition}:ecr:${region}:${account}:repository/${name}`,
    repositoryName: name!,
  });
  return ecs.ContainerImage.fromEcrRepository(repository, digest ?? tag ?? "latest");
}

/** A path inside the repository, whatever the working directory. */
export function repoPath(relative: string): string {
  return fileURLToPath(new URL(`../../${relative}`, import.meta.url));
}
