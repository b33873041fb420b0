import { Aws, Duration, RemovalPolicy, Size } from "aws-cdk-lib";
import * as batch from "aws-cdk-lib/aws-batch";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import type { TrainingMethod } from "../../lambdas/core/catalog/base-models.ts";
import { CONTRACT } from "../../lambdas/core/contract.ts";
import { type ConfiguredInstanceTypes, configuredInstanceTypes } from "../../lambdas/core/jobs/resources.ts";
import { tableDefinition } from "../resources/definitions.ts";
import { type BucketRef, grant, resourceEnv, roleOf, type TableRef } from "./bind.ts";
import type { PlatformCatalog } from "./catalog.ts";
import { containerImage } from "./container-image.ts";
import { DEFAULT_MULTI_NODE, type MultiNodeCapacity, MultiNodeTraining } from "./multinode.ts";
import { acknowledge } from "./nag.ts";
import type { Network } from "./network.ts";
import {
  principalTag,
  SESSION_TAGS,
  TENANT_ROLE_ENV,
  tenantScoped,
  tenantScopedRole,
} from "./tenant-scope.ts";

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

/** What a training job reads and writes: the trainer's (compute) and the dispatcher's (pipeline). */
export interface TrainingData {
  /** The trainer updates its job and appends events. */
  readonly jobsTable: TableRef<"jobs">;
  readonly eventsTable: TableRef<"job-events">;
  /** Training files in, checkpoints and results out. */
  readonly datasetsBucket: BucketRef<"datasets">;
  readonly artifactsBucket: BucketRef<"artifacts">;
}

export interface TrainingComputeProps extends TrainingData {
  readonly network: Network;
  /** The trainer reads each base model's weights where the catalog puts them. */
  readonly catalog: PlatformCatalog;
  /**
   * The trainer image in a registry (context `trainerImageUri`); by default the image is built from
   * `batch-images/trainer/Dockerfile` and pushed to the bootstrap ECR repository at deploy (synth needs
   * no Docker).
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
  /** GiB of root volume per training instance: image layers, base weights and checkpoints; 500 by default. */
  readonly volumeGiB?: number;
}

export const METHODS: readonly TrainingMethod[] = ["lora", "full"];

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
 * The compute half of the training bounded context: GPU compute environments and job queues on AWS
 * Batch (one per method for single-node jobs, one for multi-node parallel jobs), the trainer's job
 * definitions and its roles. The training pipeline (training-pipeline.ts) submits to it and follows
 * its jobs.
 */
