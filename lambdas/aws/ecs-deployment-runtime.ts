import { createHash } from "node:crypto";
import {
  type ContainerDefinition,
  CreateServiceCommand,
  DeleteServiceCommand,
  DeregisterTaskDefinitionCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  type ECSClient,
  type KeyValuePair,
  ListTaskDefinitionsCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  type Service,
  type Tag,
  type Task,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import {
  CreateServiceCommand as CreateRegistryCommand,
  DeleteServiceCommand as DeleteRegistryCommand,
  DeregisterInstanceCommand,
  ListInstancesCommand,
  ListServicesCommand as ListRegistriesCommand,
  type ServiceDiscoveryClient,
} from "@aws-sdk/client-servicediscovery";
import { CONFIG_ENV } from "../../infra/resources/definitions.ts";
import type {
  DeploymentProbe,
  DeploymentRef,
  DeploymentRuntime,
  DeploymentSpec,
} from "../core/deployments/deployment.ts";
import { type Env, requiredConfigEnv, requiredJsonEnv } from "./env.ts";

/**
 * Model servers as ECS services ({@link DeploymentRuntime} in AWS). Each deployment gets, all named
 * {@link deploymentName} (`ftm-{deploymentId}`), so that a retried call finds what an earlier one made:
 * - a task-definition family of its own, whose one revision copies the CDK-made template (roles, network
 *   mode, the vLLM container with its image, logs, health check, /dev/shm and port) and adds the model's
 *   environment and GPUs. A family per deployment rather than revisions of the template's family: the
 *   deployment's revisions are then one `ListTaskDefinitions` away, for reuse on a retried start and for
 *   the release, where revisions mixed into the template's family could only be told apart by their tags;
 * - a Cloud Map service (an A record in the platform's private DNS namespace) the tasks register in,
 *   which is the endpoint chat relays to: `http://ftm-{id}.{namespace}:8080/v1`;
 * - an ECS service of one task on the capacity provider of the planned instance type, in the private
 *   subnets with the task security group (which only the chat function may reach), with the deployment
 *   circuit breaker on (no rollback: there is nothing to roll back to) and its tags propagated.
 */

/** What the runtime works with: the CDK construct's resources (infra/constructs/deployments.ts). */
export interface EcsRuntimeConfig {
  /** Cluster name (or ARN). */
  readonly cluster: string;
  /** The template task definition's family: its latest ACTIVE revision is copied. */
  readonly templateFamily: string;
  readonly subnets: readonly string[];
  readonly securityGroup: string;
  /** The Cloud Map private DNS namespace: its id (to create services in) and DNS name (the endpoint). */
  readonly namespaceId: string;
  readonly namespaceName: string;
  /** Instance type → the ECS capacity provider of its Auto Scaling group. */
  readonly capacityProviders: Readonly<Record<string, string>>;
}

export interface EcsRuntimeOptions {
  /** How the release waits for Cloud Map to finish deregistering instances; a timer by default. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Milliseconds between the release's attempts to delete the Cloud Map service; 3000 by default. */
  readonly registryRetryMs?: number;
}

/** The container of the template task definition, and the port its adapter proxy listens on. */
export const SERVER_CONTAINER = "vllm";
export const SERVER_PORT = 8080;
/**
 * The service scheduler ignores the container health check this long after a task starts: a cold GPU
 * instance, a ~10 GB image and the weights (hundreds of GB for the largest models) come first. The
 * container's own `startPeriod` is capped at 300 s by ECS.
 */
export const HEALTH_CHECK_GRACE_SECONDS = 40 * 60;
/** Attempts to delete a Cloud Map service that still has instances (deregistration is asynchronous). */
const REGISTRY_DELETE_ATTEMPTS = 4;

const NAME_PREFIX = "ftm-";
/** A DNS label (Cloud Map service name) is at most 63 characters; ECS names allow more. */
const MAX_NAME = 63;

/**
 * The name of every resource of one deployment: `ftm-{deploymentId}`, lower-case, a valid DNS label and
 * ECS service / task-definition family name. Deployment ids (`dep-` + 21 base32 characters) fit as they
 * are; anything longer or stranger is cut and suffixed with a hash so that two ids never share a name.
 */
export function deploymentName(deploymentId: string): string {
  const clean = deploymentId.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const name = `${NAME_PREFIX}${clean}`.replace(/-+$/, "");
  if (name.length <= MAX_NAME && clean === deploymentId) return name;
  const hash = createHash("sha256").update(deploymentId).digest("hex").slice(0, 8);
  return `${name.slice(0, MAX_NAME - hash.length - 1).replace(/-+$/, "")}-${hash}`;
}

/** The OpenAI-compatible base URL of a deployment's server, inside the VPC. */
export const deploymentEndpoint = (name: string, namespaceName: string): string =>
  `http://${name}.${namespaceName}:${SERVER_PORT}/v1`;

export class EcsDeploymentRuntime implements DeploymentRuntime {
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly registryRetryMs: number;

  constructor(
    private readonly ecs: ECSClient,
    private readonly discovery: ServiceDiscoveryClient,
    private readonly config: EcsRuntimeConfig,
    options: EcsRuntimeOptions = {},
  ) {
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.registryRetryMs = options.registryRetryMs ?? 3000;
  }

  /**
   * Creates what is missing, in dependency order (task definition, Cloud Map service, ECS service), each
   * step finding an earlier attempt's result first. An ACTIVE service means an earlier start finished; a
   * DRAINING one was released meanwhile, which {@link probe} reports: neither is touched.
   */
  async start(spec: DeploymentSpec): Promise<void> {
    const name = deploymentName(spec.deploymentId);
    const capacityProvider = this.config.capacityProviders[spec.instanceType];
    if (!capacityProvider) {
      const known = Object.keys(this.config.capacityProviders).join(", ");
      throw new Error(`No capacity provider for instance type ${spec.instanceType} (configured: ${known})`);
    }
    if (isLiveOrDraining(await this.describeService(name))) return;
    const taskDefinition = await this.ensureTaskDefinition(spec, name);
    const registryArn = await this.ensureRegistry(name);
    try {
      await this.ecs.send(
        new CreateServiceCommand({
          cluster: this.config.cluster,
          serviceName: name,
          taskDefinition,
          desiredCount: 1,
          capacityProviderStrategy: [{ capacityProvider, weight: 1 }],
          networkConfiguration: {
            awsvpcConfiguration: {
              subnets: [...this.config.subnets],
              securityGroups: [this.config.securityGroup],
              assignPublicIp: "DISABLED",
            },
          },
          serviceRegistries: [{ registryArn }],
          deploymentConfiguration: {
            deploymentCircuitBreaker: { enable: true, rollback: false },
            // One GPU task: a replacement never needs a second node beside the first.
            minimumHealthyPercent: 0,
            maximumPercent: 100,
          },
          healthCheckGracePeriodSeconds: HEALTH_CHECK_GRACE_SECONDS,
          enableECSManagedTags: true,
          propagateTags: "SERVICE",
          tags: tags(spec),
        }),
      );
    } catch (error) {
      // A concurrent start won the race (ECS: "Creation of service was not idempotent"), or the name is
      // still draining from a release: what is there now is what probe reports.
      if (isNamed(error, "InvalidParameterException") && isLiveOrDraining(await this.describeService(name))) {
        return;
      }
      throw error;
    }
  }

  async probe(spec: DeploymentSpec): Promise<DeploymentProbe> {
    const name = deploymentName(spec.deploymentId);
    const service = await this.describeService(name);
    if (service?.status !== "ACTIVE") return { state: "failed", reason: "its server was removed" };
    const primary = service.deployments?.find((deployment) => deployment.status === "PRIMARY");
    if (primary?.rolloutState === "FAILED") {
      return { state: "failed", reason: rolloutFailure(primary.rolloutStateReason) };
    }
    // The container health check (the template's) is what HEALTHY means: the proxy and vLLM answer.
    const tasks = await this.runningTasks(name);
    if (tasks.some((task) => task.lastStatus === "RUNNING" && task.healthStatus === "HEALTHY")) {
      return { state: "healthy", endpoint: deploymentEndpoint(name, this.config.namespaceName) };
    }
    return { state: "starting", detail: startingDetail(service, tasks, spec.instanceType) };
  }

  /**
   * Scales the service to zero and deletes it (its tasks stop, and ECS deregisters them from Cloud Map),
   * deletes the Cloud Map service (deregistering leftover instances itself when the deletion finds some),
   * and deregisters the deployment's task-definition revisions. Whatever is already gone is skipped.
   */
  async release(ref: DeploymentRef): Promise<void> {
    const name = deploymentName(ref.deploymentId);
    const service = await this.describeService(name);
    if (service && service.status !== "INACTIVE") {
      await this.tolerating(SERVICE_GONE, () =>
        this.ecs.send(
          new UpdateServiceCommand({ cluster: this.config.cluster, service: name, desiredCount: 0 }),
        ),
      );
      await this.tolerating(SERVICE_GONE, () =>
        this.ecs.send(new DeleteServiceCommand({ cluster: this.config.cluster, service: name, force: true })),
      );
    }
    const registries = registryIds(service);
    for (const id of registries.length > 0 ? registries : await this.findRegistries(name)) {
      await this.deleteRegistry(id);
    }
    for (const arn of await this.revisions(name)) {
      await this.tolerating(["ClientException"], () =>
        this.ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: arn })),
      );
    }
  }

  // ---- task definition ----------------------------------------------------------------------------

  /** The deployment's ACTIVE revision, or a new one copied from the template. */
  private async ensureTaskDefinition(spec: DeploymentSpec, family: string): Promise<string> {
    const [existing] = await this.revisions(family);
    if (existing) return existing;
    const { taskDefinition: template } = await this.ecs.send(
      new DescribeTaskDefinitionCommand({ taskDefinition: this.config.templateFamily }),
    );
    const container = template?.containerDefinitions?.find((c) => c.name === SERVER_CONTAINER);
    if (!template || !container) {
      throw new Error(
        `Template task definition ${this.config.templateFamily} has no '${SERVER_CONTAINER}' container`,
      );
    }
    const { taskDefinition } = await this.ecs.send(
      new RegisterTaskDefinitionCommand({
        family,
        taskRoleArn: template.taskRoleArn,
        executionRoleArn: template.executionRoleArn,
        networkMode: template.networkMode,
        requiresCompatibilities: template.requiresCompatibilities,
        cpu: template.cpu,
        memory: template.memory,
        volumes: template.volumes,
        placementConstraints: template.placementConstraints,
        ipcMode: template.ipcMode,
        pidMode: template.pidMode,
        containerDefinitions: [serverContainer(container, spec, family)],
        tags: tags(spec),
      }),
    );
    if (!taskDefinition?.taskDefinitionArn)
      throw new Error(`RegisterTaskDefinition returned no ARN for ${family}`);
    return taskDefinition.taskDefinitionArn;
  }

  /** ARNs of the family's ACTIVE revisions, newest first. */
  private async revisions(family: string): Promise<string[]> {
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.ecs.send(
        new ListTaskDefinitionsCommand({ familyPrefix: family, status: "ACTIVE", sort: "DESC", nextToken }),
      );
      // `familyPrefix` is the whole family name; the check guards against a service that read it as a prefix.
      arns.push(...(page.taskDefinitionArns ?? []).filter((arn) => familyOf(arn) === family));
      nextToken = page.nextToken;
    } while (nextToken);
    return arns;
  }

  // ---- Cloud Map ----------------------------------------------------------------------------------

  /**
   * Creates the deployment's Cloud Map service: A records of the tasks' addresses, whose health ECS
   * reports from the container health check (a custom health check), so the name resolves to healthy
   * servers only. A service made by an earlier attempt is returned by the "already exists" error itself
   * (no `CreatorRequestId` of ours: one reused after a release could answer with the deleted service).
   */
  private async ensureRegistry(name: string): Promise<string> {
    try {
      const { Service: created } = await this.discovery.send(
        new CreateRegistryCommand({
          Name: name,
          NamespaceId: this.config.namespaceId,
          Description: "A model deployment's server (ECS service of the same name)",
          DnsConfig: { RoutingPolicy: "MULTIVALUE", DnsRecords: [{ Type: "A", TTL: 10 }] },
          HealthCheckCustomConfig: { FailureThreshold: 1 },
        }),
      );
      if (!created?.Arn) throw new Error(`Cloud Map CreateService returned no ARN for ${name}`);
      return created.Arn;
    } catch (error) {
      const arn = (error as { ServiceArn?: string }).ServiceArn;
      if (isNamed(error, "ServiceAlreadyExists") && arn) return arn;
      throw error;
    }
  }

  /** Ids of Cloud Map services of this name in the namespace (when the ECS service no longer says). */
  private async findRegistries(name: string): Promise<string[]> {
    const ids: string[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.discovery.send(
        new ListRegistriesCommand({
          Filters: [{ Name: "NAMESPACE_ID", Values: [this.config.namespaceId], Condition: "EQ" }],
          NextToken,
        }),
      );
      for (const service of page.Services ?? [])
        if (service.Name === name && service.Id) ids.push(service.Id);
      NextToken = page.NextToken;
    } while (NextToken);
    return ids;
  }

  /**
   * Deletes a Cloud Map service. One with instances left (tasks still stopping) cannot be deleted: its
   * instances are deregistered and the deletion tried again a few times; still in use after that, the
   * error propagates and the message is redelivered later.
   */
  private async deleteRegistry(id: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.discovery.send(new DeleteRegistryCommand({ Id: id }));
        return;
      } catch (error) {
        if (isNamed(error, "ServiceNotFound")) return;
        if (!isNamed(error, "ResourceInUse") || attempt >= REGISTRY_DELETE_ATTEMPTS) throw error;
      }
      if (attempt === 1) await this.deregisterInstances(id);
      await this.sleep(this.registryRetryMs);
    }
  }

  private async deregisterInstances(serviceId: string): Promise<void> {
    let NextToken: string | undefined;
    do {
      const page = await this.tolerating(["ServiceNotFound"], () =>
        this.discovery.send(new ListInstancesCommand({ ServiceId: serviceId, NextToken })),
      );
      for (const instance of page?.Instances ?? []) {
        if (!instance.Id) continue;
        await this.tolerating(["InstanceNotFound", "ServiceNotFound"], () =>
          this.discovery.send(
            new DeregisterInstanceCommand({ ServiceId: serviceId, InstanceId: instance.Id }),
          ),
        );
      }
      NextToken = page?.NextToken;
    } while (NextToken);
  }

  // ---- ECS service ----------------------------------------------------------------------------------

  /** The service of this name in any status (ECS keeps describing INACTIVE ones a while), or undefined. */
  private async describeService(name: string): Promise<Service | undefined> {
    const { services } = await this.ecs.send(
      new DescribeServicesCommand({ cluster: this.config.cluster, services: [name] }),
    );
    return services?.find((service) => service.serviceName === name);
  }

  private async runningTasks(name: string): Promise<Task[]> {
    const { taskArns } = await this.ecs.send(
      new ListTasksCommand({ cluster: this.config.cluster, serviceName: name, desiredStatus: "RUNNING" }),
    );
    if (!taskArns?.length) return [];
    const { tasks } = await this.ecs.send(
      new DescribeTasksCommand({ cluster: this.config.cluster, tasks: taskArns }),
    );
    return tasks ?? [];
  }

  /** Runs `call`; an error of one of `names` means the thing is already gone: undefined. */
  private async tolerating<T>(names: readonly string[], call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      if (names.some((n) => isNamed(error, n))) return undefined;
      throw error;
    }
  }
}

