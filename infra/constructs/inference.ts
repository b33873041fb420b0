import { existsSync } from "node:fs";
import { Duration, RemovalPolicy, Stack, Token } from "aws-cdk-lib";
import * as autoscaling from "aws-cdk-lib/aws-autoscaling";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sns from "aws-cdk-lib/aws-sns";
import { Construct } from "constructs";
import { SERVER_PORT } from "../../lambdas/aws/ecs-deployment-runtime.ts";
import type { BaseModel } from "../../lambdas/core/catalog/base-models.ts";
import { CONTRACT } from "../../lambdas/core/contract.ts";
import { CONFIG_ENV } from "../resources/definitions.ts";
import { type BucketRef, grant, resourceEnv } from "./bind.ts";
import type { PlatformCatalog } from "./catalog.ts";
import { containerImage, repoPath } from "./container-image.ts";
import { acknowledge } from "./nag.ts";
import type { Network } from "./network.ts";
import { SESSION_TAGS, TENANT_READER_ROLE_ENV, tenantScoped, tenantScopedRole } from "./tenant-scope.ts";

export interface InferenceProps {
  readonly network: Network;
  readonly artifactsBucket: BucketRef<"artifacts">;
  /** Each served base model's family (its chat template) and weights location. */
  readonly catalog: PlatformCatalog;
  readonly alarmTopic: sns.ITopic;
  /** Where the load balancer writes its access logs. */
  readonly accessLogsBucket: s3.IBucket;
  /** One server per base model (catalog names); its tenants' LoRA adapters are loaded on it from S3. */
  readonly baseModels: readonly string[];
  /** The vLLM image in a registry; by default built from `batch-images/inference/Dockerfile` at deploy. */
  readonly imageUri?: string;
  /** g6e.2xlarge by default: one L40S (48 GiB), enough for the catalog's 6–9B models in bf16. */
  readonly instanceType?: string;
  /** GPUs per server; 1 by default. */
  readonly gpusPerServer?: number;
  /** Memory reserved per server, MiB; 48 GiB by default (of the g6e.2xlarge's 64). */
  readonly memoryMiB?: number;
}

/** The first listener port; server i listens on FIRST_PORT + i of the internal load balancer. */
const FIRST_PORT = 8000;
/**
 * The port the container serves on: the image's adapter proxy (batch-images/inference), in front of vLLM
 * on 127.0.0.1:8000 inside the container.
 */
const CONTAINER_PORT = SERVER_PORT;

/**
 * Private inference: vLLM (OpenAI-compatible, LoRA adapters loaded from S3) as ECS services on GPU
 * instances in the private subnets, behind an internal Application Load Balancer that only the chat
 * function's security group may reach. One service per base model (LoRA models share it). Full-parameter
 * models get servers of their own through the API (`POST /v4/models/{code}/deploy`, deployments.ts).
 */
export class Inference extends Construct {
  readonly cluster: ecs.Cluster;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  /** Model name or code → OpenAI-compatible base URL (`http://…:port/v1`), the chat function's INFERENCE_ENDPOINTS. */
  readonly endpoints: Record<string, string> = {};
  private readonly loadBalancerSecurityGroup: ec2.SecurityGroup;
  private readonly ports: number;

