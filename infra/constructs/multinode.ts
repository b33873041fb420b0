import { Duration, Size } from "aws-cdk-lib";
import * as batch from "aws-cdk-lib/aws-batch";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import type * as iam from "aws-cdk-lib/aws-iam";
import type * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { acknowledge } from "./nag.ts";
import type { Network } from "./network.ts";

/** One EFA-capable EC2 instance type that multi-node training may run on. */
export interface MultiNodeInstanceType {
  /** GPUs of one node; the container asks for all of them (the dispatcher may ask for fewer). */
  readonly gpus: number;
  /** vCPUs of one node: what the compute environment's `maxvCpus` counts. */
  readonly nodeVcpus: number;
  /** vCPUs and memory the container asks for: what the ECS agent registers, less headroom. */
  readonly vcpus: number;
  readonly memoryGiB: number;
  /**
   * EFA interfaces (one per network card) the instance launches with, and EFA devices the container
   * maps: `/dev/infiniband/uverbs0` … `uverbs{n-1}`. Exactly the instance's count: Docker refuses to
   * start a container whose mapped host device does not exist, and fewer leave bandwidth unused.
   */
  readonly efaInterfaces: number;
}

/**
 * The EFA-capable 8-GPU types (EC2 instance type specifications: network cards = EFA interfaces).
 * p4d/p4de: 96 vCPUs, 1152 GiB, 4 EFA (400 Gbps); p5/p5e: 192 vCPUs, 2048 GiB, 32 EFA (3200 Gbps);
 * p5en: 16 EFA (3200 Gbps). The container leaves 6–8 vCPUs and about 7–13 % of memory to the OS, the
 * ECS agent and the page cache of the weights it reads.
 */
export const EFA_INSTANCE_TYPES: Readonly<Record<string, MultiNodeInstanceType>> = Object.freeze({
  "p4d.24xlarge": { gpus: 8, nodeVcpus: 96, vcpus: 90, memoryGiB: 1000, efaInterfaces: 4 },
  "p4de.24xlarge": { gpus: 8, nodeVcpus: 96, vcpus: 90, memoryGiB: 1000, efaInterfaces: 4 },
  "p5.48xlarge": { gpus: 8, nodeVcpus: 192, vcpus: 184, memoryGiB: 1900, efaInterfaces: 32 },
  "p5e.48xlarge": { gpus: 8, nodeVcpus: 192, vcpus: 184, memoryGiB: 1900, efaInterfaces: 32 },
  "p5en.48xlarge": { gpus: 8, nodeVcpus: 192, vcpus: 184, memoryGiB: 1900, efaInterfaces: 16 },
});

/** How multi-node parallel jobs run. */
export interface MultiNodeCapacity {
  /**
   * Instance types of the compute environment, each with its own job definition (the dispatcher picks
   * the planner's type). Names of {@link EFA_INSTANCE_TYPES} or of `instanceTypeSpecs`; p4d.24xlarge,
   * p4de.24xlarge and p5.48xlarge by default. The resource planner's multi-node types should be among them:
   * the dispatcher refuses a run of a type without a definition.
   */
  readonly instanceTypes: readonly string[];
  /**
   * Nodes all multi-node jobs together may hold at once: the compute environment's `maxvCpus` is this
   * many of the largest configured node. 16 by default, the planner's largest job.
   */
  readonly maxNodes: number;
  /** Instance types beyond {@link EFA_INSTANCE_TYPES}, or other sizes for those. */
  readonly instanceTypeSpecs?: Readonly<Record<string, MultiNodeInstanceType>>;
}

export const DEFAULT_MULTI_NODE: MultiNodeCapacity = {
  instanceTypes: ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge"],
  maxNodes: 16,
};

/**
 * NCCL and libfabric defaults for every node; the trainer image needs libfabric and the aws-ofi-nccl
 * plugin for NCCL to use them (without the plugin NCCL ignores these and talks TCP).
 */