export class TrainingCompute extends Construct {
  readonly jobQueues: Readonly<Record<TrainingMethod, batch.JobQueue>>;
  readonly jobDefinitions: Readonly<Record<TrainingMethod, batch.EcsJobDefinition>>;
  /** Multi-node parallel jobs: their queue, compute environment and one job definition per instance type. */
  readonly multiNode: MultiNodeTraining;
  /**
   * The instance types of each method's compute and of the multi-node compute: the resource planner's
   * choices (the jobs function reads them as `CONFIG_ENV.trainingInstanceTypes`), so a plan always fits
   * a queue.
   */
  readonly instanceTypes: ConfiguredInstanceTypes;
  /** The container's role: it may only assume {@link tenantRole} for its job's tenant. */
  readonly jobRole: iam.Role;
  /**
   * What one job's session may do, scoped by its session tags `tenantId` and `jobId` (tenant-scope.ts);
   * named to the trainer by TENANT_ROLE_ARN in every job definition's environment.
   */
  readonly tenantRole: iam.Role;
  readonly instanceSecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: TrainingComputeProps) {
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

    const image = containerImage(
      this,
      "TrainerImage",
      props.trainerImageUri,
      "batch-images/trainer/Dockerfile",
    );

    this.jobRole = new iam.Role(this, "TrainerJobRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "The trainer container: assumes its job's tenant-scoped role, nothing else",
    });
    this.tenantRole = this.createTenantRole(props);
    const logGroup = new logs.LogGroup(this, "TrainerLogs", {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const executionRole = new iam.Role(this, "TrainerExecutionRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "Pulls the trainer image and writes its logs",
    });
    // The dispatcher passes every job's own values (and these again) as container overrides.
    // And the tenant-scoped role, which is the same for every job: only the session tags differ.
    const shared = {
      ...resourceEnv(props.jobsTable, props.eventsTable),
      [TENANT_ROLE_ENV]: this.tenantRole.roleArn,
    };

    const timeout = Duration.hours(props.timeoutHours ?? 24);
    const jobQueues = {} as Record<TrainingMethod, batch.JobQueue>;
    const jobDefinitions = {} as Record<TrainingMethod, batch.EcsJobDefinition>;
    const configured: Record<TrainingMethod, readonly string[]> = { lora: [], full: [] };
    for (const method of METHODS) {
      const capacity: MethodCapacity = { ...DEFAULT_CAPACITY[method], ...props.capacity?.[method] };
      configured[method] = capacity.instanceTypes;
      const name = method === "lora" ? "Lora" : "Full";
      const environments = this.computeEnvironments(name, capacity, launchTemplate, props.network);
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
          environment: { ...shared, METHOD: method, FT_WORK_DIR: "/scratch" },
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
      environment: { ...shared, FT_WORK_DIR: "/scratch" },
      volumeGiB: props.volumeGiB ?? 500,
    });
    acknowledge(
      executionRole,
      "AwsSolutions-IAM5[Resource::*]",
      "ecr:GetAuthorizationToken supports no resource-level permissions; image pulls are scoped to the repository.",
    );
  }

  /** Every queue's ARN, single-node and multi-node: where the platform's Batch jobs run. */
  get jobQueueArns(): string[] {
    return [...METHODS.map((m) => this.jobQueues[m].jobQueueArn), this.multiNode.jobQueue.jobQueueArn];
  }

  /** Spot (when allowed) then On-Demand managed EC2 compute environments on the ECS GPU AMI, scaling from 0. */
  private computeEnvironments(
    name: string,
    capacity: MethodCapacity,
    launchTemplate: ec2.LaunchTemplate,
    network: Network,
  ): batch.ManagedEc2EcsComputeEnvironment[] {
    const kinds = capacity.spot ? (["Spot", "OnDemand"] as const) : (["OnDemand"] as const);
    return kinds.map((kind) => {
      const environment = new batch.ManagedEc2EcsComputeEnvironment(this, `${name}${kind}`, {
        vpc: network.vpc,
        vpcSubnets: network.subnets,
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

  /**
   * What one training job's session may do: read its tenant's training files and the catalog's base
   * weights, read its tenant's job roots (its own checkpoints to resume from, the fine-tuned model
   * INIT_MODEL_URI starts from), write its own job root, update its own tenant's job items and append its
   * own job's events. Every tenant-owned resource is named by the session tags, never by `tenants/*`.
   */
  private createTenantRole(props: TrainingComputeProps): iam.Role {
    const { tenant, job } = SESSION_TAGS;
    const role = tenantScopedRole(this, "TenantScopedTrainerRole", {
      assumedBy: this.jobRole,
      tags: [tenant, job],
      description:
        "One training job's session (tags tenantId, jobId): its tenant's data, its own job's output",
    });
    const s3 = CONTRACT.s3;
    const weights = props.catalog.weightsKeys();
    const tenantJobs = `${tenantScoped(s3.jobRoot, [tenant])}*`;
    const ownJob = `${tenantScoped(s3.jobRoot, [tenant, job])}*`;
    grant(role, props.datasetsBucket, {
      objects: [
        {
          keys: [tenantScoped(s3.datasetObject, [tenant])],
          actions: ["GetObject"],
          why: "The session's own tenant's dataset objects only (aws:PrincipalTag/tenantId in the key); the job names which.",
        },
      ],
    });
    grant(role, props.artifactsBucket, {
      objects: [
        {
          keys: weights,
          actions: ["GetObject"],
          why: "Reads base model weights: the catalog's shared, read-only prefixes.",
        },
        {
          keys: [tenantJobs],
          actions: ["GetObject"],
          why: "The session's own tenant's job roots only (aws:PrincipalTag/tenantId in the key): its checkpoints and the model it starts from.",
        },
        {
          keys: [ownJob],
          actions: ["PutObject"],
          why: "The session's own job root only (aws:PrincipalTag/tenantId and jobId in the key): checkpoints and results.",
        },
      ],
      list: [...weights, tenantJobs],
    });
    // Items whose partition key leads with the session's tenant (definitions.ts): DynamoDB's
    // fine-grained access control, `dynamodb:LeadingKeys` with the tag as a policy variable.
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:UpdateItem"],
        resources: [props.jobsTable.table.tableArn],
        conditions: { "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": [principalTag(tenant)] } },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:PutItem"],
        resources: [props.eventsTable.table.tableArn],
        conditions: {
          "ForAllValues:StringEquals": {
            "dynamodb:LeadingKeys": [tenantScoped(CONTRACT.events.partitionKey, [tenant, job])],
          },
        },
      }),
    );
    // The conditions above hold only while the keys are what they are now.
    if (tableDefinition("jobs").partitionKey.name !== "tenantId") {
      throw new Error("The jobs table's partition key must be the tenant id (its IAM condition says so).");
    }
    if (tableDefinition("job-events").partitionKey.name !== "jobKey") {
      throw new Error("The events table's partition key must be the contract's job key.");
    }
    return role;
  }
}

/**
 * Lets `grantee` call Batch `actions` on this account's jobs in this region (`arn:…:batch:{region}:
 * {account}:job/*`, written with the pseudo parameters whatever the stack's env, so that the cdk-nag
 * finding never changes): a job's id is known only once it is submitted. `why` acknowledges the finding.
 */
export function grantOnBatchJobs(grantee: iam.IGrantable, actions: string[], why: string): void {
  iam.Grant.addToPrincipal({
    grantee,
    actions: actions.map((action) => `batch:${action}`),
    resourceArns: [`arn:${Aws.PARTITION}:batch:${Aws.REGION}:${Aws.ACCOUNT_ID}:job/*`],
  });
  acknowledge(
    roleOf(grantee),
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job/*]",
    why,
  );
}