  constructor(scope: Construct, id: string, props: InferenceProps) {
    super(scope, id);
    const { vpc, subnets } = props.network;
    // A name the catalog lacks fails the synth, not the server's start.
    const baseModels = props.baseModels.map((name) => props.catalog.model(name));
    this.ports = baseModels.length;
    const gpus = props.gpusPerServer ?? 1;

    const dockerfile = "batch-images/inference/Dockerfile";
    if (!props.imageUri && !existsSync(repoPath(dockerfile))) {
      throw new Error(`inferenceServers needs the context inferenceImageUri (${dockerfile} is missing)`);
    }
    const image = containerImage(this, "ServerImage", props.imageUri, dockerfile);

    this.cluster = new ecs.Cluster(this, "Cluster", {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    const instanceSecurityGroup = new ec2.SecurityGroup(this, "InstanceSecurityGroup", {
      vpc,
      description: "Inference GPU instances: no inbound (tasks have their own interfaces)",
      allowAllOutbound: true,
    });
    const instanceRole = new iam.Role(this, "InstanceRole", {
      assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
      description: "ECS container agent on the inference instances",
    });
    const launchTemplate = new ec2.LaunchTemplate(this, "LaunchTemplate", {
      machineImage: ecs.EcsOptimizedImage.amazonLinux2023(ecs.AmiHardwareType.GPU),
      instanceType: new ec2.InstanceType(props.instanceType ?? "g6e.2xlarge"),
      role: instanceRole,
      securityGroup: instanceSecurityGroup,
      userData: ec2.UserData.forLinux(),
      requireImdsv2: true,
      detailedMonitoring: true,
      blockDevices: [
        {
          // The vLLM image (CUDA, torch) and the downloaded weights.
          deviceName: "/dev/xvda",
          volume: ec2.BlockDeviceVolume.ebs(200, {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
    });
    const instances = new autoscaling.AutoScalingGroup(this, "Instances", {
      vpc,
      vpcSubnets: subnets,
      launchTemplate,
      minCapacity: 0,
      // One GPU server per instance, plus one for a rolling deployment.
      maxCapacity: baseModels.length + 1,
      notifications: [{ topic: props.alarmTopic }],
    });
    const capacityProvider = new ecs.AsgCapacityProvider(this, "CapacityProvider", {
      autoScalingGroup: instances,
      enableManagedTerminationProtection: false,
      // ECS drains an instance's tasks before scale-in itself: no lifecycle-hook Lambda function.
      enableManagedDraining: true,
    });
    this.cluster.addAsgCapacityProvider(capacityProvider);

    this.loadBalancerSecurityGroup = new ec2.SecurityGroup(this, "LoadBalancerSecurityGroup", {
      vpc,
      description: "Internal inference load balancer: inbound only from the chat function",
      allowAllOutbound: false,
    });
    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, "LoadBalancer", {
      vpc,
      vpcSubnets: subnets,
      internetFacing: false,
      securityGroup: this.loadBalancerSecurityGroup,
      // Streams may pause between tokens; the default 60 s idle timeout would cut slow generations.
      idleTimeout: Duration.minutes(15),
      dropInvalidHeaderFields: true,
    });
    // ELB delivers access logs from a per-region account: CDK needs the region to write the bucket policy.
    if (!Token.isUnresolved(Stack.of(this).region)) {
      this.loadBalancer.logAccessLogs(props.accessLogsBucket, "inference-alb");
    } else {
      acknowledge(
        this.loadBalancer,
        "AwsSolutions-ELB2",
        "The stack is region-agnostic (no env region): ELB access logs need the region; deploy with a region to get them.",
      );
    }

    const taskRole = this.createTaskRole(props, baseModels);
    const readerRole = this.createReaderRole(props, taskRole);
    const executionRole = new iam.Role(this, "ExecutionRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "Pulls the vLLM image and writes its logs",
    });
    acknowledge(
      executionRole,
      "AwsSolutions-IAM5[Resource::*]",
      "ecr:GetAuthorizationToken supports no resource-level permissions; image pulls are scoped to the repository.",
    );
    const logGroup = new logs.LogGroup(this, "ServerLogs", {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const taskSecurityGroup = new ec2.SecurityGroup(this, "TaskSecurityGroup", {
      vpc,
      description: "vLLM servers: inbound only from the internal load balancer",
      allowAllOutbound: true,
    });
    taskSecurityGroup.connections.allowFrom(this.loadBalancer, ec2.Port.tcp(CONTAINER_PORT), "load balancer");

    baseModels.forEach((model, i) => {
      const port = FIRST_PORT + i;
      const serviceId = `Server${i}`;
      const taskDefinition = new ecs.Ec2TaskDefinition(this, `${serviceId}Task`, {
        networkMode: ecs.NetworkMode.AWS_VPC,
        taskRole,
        executionRole,
      });
      taskDefinition.addContainer("vllm", {
        image,
        gpuCount: gpus,
        memoryReservationMiB: props.memoryMiB ?? 48 * 1024,
        portMappings: [{ containerPort: CONTAINER_PORT }],
        logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: `server-${i}` }),
        // Names and ports only, no secrets: credentials come from the task role.
        environment: {
          ...resourceEnv(props.artifactsBucket),
          // The adapter proxy loads each tenant's adapter with this role, assumed for that tenant.
          [TENANT_READER_ROLE_ENV]: readerRole.roleArn,
          PORT: String(CONTAINER_PORT),
          BASE_MODEL: model.name,
          // The catalog's facts, so the server formats prompts as the trainer did and finds the
          // weights where the catalog (and the trainer) put them.
          [CONFIG_ENV.modelFamily]: model.family,
          [CONFIG_ENV.baseModelUri]: `s3://${props.artifactsBucket.bucket.bucketName}/${model.weightsPrefix}`,
        },
        // vLLM's workers share tensors through /dev/shm.
        linuxParameters: new ecs.LinuxParameters(this, `${serviceId}Linux`, {
          sharedMemorySize: 8 * 1024,
        }),
      });
      acknowledge(
        taskDefinition,
        "AwsSolutions-ECS2",
        "The environment holds resource names, the model name and the port, no secrets; credentials come from the task role.",
      );
      const service = new ecs.Ec2Service(this, serviceId, {
        cluster: this.cluster,
        taskDefinition,
        desiredCount: 1,
        capacityProviderStrategies: [{ capacityProvider: capacityProvider.capacityProviderName, weight: 1 }],
        vpcSubnets: subnets,
        securityGroups: [taskSecurityGroup],
        // Loading weights from S3 and warming the GPU takes minutes.
        healthCheckGracePeriod: Duration.minutes(20),
        circuitBreaker: { rollback: true },
        // A new task starts (on an extra instance) before the old one stops: chat never loses its server.
        minHealthyPercent: 100,
        maxHealthyPercent: 200,
      });
      const listener = this.loadBalancer.addListener(`Listener${port}`, {
        port,
        protocol: elbv2.ApplicationProtocol.HTTP,
        open: false,
      });
      listener.addTargets(`${serviceId}Targets`, {
        port: CONTAINER_PORT,
        protocol: elbv2.ApplicationProtocol.HTTP,
        targets: [service.loadBalancerTarget({ containerName: "vllm", containerPort: CONTAINER_PORT })],
        healthCheck: { path: "/health", interval: Duration.seconds(30), healthyThresholdCount: 2 },
        deregistrationDelay: Duration.seconds(30),
      });
      this.endpoints[model.name] = `http://${this.loadBalancer.loadBalancerDnsName}:${port}/v1`;
    });

    acknowledge(
      instanceRole,
      "AwsSolutions-IAM5[Resource::*]",
      "The ECS container agent's registration and polling actions (added by the cluster) support no resource-level permissions.",
    );
    acknowledge(
      instanceRole,
      "AwsSolutions-IAM5[Action::ecs:Submit*]",
      "The ECS container agent reports task and attachment state changes (ecs:Submit*), as the cluster grants them to its instances.",
    );
  }

  /** Lets `peer` (the chat function) reach every server's listener. */
  allowFrom(peer: ec2.ISecurityGroup): void {
    this.loadBalancerSecurityGroup.addIngressRule(
      peer,
      ec2.Port.tcpRange(FIRST_PORT, FIRST_PORT + Math.max(this.ports, 1) - 1),
      "chat function",
    );
  }

  /**
   * The server reads its base models' weights; tenants' adapters only through {@link createReaderRole},
   * which it may assume.
   */
  private createTaskRole(props: InferenceProps, baseModels: readonly BaseModel[]): iam.Role {
    const role = new iam.Role(this, "TaskRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "vLLM server: reads base weights; assumes the tenant-scoped reader for adapters",
    });
    const keys = props.catalog.weightsKeys(baseModels);
    grant(role, props.artifactsBucket, {
      objects: [{ keys, actions: ["GetObject"], why: "Reads the served models' weights." }],
      list: keys,
    });
    return role;
  }

  /**
   * The adapter proxy's session for one tenant (tag `tenantId`, parsed from the artifact URI's
   * `tenants/{tenantId}/` prefix): that tenant's LoRA adapters and nothing else. The chat function
   * already checked that the model is the caller's; this keeps a bug there from reading another
   * tenant's prefix.
   */
  private createReaderRole(props: InferenceProps, taskRole: iam.Role): iam.Role {
    const { tenant } = SESSION_TAGS;
    const role = tenantScopedRole(this, "TenantAdapterReaderRole", {
      assumedBy: taskRole,
      tags: [tenant],
      description: "The adapter proxy's session for one tenant (tag tenantId): its LoRA adapters only",
    });
    const adapters = `${tenantScoped(CONTRACT.s3.jobRoot, [tenant])}${CONTRACT.s3.result.lora}*`;
    grant(role, props.artifactsBucket, {
      objects: [
        {
          keys: [adapters],
          actions: ["GetObject"],
          why: "The session's own tenant's adapters only (aws:PrincipalTag/tenantId in the key); the chat request names which.",
        },
      ],
      list: [adapters],
    });
    return role;
  }
}