/** The ECS errors of a service that is deleted or being deleted. */
const SERVICE_GONE = ["ServiceNotFoundException", "ServiceNotActiveException"];

const isLiveOrDraining = (service: Service | undefined): boolean =>
  service?.status === "ACTIVE" || service?.status === "DRAINING";

function isNamed(error: unknown, name: string): boolean {
  return typeof error === "object" && error !== null && (error as { name?: unknown }).name === name;
}

/** `arn:aws:ecs:…:task-definition/{family}:{revision}` → family. */
function familyOf(arn: string): string {
  const resource = arn.slice(arn.indexOf("task-definition/") + "task-definition/".length);
  return resource.slice(0, resource.lastIndexOf(":"));
}

/** Cloud Map service ids from the ECS service's registries (`arn:…:service/srv-…`). */
function registryIds(service: Service | undefined): string[] {
  return (service?.serviceRegistries ?? [])
    .map((registry) => registry.registryArn?.split("/").pop())
    .filter((id): id is string => Boolean(id));
}

function tags(spec: DeploymentSpec): Tag[] {
  return [
    { key: "modelCode", value: spec.modelCode },
    { key: "deploymentId", value: spec.deploymentId },
    { key: "tenantId", value: spec.tenantId },
  ];
}

/**
 * The template's container with the model's environment (the inference image's variables, see
 * batch-images/inference/README.md) and GPUs; its log streams are named after the deployment.
 */