export const EFA_ENVIRONMENT: Readonly<Record<string, string>> = Object.freeze({
  // libfabric's EFA provider only: never a silent fall back to its TCP provider.
  FI_PROVIDER: "efa",
  // GPUDirect RDMA: EFA reads and writes GPU memory directly (p4d and later).
  FI_EFA_USE_DEVICE_RDMA: "1",
  // DataLoader workers fork; registered memory must survive that.
  FI_EFA_FORK_SAFE: "1",
  // NCCL's own TCP bootstrap on the task's ENI: not loopback, Docker's bridge, or the awsvpc task's
  // ecs-eth0 (a link-local interface for the credentials endpoint, unreachable from other nodes).
  NCCL_SOCKET_IFNAME: "^lo,docker,ecs",
  NCCL_DEBUG: "WARN",
});

export interface MultiNodeTrainingProps {
  readonly network: Network;
  readonly capacity: MultiNodeCapacity;
  readonly image: ecs.ContainerImage;
  readonly jobRole: iam.IRole;
  readonly executionRole: iam.IRole;
  readonly logGroup: logs.ILogGroup;
  /** Every attempt's time limit: for a multi-node job it applies to the whole job, not to each node. */
  readonly timeout: Duration;
  readonly retryAttempts: number;
  readonly retryStrategies: readonly batch.RetryStrategy[];
  /** Defaults every node's environment starts from; the dispatcher sends every job's own values. */
  readonly environment: Readonly<Record<string, string>>;
  /** GiB of encrypted root volume per instance. */
  readonly volumeGiB: number;
}

/**
 * AWS Batch multi-node parallel jobs for training that does not fit one node: one On-Demand compute
 * environment (Batch runs no multi-node parallel jobs on Spot or Fargate) of EFA instances in a
 * cluster placement group in one subnet (so one Availability Zone), its own job queue, a security group
 * that lets the nodes talk to each other, and one job definition per instance type.
 */
