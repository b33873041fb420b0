import { existsSync } from "node:fs";
import { ArnFormat, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import * as autoscaling from "aws-cdk-lib/aws-autoscaling";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as logs from "aws-cdk-lib/aws-logs";
import * as servicediscovery from "aws-cdk-lib/aws-servicediscovery";
import type * as sns from "aws-cdk-lib/aws-sns";
import { Construct } from "constructs";
import { deploymentName, SERVER_CONTAINER, SERVER_PORT } from "../../lambdas/aws/ecs-deployment-runtime.ts";
import type { BaseModelCatalog } from "../../lambdas/core/catalog/base-models.ts";
import { CONTRACT } from "../../lambdas/core/contract.ts";
import { planServing } from "../../lambdas/core/deployments/plan.ts";
import { type GpuInstanceType, INSTANCE_TYPES } from "../../lambdas/core/jobs/resources.ts";
import { CONFIG_ENV, SERVICES } from "../resources/definitions.ts";
import { type BucketRef, bind, grant, type TableRef } from "./bind.ts";
import type { PlatformCatalog } from "./catalog.ts";
import { containerImage, repoPath } from "./container-image.ts";
import type { DurableQueue } from "./durable-queue.ts";
import { acknowledge } from "./nag.ts";
import type { Network } from "./network.ts";
import { PlatformFunction } from "./platform-function.ts";
import { SESSION_TAGS, TENANT_READER_ROLE_ENV, tenantScoped, tenantScopedRole } from "./tenant-scope.ts";

export interface DeploymentsProps {
  readonly network: Network;
  /** The servers read their model's consolidated weights (`…/model/`) from it. */
  readonly artifactsBucket: BucketRef<"artifacts">;
  /** The deployer reads a deployment's model record and records its outcome there. */
  readonly modelsTable: TableRef<"models">;
  /** The `deployments` queue: the jobs API's deploy/undeploy messages and the deployer's own checks. */
  readonly queue: DurableQueue<"deployments">;
  /** Full-method models of the catalog decide the instance types (the serving planner's choices). */
  readonly catalog: PlatformCatalog;
  readonly alarmTopic: sns.ITopic;
  /** Stack prefix: names the Cloud Map namespace (`deployments.{prefix}.internal`). */
  readonly prefix: string;
  /** An existing cluster (the private inference servers'); a new one by default. */
  readonly cluster?: ecs.Cluster;
  /** The inference image in a registry; by default built from `batch-images/inference/Dockerfile` at deploy. */
  readonly imageUri?: string;
  /** Instance types the planner chooses among (the jobs API plans with the same); every known type by default. */
  readonly instanceTypes?: readonly GpuInstanceType[];
  /** Instances per serving instance type at most (one server each): the cost ceiling; 2 by default. */
  readonly maxInstancesPerType?: number;
}

/** One instance type the planner may choose, with what its instances must hold. */
export interface ServingCapacity {
  readonly instanceType: string;
  /** A GPU type (the GPU ECS-optimized AMI); false for a CPU server's type. */
  readonly gpu: boolean;
  /** Root volume: the image and the largest planned model's weights, with room to spare. */
  readonly volumeGiB: number;
}

/** Docker's image layers (vLLM, CUDA, torch: ~10 GB compressed, twice that unpacked) and headroom. */
const IMAGE_GIB = 60;

/**
 * The instance types the serving planner chooses for the catalog's full-method models (what
 * `POST /v4/models/{code}/deploy` may ask for), each sized for the largest model planned on it. A model
 * no type can serve is skipped: the API refuses its deployment.
 */
export function servingCapacities(
  catalog: BaseModelCatalog,
  instanceTypes: readonly GpuInstanceType[] = INSTANCE_TYPES,
): ServingCapacity[] {
  const largest = new Map<string, number>();
  for (const model of catalog) {
    if (!model.methods.full) continue;
    let type: string;
    try {
      type = planServing(model, instanceTypes).instanceType;
    } catch {
      continue;
    }
    largest.set(type, Math.max(largest.get(type) ?? 0, model.parameters));
  }
  return [...largest].map(([instanceType, parameters]) => {
    const weightsGiB = (parameters * 2) / 2 ** 30;
    return {
      instanceType,
      gpu: instanceTypes.some((type) => type.name === instanceType),
      volumeGiB: Math.ceil((IMAGE_GIB + weightsGiB * 1.2) / 50) * 50,
    };
  });
}

/** `g6e.12xlarge` → `G6e12xlarge`: a construct id. */
const constructId = (instanceType: string): string =>
  instanceType.replace(/[^A-Za-z0-9]/g, "").replace(/^./, (c) => c.toUpperCase());

/** The name prefix of every deployment's resources: what the deployer's IAM is scoped to. */
const NAME_PREFIX = deploymentName("x").slice(0, -1);

/**
 * The deployments bounded context: full-parameter models deployed by tenants through the API, each an
 * ECS service the deployer function creates and removes at run time (lambdas/deployer,
 * lambdas/aws/ecs-deployment-runtime.ts). Built here: one Auto Scaling group capacity provider per
 * instance type the serving planner can choose (from zero instances: a GPU node exists only while a
 * deployment holds it), the Cloud Map private DNS namespace the servers register their names in, the
 * template task definition each deployment's copy starts from, the servers' roles and security group
 * (only the chat function may reach them), and the deployer on the `deployments` queue.
 */
export class Deployments extends Construct {
  readonly cluster: ecs.Cluster;
  /** Instance type → its capacity provider. */
  readonly capacityProviders: Readonly<Record<string, ecs.AsgCapacityProvider>>;
  readonly namespace: servicediscovery.PrivateDnsNamespace;
  /** The template each deployment's task definition copies (roles, container, health check, logs). */
  readonly taskDefinition: ecs.Ec2TaskDefinition;
  readonly taskRole: iam.Role;
  /**
   * What a server reads its model's weights with: assumed for the tenant that MODEL_ARTIFACT_URI's
   * `tenants/{tenantId}/` names (the image's weight sync), that tenant's full models only.
   */
  readonly readerRole: iam.Role;
  readonly executionRole: iam.Role;
  readonly taskSecurityGroup: ec2.SecurityGroup;
  readonly deployer: PlatformFunction;

  constructor(scope: Construct, id: string, props: DeploymentsProps) {
    super(scope, id);
    const { vpc } = props.network;
    this.cluster =
      props.cluster ??
      new ecs.Cluster(this, "Cluster", { vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    this.capacityProviders = this.createCapacity(props);
    this.namespace = new servicediscovery.PrivateDnsNamespace(this, "Namespace", {
      name: `deployments.${props.prefix}.internal`,
      vpc,
      description: "Deployed models' servers: one name per deployment, resolved by the chat function",
    });
    this.taskSecurityGroup = new ec2.SecurityGroup(this, "ServerSecurityGroup", {
      vpc,
      description: "Deployed model servers: inbound only from the chat function",
      allowAllOutbound: true,
    });
    this.taskRole = new iam.Role(this, "ServerTaskRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "A deployed model's server: assumes the tenant-scoped reader for its model's weights",
    });
    this.readerRole = this.createReaderRole(props);
    this.executionRole = new iam.Role(this, "ServerExecutionRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "Pulls the inference image and writes the deployed servers' logs",
    });
    acknowledge(
      this.executionRole,
      "AwsSolutions-IAM5[Resource::*]",
      "ecr:GetAuthorizationToken supports no resource-level permissions; image pulls are scoped to the repository.",
    );
    this.taskDefinition = this.createTemplate(props);
    this.deployer = this.createDeployer(props);
  }

  /** Lets `peer` (the chat function) reach the servers' port. */
  allowFrom(peer: ec2.ISecurityGroup): void {
    this.taskSecurityGroup.addIngressRule(peer, ec2.Port.tcp(SERVER_PORT), "chat function");
  }

  private createCapacity(props: DeploymentsProps): Record<string, ecs.AsgCapacityProvider> {
    const { vpc, subnets } = props.network;
    const instanceSecurityGroup = new ec2.SecurityGroup(this, "InstanceSecurityGroup", {
      vpc,
      description: "Deployed model server instances: no inbound (tasks have their own interfaces)",
      allowAllOutbound: true,
    });
    const instanceRole = new iam.Role(this, "InstanceRole", {
      assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
      description: "ECS container agent on the deployed models' instances",
    });
    const providers: Record<string, ecs.AsgCapacityProvider> = {};
    for (const capacity of servingCapacities(props.catalog.models, props.instanceTypes)) {
      const id = constructId(capacity.instanceType);
      const launchTemplate = new ec2.LaunchTemplate(this, `${id}LaunchTemplate`, {
        machineImage: ecs.EcsOptimizedImage.amazonLinux2023(
          capacity.gpu ? ecs.AmiHardwareType.GPU : ecs.AmiHardwareType.STANDARD,
        ),
        instanceType: new ec2.InstanceType(capacity.instanceType),
        role: instanceRole,
        securityGroup: instanceSecurityGroup,
        userData: ec2.UserData.forLinux(),
        requireImdsv2: true,
        detailedMonitoring: true,
        blockDevices: [
          {
            // The inference image and the model's weights, downloaded at the task's start.
            deviceName: "/dev/xvda",
            volume: ec2.BlockDeviceVolume.ebs(capacity.volumeGiB, {
              volumeType: ec2.EbsDeviceVolumeType.GP3,
              encrypted: true,
              deleteOnTermination: true,
            }),
          },
        ],
      });
      const instances = new autoscaling.AutoScalingGroup(this, `${id}Instances`, {
        vpc,
        vpcSubnets: subnets,
        launchTemplate,
        // No deployment, no instance: ECS managed scaling starts one per server that needs it.
        minCapacity: 0,
        maxCapacity: props.maxInstancesPerType ?? 2,
        notifications: [{ topic: props.alarmTopic }],
      });
      const provider = new ecs.AsgCapacityProvider(this, `${id}CapacityProvider`, {
        autoScalingGroup: instances,
        enableManagedScaling: true,
        enableManagedTerminationProtection: false,
        // ECS drains an instance's tasks before scale-in itself: no lifecycle-hook Lambda function.
        enableManagedDraining: true,
      });
      this.cluster.addAsgCapacityProvider(provider);
      providers[capacity.instanceType] = provider;
    }
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
    return providers;
  }

  /**
   * The template: the inference image's container with the port, logs, /dev/shm and health check every
   * deployment shares. The deployer copies it into each deployment's own family with the model's
   * environment and GPUs; no service runs this revision itself.
   */
  private createTemplate(props: DeploymentsProps): ecs.Ec2TaskDefinition {
    const dockerfile = "batch-images/inference/Dockerfile";
    if (!props.imageUri && !existsSync(repoPath(dockerfile))) {
      throw new Error(`Model deployments need the context inferenceImageUri (${dockerfile} is missing)`);
    }
    const taskDefinition = new ecs.Ec2TaskDefinition(this, "ServerTemplate", {
      networkMode: ecs.NetworkMode.AWS_VPC,
      taskRole: this.taskRole,
      executionRole: this.executionRole,
    });
    const logGroup = new logs.LogGroup(this, "ServerLogs", {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    taskDefinition.addContainer(SERVER_CONTAINER, {
      image: containerImage(this, "ServerImage", props.imageUri, dockerfile),
      // A soft reservation that fits the smallest serving type; GPUs are what place a server.
      memoryReservationMiB: 4 * 1024,
      portMappings: [{ containerPort: SERVER_PORT }],
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: "server" }),
      environment: { PORT: String(SERVER_PORT), [TENANT_READER_ROLE_ENV]: this.readerRole.roleArn },
      // The adapter proxy's /health relays vLLM's. Python, because the image surely has it. ECS caps the
      // start period at 300 s; the service's grace period (the runtime's) covers the long weight download.
      healthCheck: {
        command: [
          "CMD",
          "python3",
          "-c",
          `import urllib.request; urllib.request.urlopen('http://127.0.0.1:${SERVER_PORT}/health', timeout=5)`,
        ],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(10),
        retries: 10,
        startPeriod: Duration.seconds(300),
      },
      // vLLM's tensor-parallel workers share tensors through /dev/shm.
      linuxParameters: new ecs.LinuxParameters(this, "ServerLinux", { sharedMemorySize: 16 * 1024 }),
    });
    acknowledge(
      taskDefinition,
      "AwsSolutions-ECS2",
      "The environment holds the port here and, in each deployment's copy, the model's names and weights URI: no secrets; credentials come from the task role.",
    );
    return taskDefinition;
  }

  /**
   * A deployment serves one tenant's model: its server reads the weights through a session tagged with
   * that tenant (tenant-scope.ts), so a wrong MODEL_ARTIFACT_URI cannot reach another tenant's. Scoping
   * each deployment to its own model's prefix would take a role per deployment; the tenant is the
   * isolation boundary that matters.
   */
  private createReaderRole(props: DeploymentsProps): iam.Role {
    const { tenant } = SESSION_TAGS;
    const role = tenantScopedRole(this, "TenantModelReaderRole", {
      assumedBy: this.taskRole,
      tags: [tenant],
      description: "A deployed server's session for its model's tenant (tag tenantId): its full models only",
    });
    const models = `${tenantScoped(CONTRACT.s3.jobRoot, [tenant])}${CONTRACT.s3.result.full}*`;
    grant(role, props.artifactsBucket, {
      objects: [
        {
          keys: [models],
          actions: ["GetObject"],
          why: "The session's own tenant's full-parameter models only (aws:PrincipalTag/tenantId in the key); the deployment names which.",
        },
      ],
      list: [models],
    });
    return role;
  }

  private createDeployer(props: DeploymentsProps): PlatformFunction {
    const stack = Stack.of(this);
    const fn = new PlatformFunction(this, "Deployer", {
      entry: "lambdas/deployer/index.ts",
      service: SERVICES.deployer,
      description: "Deployments queue → model servers on ECS: start, health checks, release",
      // The deployments queue's visibility timeout (360 s) is six times this.
      timeout: Duration.seconds(60),
      memorySize: 512,
      environment: {
        [CONFIG_ENV.deploymentCluster]: this.cluster.clusterName,
        [CONFIG_ENV.deploymentTaskFamily]: this.taskDefinition.family,
        [CONFIG_ENV.deploymentSubnets]: stack.toJsonString(
          props.network.vpc.selectSubnets(props.network.subnets).subnetIds,
        ),
        [CONFIG_ENV.deploymentSecurityGroup]: this.taskSecurityGroup.securityGroupId,
        [CONFIG_ENV.deploymentNamespaceId]: this.namespace.namespaceId,
        [CONFIG_ENV.deploymentNamespaceName]: this.namespace.namespaceName,
        [CONFIG_ENV.deploymentCapacityProviders]: stack.toJsonString(
          Object.fromEntries(
            Object.entries(this.capacityProviders).map(([type, p]) => [type, p.capacityProviderName]),
          ),
        ),
      },
    });
    // Reads the deployment's model record; records `deployed` or `failed` (conditional updates).
    bind(fn, props.modelsTable, { actions: ["GetItem", "UpdateItem"] });
    // Schedules its own health checks (delayed messages).
    bind(fn, props.queue.ref, { actions: ["SendMessage"] });
    props.catalog.bind(fn);
    this.grantRuntime(fn);
    fn.addEventSource(
      new SqsEventSource(props.queue.queue, {
        batchSize: 5,
        reportBatchItemFailures: true,
        // Few deployments at a time, and the ECS and Cloud Map APIs throttle: no burst of invocations.
        maxConcurrency: 2,
      }),
    );
    acknowledge(
      fn,
      "Serverless-LambdaEventSourceMappingDestination",
      "Failed messages go to the deployments queue's own DLQ (redrive policy, alarmed); SQS mappings take no on-failure destination.",
    );
    return fn;
  }

  /**
   * What the ECS runtime calls, each action as narrowly as it allows: services and tasks of this
   * cluster named after deployments, task-definition families named after deployments, the two roles
   * the template carries, Cloud Map services in this namespace.
   */
  private grantRuntime(fn: PlatformFunction): void {
    const stack = Stack.of(this);
    const ecsArn = (resource: string, resourceName: string) =>
      stack.formatArn({ service: "ecs", resource, resourceName, arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
    const services = ecsArn("service", `${this.cluster.clusterName}/${NAME_PREFIX}*`);
    const families = ecsArn("task-definition", `${NAME_PREFIX}*:*`);
    const tasks = ecsArn("task", `${this.cluster.clusterName}/*`);
    const registries = stack.formatArn({
      service: "servicediscovery",
      resource: "service",
      resourceName: "*",
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const policy = new iam.Policy(this, "DeployerRuntimeAccess", {
      statements: [
        new iam.PolicyStatement({ actions: ["ecs:RegisterTaskDefinition"], resources: [families] }),
        new iam.PolicyStatement({
          // None of the three supports resource-level permissions.
          actions: ["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions", "ecs:DeregisterTaskDefinition"],
          resources: ["*"],
        }),
        new iam.PolicyStatement({
          actions: ["ecs:CreateService", "ecs:UpdateService", "ecs:DeleteService", "ecs:DescribeServices"],
          resources: [services],
        }),
        new iam.PolicyStatement({
          // Tags given to CreateService and RegisterTaskDefinition are authorized as TagResource.
          actions: ["ecs:TagResource"],
          resources: [services, families],
          conditions: { StringEquals: { "ecs:CreateAction": ["CreateService", "RegisterTaskDefinition"] } },
        }),
        new iam.PolicyStatement({
          actions: ["ecs:ListTasks"],
          resources: ["*"],
          conditions: { ArnEquals: { "ecs:cluster": this.cluster.clusterArn } },
        }),
        new iam.PolicyStatement({ actions: ["ecs:DescribeTasks"], resources: [tasks] }),
        new iam.PolicyStatement({
          // The roles of the template, which each deployment's task definition carries.
          actions: ["iam:PassRole"],
          resources: [this.taskRole.roleArn, this.executionRole.roleArn],
          conditions: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
        }),
        new iam.PolicyStatement({
          actions: ["servicediscovery:CreateService"],
          resources: [this.namespace.namespaceArn, registries],
          conditions: { StringEquals: { "servicediscovery:NamespaceArn": this.namespace.namespaceArn } },
        }),
        new iam.PolicyStatement({
          actions: [
            "servicediscovery:GetService",
            "servicediscovery:DeleteService",
            "servicediscovery:ListInstances",
            "servicediscovery:DeregisterInstance",
          ],
          resources: [registries],
        }),
        // Finds a deployment's Cloud Map service by name once its ECS service is gone.
        new iam.PolicyStatement({ actions: ["servicediscovery:ListServices"], resources: ["*"] }),
      ],
    });
    fn.role!.attachInlinePolicy(policy);
    const why: Record<string, string> = {
      "Resource::*":
        "ecs:DescribeTaskDefinition/ListTaskDefinitions/DeregisterTaskDefinition and servicediscovery:ListServices support no resource-level permissions; ecs:ListTasks is conditioned on this cluster.",
    };
    for (const [finding, reason] of Object.entries(why))
      acknowledge(policy, `AwsSolutions-IAM5[${finding}]`, reason);
    this.acknowledgeWildcards(policy, { services, families, tasks, registries });
  }

  /**
   * The ARN patterns the runtime's names make necessary: deployments are created at run time, so their
   * services, task-definition families, tasks and Cloud Map service ids are known only by prefix.
   */
  private acknowledgeWildcards(policy: iam.Policy, arns: Record<string, string>): void {
    const stack = Stack.of(this);
    const reasons: Record<string, string> = {
      services: `ECS services are created per deployment at run time: only this cluster's services named ${NAME_PREFIX}… (the deployer's names).`,
      families: `Task-definition families are created per deployment at run time: only families named ${NAME_PREFIX}… (the deployer's names).`,
      tasks:
        "Task ids are known only at run time: DescribeTasks of this cluster's tasks (the servers' health).",
      registries:
        "Cloud Map service ids are generated at creation; they are created in this namespace only (condition), and deleted by the ids the deployment's ECS service names.",
    };
    for (const [key, arn] of Object.entries(arns)) {
      acknowledge(policy, `AwsSolutions-IAM5[Resource::${nagArn(stack, arn)}]`, reasons[key]!);
    }
  }
}

/** How cdk-nag prints an ARN with tokens: `arn:<AWS::Partition>:…:<LogicalId>/…`. */
function nagArn(stack: Stack, arn: string): string {
  const resolved = stack.resolve(arn) as unknown;
  const parts = (
    typeof resolved === "string"
      ? [resolved]
      : ((resolved as { "Fn::Join": [string, unknown[]] })["Fn::Join"][1] ?? [])
  ) as unknown[];
  return parts
    .map((part) => {
      if (typeof part === "string") return part;
      const ref = (part as { Ref?: string }).Ref;
      if (ref) return `<${ref}>`;
      const att = (part as { "Fn::GetAtt"?: [string, string] })["Fn::GetAtt"];
      if (att) return `<${att[0]}.${att[1]}>`;
      return JSON.stringify(part);
    })
    .join("");
}