export function serverContainer(
  template: ContainerDefinition,
  spec: DeploymentSpec,
  name: string,
): ContainerDefinition {
  const model: Record<string, string> = {
    BASE_MODEL: spec.baseModel,
    SERVED_MODEL_NAME: spec.modelCode,
    MODEL_ARTIFACT_URI: spec.artifactUri,
    [CONFIG_ENV.modelFamily]: spec.family,
    TENSOR_PARALLEL_SIZE: String(spec.tensorParallelSize),
  };
  const environment: KeyValuePair[] = [
    ...(template.environment ?? []).filter((pair) => !pair.name || !(pair.name in model)),
    ...Object.entries(model).map(([key, value]) => ({ name: key, value })),
  ];
  const resourceRequirements = [
    ...(template.resourceRequirements ?? []).filter((requirement) => requirement.type !== "GPU"),
    ...(spec.gpus > 0 ? [{ type: "GPU" as const, value: String(spec.gpus) }] : []),
  ];
  const logConfiguration = template.logConfiguration && {
    ...template.logConfiguration,
    options: { ...template.logConfiguration.options, "awslogs-stream-prefix": name },
  };
  return {
    ...template,
    environment,
    ...(resourceRequirements.length > 0 ? { resourceRequirements } : { resourceRequirements: undefined }),
    ...(logConfiguration ? { logConfiguration } : {}),
  };
}