export class MultiNodeTraining extends Construct {
  readonly jobQueue: batch.JobQueue;
  /** Instance type → its job definition (main node 0, one open-ended node range `0:`). */
  readonly jobDefinitions: Readonly<Record<string, batch.MultiNodeJobDefinition>>;
  readonly computeEnvironment: batch.ManagedEc2EcsComputeEnvironment;
  readonly placementGroup: ec2.PlacementGroup;
  readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: MultiNodeTrainingProps) {
    super(scope, id);
    const { vpc } = props.network;
    const specs = { ...EFA_INSTANCE_TYPES, ...props.capacity.instanceTypeSpecs };
    const types = props.capacity.instanceTypes.map((name) => {
      const spec = specs[name];
      if (!spec) {
        throw new Error(
          `Multi-node instance type ${name} is not known; give its specification in instanceTypeSpecs (known: ${Object.keys(specs).join(", ")}).`,
        );
      }
      return { name, ...spec };
    });
    if (types.length === 0) throw new Error("Multi-node training needs at least one instance type.");
    if (!Number.isInteger(props.capacity.maxNodes) || props.capacity.maxNodes < 2) {
      throw new Error(
        `Multi-node maxNodes must be a whole number of at least 2, not ${props.capacity.maxNodes}.`,
      );
    }

    this.securityGroup = new ec2.SecurityGroup(this, "SecurityGroup", {
      vpc,
      description:
        "Batch multi-node training instances and tasks: all traffic among themselves (EFA, NCCL, torchrun); HTTPS out to the VPC endpoints (no internet route)",
      allowAllOutbound: false,
    });
    // EFA needs all traffic in and out to the group itself (EC2's EFA requirement); so do NCCL's
    // bootstrap sockets and torchrun's rendezvous on the main node's port.
    this.securityGroup.addIngressRule(
      this.securityGroup,
      ec2.Port.allTraffic(),
      "All traffic among the nodes",
    );
    this.securityGroup.addEgressRule(
      this.securityGroup,
      ec2.Port.allTraffic(),
      "All traffic among the nodes",
    );
    // Image pulls, logs, the ECS agent, S3 and DynamoDB: all HTTPS, all VPC endpoints (no other route).
    this.securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), "HTTPS to the VPC endpoints");

    this.placementGroup = new ec2.PlacementGroup(this, "PlacementGroup", {
      strategy: ec2.PlacementGroupStrategy.CLUSTER,
    });

    // One launch template per EFA layout (p4d and p5 differ in network cards); Batch picks each type's
    // through the compute environment's launch template overrides.
    const layouts = [...new Set(types.map((t) => t.efaInterfaces))];
    const launchTemplates = new Map(
      layouts.map((efa) => [efa, this.launchTemplate(`LaunchTemplateEfa${efa}`, efa, props.volumeGiB)]),
    );
    // The first type's layout is the default template; the others' are overrides.
    const baseLayout = types[0]!.efaInterfaces;
    // A cluster placement group lives in one Availability Zone: the compute environment gets one subnet.
    const subnet = vpc.selectSubnets(props.network.subnets).subnets[0];
    if (!subnet) throw new Error("Multi-node training needs a subnet.");
    this.computeEnvironment = new batch.ManagedEc2EcsComputeEnvironment(this, "OnDemand", {
      vpc,
      vpcSubnets: { subnets: [subnet] },
      securityGroups: [this.securityGroup],
      spot: false,
      allocationStrategy: batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
      instanceTypes: types.map((t) => new ec2.InstanceType(t.name)),
      useOptimalInstanceClasses: false,
      images: [{ imageType: batch.EcsMachineImageType.ECS_AL2023_NVIDIA }],
      minvCpus: 0,
      maxvCpus: props.capacity.maxNodes * Math.max(...types.map((t) => t.nodeVcpus)),
      launchTemplate: launchTemplates.get(baseLayout)!,
      placementGroup: this.placementGroup,
      updateToLatestImageVersion: true,
    });
    const overrides = layouts
      .filter((efa) => efa !== baseLayout)
      .map((efa) => ({
        LaunchTemplateId: launchTemplates.get(efa)!.launchTemplateId,
        TargetInstanceTypes: types.filter((t) => t.efaInterfaces === efa).map((t) => t.name),
      }));
    if (overrides.length > 0) {
      (this.computeEnvironment.node.defaultChild as batch.CfnComputeEnvironment).addPropertyOverride(
        "ComputeResources.LaunchTemplate.Overrides",
        overrides,
      );
    }
    acknowledge(
      this.computeEnvironment,
      "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]",
      "The instance role Batch documents for ECS container instances (agent registration, ECR pulls); AWS maintains its scope. Jobs get their own job role.",
    );

    this.jobQueue = new batch.JobQueue(this, "JobQueue", {
      computeEnvironments: [{ computeEnvironment: this.computeEnvironment, order: 1 }],
      priority: 1,
      // A job that no instance of the environment can ever run (more nodes than maxvCpus allows, a type
      // it lacks) would wait RUNNABLE at the head of the queue forever and hold back every job behind
      // it; Batch cancels it instead, and the job fails with Batch's reason. Short capacity is not
      // cancelled: P instances come and go.
      jobStateTimeLimitActions: [
        {
          reason: batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
          maxTime: Duration.minutes(10),
          action: batch.JobStateTimeLimitActionsAction.CANCEL,
        },
        {
          reason: batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT,
          maxTime: Duration.minutes(10),
          action: batch.JobStateTimeLimitActionsAction.CANCEL,
        },
      ],
    });

    const jobDefinitions: Record<string, batch.MultiNodeJobDefinition> = {};
    for (const type of types) jobDefinitions[type.name] = this.jobDefinition(type, props);
    this.jobDefinitions = jobDefinitions;
  }

  /** IMDSv2, an encrypted root volume, and one EFA interface on each of the first `efa` network cards. */
  private launchTemplate(id: string, efa: number, volumeGiB: number): ec2.LaunchTemplate {
    // As the single-node instances' template: IMDSv2 only, one hop more for containers.
    const template = new ec2.LaunchTemplate(this, id, {
      requireImdsv2: true,
      httpPutResponseHopLimit: 2,
      blockDevices: [
        {
          deviceName: "/dev/xvda",
          volume: ec2.BlockDeviceVolume.ebs(volumeGiB, {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
    });
    // The L2 launch template has no EFA interfaces. No subnet here: Batch launches into the compute
    // environment's. The security group is the compute environment's (Batch prefers that one over the
    // template's, and gives it to each job's awsvpc task interface too); it is named here as well so
    // that no interface can fall back to the VPC's default group.
    (template.node.defaultChild as ec2.CfnLaunchTemplate).addPropertyOverride(
      "LaunchTemplateData.NetworkInterfaces",
      Array.from({ length: efa }, (_, card) => ({
        Description: `EFA ${card}`,
        NetworkCardIndex: card,
        DeviceIndex: 0,
        InterfaceType: "efa",
        Groups: [this.securityGroup.securityGroupId],
        DeleteOnTermination: true,
      })),
    );
    return template;
  }

  /**
   * The trainer on every node of a job on `type`: main node 0, one node range `0:` (open-ended, so that
   * SubmitJob's `numNodes` may set the node count), the type's EFA devices, unlimited locked memory
   * (EFA registers the buffers it reads and writes).
   */
  private jobDefinition(
    type: MultiNodeInstanceType & { name: string },
    props: MultiNodeTrainingProps,
  ): batch.MultiNodeJobDefinition {
    const name = type.name.replace(/[^a-z0-9]/gi, "").replace(/^./, (c) => c.toUpperCase());
    const linuxParameters = new batch.LinuxParameters(this, `${name}LinuxParameters`, {
      sharedMemorySize: Size.gibibytes(Math.min(64, Math.max(1, Math.floor(type.memoryGiB / 4)))),
    });
    // No explicit permissions: Docker's default for a mapped device is read, write and mknod, which
    // is what EFA needs (and what Batch's EFA documentation allows).
    linuxParameters.addDevices(
      ...Array.from({ length: type.efaInterfaces }, (_, i) => ({
        hostPath: `/dev/infiniband/uverbs${i}`,
        containerPath: `/dev/infiniband/uverbs${i}`,
      })),
    );
    const container = new batch.EcsEc2ContainerDefinition(this, `${name}Container`, {
      image: props.image,
      gpu: type.gpus,
      cpu: type.vcpus,
      memory: Size.gibibytes(type.memoryGiB),
      jobRole: props.jobRole,
      executionRole: props.executionRole,
      linuxParameters,
      ulimits: [{ name: batch.UlimitName.MEMLOCK, softLimit: -1, hardLimit: -1 }],
      logging: ecs.LogDriver.awsLogs({ logGroup: props.logGroup, streamPrefix: "multinode" }),
      environment: { ...props.environment, ...EFA_ENVIRONMENT },
    });
    const definition = new batch.MultiNodeJobDefinition(this, `${name}JobDefinition`, {
      instanceType: new ec2.InstanceType(type.name),
      mainNode: 0,
      // Nodes 0–1: the definition's own count (2) when a submission gives none.
      containers: [{ startNode: 0, endNode: 1, container }],
      retryAttempts: props.retryAttempts,
      retryStrategies: [...props.retryStrategies],
      timeout: props.timeout,
      propagateTags: true,
    });
    // The L2 writes closed ranges only ("0:1"); SubmitJob may override numNodes only when a range is
    // open-ended.
    (definition.node.defaultChild as batch.CfnJobDefinition).addPropertyOverride(
      "NodeProperties.NodeRangeProperties.0.TargetNodes",
      "0:",
    );
    return definition;
  }
}