/**
 * A failed rollout, for the tenant: ECS's reason names the circuit breaker and deployment ids, which are
 * internals; what it means is that the server kept failing.
 */
export function rolloutFailure(reason: string | undefined): string {
  if (reason && /health/i.test(reason)) return "its server kept failing its health check";
  return "its server failed to start repeatedly";
}

/**
 * Where a starting server is, for the deployer's log and the tenant: from its task's lifecycle status
 * (a capacity provider's task waits in PROVISIONING for its instance), else the service's latest event
 * (newest first). ECS's own messages name ARNs and ids: none is passed on.
 */
export function startingDetail(service: Service, tasks: readonly Task[], instanceType: string): string {
  const statuses = new Set(tasks.map((task) => task.lastStatus));
  if (statuses.has("RUNNING")) return "its server is running and loading the model";
  if (statuses.has("PENDING") || statuses.has("ACTIVATING")) {
    return "its server is starting (pulling the image)";
  }
  if (statuses.has("PROVISIONING")) return `waiting for a ${instanceType} instance`;
  const latest = service.events?.[0]?.message ?? "";
  if (/unable to place a task/i.test(latest)) return `waiting for a ${instanceType} instance`;
  return "waiting for its task to be scheduled";
}

/** The runtime's configuration from the environment the CDK construct sets (`CONFIG_ENV`). */
export function ecsRuntimeFromEnv(env: Env = process.env): EcsRuntimeConfig {
  const subnets = requiredJsonEnv("deploymentSubnets", env);
  const capacityProviders = requiredJsonEnv("deploymentCapacityProviders", env);
  if (!Array.isArray(subnets) || !subnets.every((s) => typeof s === "string") || subnets.length === 0) {
    throw new Error(`${CONFIG_ENV.deploymentSubnets} must be a JSON array of subnet ids`);
  }
  if (
    typeof capacityProviders !== "object" ||
    capacityProviders === null ||
    Array.isArray(capacityProviders) ||
    !Object.values(capacityProviders).every((v) => typeof v === "string")
  ) {
    throw new Error(
      `${CONFIG_ENV.deploymentCapacityProviders} must be a JSON object of instance type → name`,
    );
  }
  return {
    cluster: requiredConfigEnv("deploymentCluster", env),
    templateFamily: requiredConfigEnv("deploymentTaskFamily", env),
    subnets: subnets as string[],
    securityGroup: requiredConfigEnv("deploymentSecurityGroup", env),
    namespaceId: requiredConfigEnv("deploymentNamespaceId", env),
    namespaceName: requiredConfigEnv("deploymentNamespaceName", env),
    capacityProviders: capacityProviders as Record<string, string>,
  };
}
