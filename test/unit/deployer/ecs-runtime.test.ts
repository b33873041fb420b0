import {
  CreateServiceCommand,
  DeleteServiceCommand,
  DeregisterTaskDefinitionCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  ECSClient,
  InvalidParameterException,
  ListTaskDefinitionsCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  type Service,
  ServiceNotActiveException,
  ServiceNotFoundException,
  type TaskDefinition,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import {
  CreateServiceCommand as CreateRegistryCommand,
  DeleteServiceCommand as DeleteRegistryCommand,
  DeregisterInstanceCommand,
  ListInstancesCommand,
  ListServicesCommand as ListRegistriesCommand,
  ResourceInUse,
  ServiceAlreadyExists,
  ServiceDiscoveryClient,
  ServiceNotFound,
} from "@aws-sdk/client-servicediscovery";
import type { Context, SQSRecord } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import {
  deploymentName,
  EcsDeploymentRuntime,
  type EcsRuntimeConfig,
  ecsRuntimeFromEnv,
} from "../../../lambdas/aws/ecs-deployment-runtime.ts";
import type { DeploymentRuntime, DeploymentSpec } from "../../../lambdas/core/deployments/deployment.ts";
import type { DeployerDependencies } from "../../../lambdas/deployer/deploy.ts";
import { deployerHandler } from "../../../lambdas/deployer/index.ts";

const ecs = mockClient(ECSClient);
const discovery = mockClient(ServiceDiscoveryClient);

const CONFIG: EcsRuntimeConfig = {
  cluster: "ft-cluster",
  templateFamily: "ft-model-server",
  subnets: ["subnet-a", "subnet-b"],
  securityGroup: "sg-servers",
  namespaceId: "ns-123",
  namespaceName: "deployments.ft.internal",
  capacityProviders: { "g6.2xlarge": "cp-g6", "g5.12xlarge": "cp-g5-12" },
};

const SPEC: DeploymentSpec = {
  modelCode: "acme-full-1",
  deploymentId: "dep-0123456789abcdefghijk",
  tenantId: "tenant-acme",
  baseModel: "qwen2.5-7b-instruct",
  family: "chatml",
  artifactUri: "s3://artifacts/tenants/tenant-acme/jobs/ftjob-1/model/",
  tensorParallelSize: 4,
  instanceType: "g5.12xlarge",
  gpus: 4,
};
const NAME = "ftm-dep-0123456789abcdefghijk";
const FAMILY_ARN = `arn:aws:ecs:us-east-1:123456789012:task-definition/${NAME}:1`;
const REGISTRY_ARN = "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-abc";

const TEMPLATE: TaskDefinition = {
  taskDefinitionArn: "arn:aws:ecs:us-east-1:123456789012:task-definition/ft-model-server:7",
  family: "ft-model-server",
  revision: 7,
  status: "ACTIVE",
  taskRoleArn: "arn:aws:iam::123456789012:role/task",
  executionRoleArn: "arn:aws:iam::123456789012:role/execution",
  networkMode: "awsvpc",
  requiresCompatibilities: ["EC2"],
  containerDefinitions: [
    {
      name: "vllm",
      image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-inference:1",
      essential: true,
      memoryReservation: 4096,
      portMappings: [{ containerPort: 8080, protocol: "tcp" }],
      environment: [
        { name: "PORT", value: "8080" },
        { name: "BASE_MODEL", value: "placeholder" },
      ],
      logConfiguration: {
        logDriver: "awslogs",
        options: { "awslogs-group": "servers", "awslogs-stream-prefix": "server" },
      },
      healthCheck: { command: ["CMD", "python3", "-c", "…"], startPeriod: 300, interval: 30, retries: 10 },
      linuxParameters: { sharedMemorySize: 16384 },
    },
  ],
};

function service(overrides: Partial<Service> = {}): Service {
  return {
    serviceName: NAME,
    status: "ACTIVE",
    desiredCount: 1,
    runningCount: 0,
    pendingCount: 0,
    serviceRegistries: [{ registryArn: REGISTRY_ARN }],
    deployments: [{ status: "PRIMARY", rolloutState: "IN_PROGRESS" }],
    events: [],
    ...overrides,
  };
}

const runtime = () =>
  new EcsDeploymentRuntime(ecs as never, discovery as never, CONFIG, { sleep: async () => {} });
const inputs = <T>(calls: { args: [{ input: T }] }[]) => calls.map((call) => call.args[0].input);

beforeEach(() => {
  ecs.reset();
  discovery.reset();
  ecs.on(DescribeServicesCommand).resolves({ services: [], failures: [{ reason: "MISSING" }] });
  ecs.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [] });
  ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: TEMPLATE });
  ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { taskDefinitionArn: FAMILY_ARN } });
  ecs.on(CreateServiceCommand).resolves({ service: service() });
  ecs.on(ListTasksCommand).resolves({ taskArns: [] });
  discovery.on(CreateRegistryCommand).resolves({ Service: { Id: "srv-abc", Arn: REGISTRY_ARN } });
});

describe("deployment names", () => {
  it("names every resource of a deployment ftm-{deploymentId}, a DNS label", () => {
    expect(deploymentName(SPEC.deploymentId)).toBe(NAME);
  });

  it("keeps odd or long ids apart within 63 characters", () => {
    const long = deploymentName(`dep-${"x".repeat(80)}`);
    expect(long).toMatch(/^ftm-dep-x+-[0-9a-f]{8}$/);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(deploymentName("Dep_1")).not.toBe(deploymentName("dep-1"));
    expect(deploymentName("Dep_1")).toMatch(/^[a-z0-9-]+$/);
  });
});

describe("start", () => {
  it("registers the deployment's own revision of the template with the model's environment and GPUs", async () => {
    await runtime().start(SPEC);

    expect(inputs(ecs.commandCalls(DescribeTaskDefinitionCommand))).toEqual([
      { taskDefinition: "ft-model-server" },
    ]);
    const [registered] = inputs(ecs.commandCalls(RegisterTaskDefinitionCommand));
    expect(registered).toMatchObject({
      family: NAME,
      taskRoleArn: TEMPLATE.taskRoleArn,
      executionRoleArn: TEMPLATE.executionRoleArn,
      networkMode: "awsvpc",
      requiresCompatibilities: ["EC2"],
    });
    const container = registered!.containerDefinitions![0]!;
    expect(container).toMatchObject({
      name: "vllm",
      image: TEMPLATE.containerDefinitions![0]!.image,
      portMappings: [{ containerPort: 8080, protocol: "tcp" }],
      healthCheck: TEMPLATE.containerDefinitions![0]!.healthCheck,
      linuxParameters: { sharedMemorySize: 16384 },
      resourceRequirements: [{ type: "GPU", value: "4" }],
    });
    expect(Object.fromEntries(container.environment!.map((e) => [e.name, e.value]))).toEqual({
      PORT: "8080",
      BASE_MODEL: "qwen2.5-7b-instruct",
      SERVED_MODEL_NAME: "acme-full-1",
      MODEL_ARTIFACT_URI: SPEC.artifactUri,
      MODEL_FAMILY: "chatml",
      TENSOR_PARALLEL_SIZE: "4",
    });
    expect(container.logConfiguration!.options).toEqual({
      "awslogs-group": "servers",
      "awslogs-stream-prefix": NAME,
    });
    expect(registered!.tags).toEqual([
      { key: "modelCode", value: "acme-full-1" },
      { key: "deploymentId", value: SPEC.deploymentId },
      { key: "tenantId", value: "tenant-acme" },
    ]);
    // Read-only fields of the description are not sent back.
    expect(registered).not.toHaveProperty("revision");
    expect(registered).not.toHaveProperty("taskDefinitionArn");
  });

  it("reserves no GPU for a server planned on CPU", async () => {
    await runtime().start({ ...SPEC, gpus: 0, tensorParallelSize: 1, instanceType: "g6.2xlarge" });
    const container = inputs(ecs.commandCalls(RegisterTaskDefinitionCommand))[0]!.containerDefinitions![0]!;
    expect(container.resourceRequirements).toBeUndefined();
  });

  it("creates an A-record Cloud Map service and an ECS service on the planned type's capacity provider", async () => {
    await runtime().start(SPEC);

    expect(inputs(discovery.commandCalls(CreateRegistryCommand))).toEqual([
      expect.objectContaining({
        Name: NAME,
        NamespaceId: "ns-123",
        DnsConfig: { RoutingPolicy: "MULTIVALUE", DnsRecords: [{ Type: "A", TTL: 10 }] },
        HealthCheckCustomConfig: { FailureThreshold: 1 },
      }),
    ]);
    const [created] = inputs(ecs.commandCalls(CreateServiceCommand));
    expect(created).toMatchObject({
      cluster: "ft-cluster",
      serviceName: NAME,
      taskDefinition: FAMILY_ARN,
      desiredCount: 1,
      capacityProviderStrategy: [{ capacityProvider: "cp-g5-12", weight: 1 }],
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: ["subnet-a", "subnet-b"],
          securityGroups: ["sg-servers"],
          assignPublicIp: "DISABLED",
        },
      },
      serviceRegistries: [{ registryArn: REGISTRY_ARN }],
      deploymentConfiguration: { deploymentCircuitBreaker: { enable: true, rollback: false } },
      propagateTags: "SERVICE",
      enableECSManagedTags: true,
    });
    expect(created!.launchType).toBeUndefined();
    expect(created!.tags).toContainEqual({ key: "tenantId", value: "tenant-acme" });
  });

  it("refuses an instance type without a capacity provider before creating anything", async () => {
    await expect(runtime().start({ ...SPEC, instanceType: "p5.48xlarge" })).rejects.toThrow(
      /No capacity provider for instance type p5\.48xlarge/,
    );
    expect(ecs.commandCalls(RegisterTaskDefinitionCommand)).toHaveLength(0);
    expect(discovery.commandCalls(CreateRegistryCommand)).toHaveLength(0);
  });
});

describe("start, retried", () => {
  it("creates nothing twice when the service an earlier start made is there", async () => {
    const r = runtime();
    await r.start(SPEC);
    ecs.on(DescribeServicesCommand).resolves({ services: [service()] });
    await r.start(SPEC);

    expect(ecs.commandCalls(RegisterTaskDefinitionCommand)).toHaveLength(1);
    expect(discovery.commandCalls(CreateRegistryCommand)).toHaveLength(1);
    expect(ecs.commandCalls(CreateServiceCommand)).toHaveLength(1);
  });

  it("reuses the revision and the Cloud Map service of an attempt that failed before the ECS service", async () => {
    ecs.on(ListTaskDefinitionsCommand).resolves({
      taskDefinitionArns: [FAMILY_ARN, "arn:aws:ecs:us-east-1:123456789012:task-definition/ftm-other:1"],
    });
    discovery.on(CreateRegistryCommand).rejects(
      new ServiceAlreadyExists({
        message: "exists",
        $metadata: {},
        ServiceId: "srv-abc",
        ServiceArn: REGISTRY_ARN,
      }),
    );
    await runtime().start(SPEC);

    expect(inputs(ecs.commandCalls(ListTaskDefinitionsCommand))[0]).toMatchObject({
      familyPrefix: NAME,
      status: "ACTIVE",
    });
    expect(ecs.commandCalls(RegisterTaskDefinitionCommand)).toHaveLength(0);
    expect(inputs(ecs.commandCalls(CreateServiceCommand))[0]).toMatchObject({
      taskDefinition: FAMILY_ARN,
      serviceRegistries: [{ registryArn: REGISTRY_ARN }],
    });
  });

  it("accepts ECS's 'not idempotent' error when a concurrent start created the service", async () => {
    ecs
      .on(DescribeServicesCommand)
      .resolvesOnce({ services: [], failures: [{ reason: "MISSING" }] })
      .resolves({ services: [service()] });
    ecs
      .on(CreateServiceCommand)
      .rejects(
        new InvalidParameterException({ message: "Creation of service was not idempotent.", $metadata: {} }),
      );
    await expect(runtime().start(SPEC)).resolves.toBeUndefined();
  });

  it("touches neither a draining service nor creates a new one over it", async () => {
    ecs.on(DescribeServicesCommand).resolves({ services: [service({ status: "DRAINING" })] });
    await runtime().start(SPEC);
    expect(ecs.commandCalls(CreateServiceCommand)).toHaveLength(0);
    expect(ecs.commandCalls(RegisterTaskDefinitionCommand)).toHaveLength(0);
  });

  it("creates the service again once an old one of the name is INACTIVE", async () => {
    ecs.on(DescribeServicesCommand).resolves({ services: [service({ status: "INACTIVE" })] });
    await runtime().start(SPEC);
    expect(ecs.commandCalls(CreateServiceCommand)).toHaveLength(1);
  });

  it("rethrows other creation errors, so the deployer tries again at its next check", async () => {
    ecs
      .on(CreateServiceCommand)
      .rejects(
        new InvalidParameterException({ message: "The capacity provider is not associated", $metadata: {} }),
      );
    await expect(runtime().start(SPEC)).rejects.toThrow(/capacity provider/);
  });
});

describe("probe", () => {
  const ENDPOINT = `http://${NAME}.deployments.ft.internal:8080/v1`;

  it("waits for capacity while ECS cannot place the task", async () => {
    ecs.on(DescribeServicesCommand).resolves({
      services: [
        service({
          events: [
            {
              message: `(service ${NAME}) was unable to place a task because no container instance met all of its requirements.`,
            },
          ],
        }),
      ],
    });
    expect(await runtime().probe(SPEC)).toEqual({
      state: "starting",
      detail: "waiting for a g5.12xlarge instance",
    });
  });

  it("waits for capacity while the capacity provider's task is provisioning its instance", async () => {
    const taskArn = "arn:aws:ecs:us-east-1:123456789012:task/ft-cluster/abc";
    ecs.on(DescribeServicesCommand).resolves({ services: [service({ pendingCount: 1 })] });
    ecs.on(ListTasksCommand).resolves({ taskArns: [taskArn] });
    ecs
      .on(DescribeTasksCommand)
      .resolvesOnce({ tasks: [{ taskArn, lastStatus: "PROVISIONING" }] })
      .resolves({ tasks: [{ taskArn, lastStatus: "PENDING" }] });
    const r = runtime();

    expect(await r.probe(SPEC)).toEqual({ state: "starting", detail: "waiting for a g5.12xlarge instance" });
    expect(await r.probe(SPEC)).toEqual({
      state: "starting",
      detail: "its server is starting (pulling the image)",
    });
  });

  it("is starting while the task runs without a healthy health check, then healthy with the endpoint", async () => {
    const taskArn = "arn:aws:ecs:us-east-1:123456789012:task/ft-cluster/abc";
    ecs.on(DescribeServicesCommand).resolves({ services: [service({ runningCount: 1 })] });
    ecs.on(ListTasksCommand).resolves({ taskArns: [taskArn] });
    ecs
      .on(DescribeTasksCommand)
      .resolvesOnce({ tasks: [{ taskArn, lastStatus: "RUNNING", healthStatus: "UNKNOWN" }] })
      .resolves({ tasks: [{ taskArn, lastStatus: "RUNNING", healthStatus: "HEALTHY" }] });
    const r = runtime();

    expect(await r.probe(SPEC)).toEqual({
      state: "starting",
      detail: "its server is running and loading the model",
    });
    expect(await r.probe(SPEC)).toEqual({ state: "healthy", endpoint: ENDPOINT });
    expect(inputs(ecs.commandCalls(ListTasksCommand))[0]).toEqual({
      cluster: "ft-cluster",
      serviceName: NAME,
      desiredStatus: "RUNNING",
    });
    expect(inputs(ecs.commandCalls(DescribeTasksCommand))[0]).toEqual({
      cluster: "ft-cluster",
      tasks: [taskArn],
    });
  });

  it("fails with a tenant-safe reason when the circuit breaker stops the rollout", async () => {
    ecs.on(DescribeServicesCommand).resolves({
      services: [
        service({
          deployments: [
            {
              status: "PRIMARY",
              rolloutState: "FAILED",
              rolloutStateReason: "ECS deployment circuit breaker: tasks failed to start. ecs-svc/1234567890",
            },
          ],
        }),
      ],
    });
    const probe = await runtime().probe(SPEC);
    expect(probe).toEqual({ state: "failed", reason: "its server failed to start repeatedly" });
    expect(JSON.stringify(probe)).not.toMatch(/arn:|ecs-svc/);
  });

  it("fails when the service is gone or being deleted", async () => {
    expect(await runtime().probe(SPEC)).toEqual({ state: "failed", reason: "its server was removed" });
    ecs.on(DescribeServicesCommand).resolves({ services: [service({ status: "DRAINING" })] });
    expect(await runtime().probe(SPEC)).toEqual({ state: "failed", reason: "its server was removed" });
  });
});

describe("release", () => {
  beforeEach(() => {
    ecs.on(DescribeServicesCommand).resolves({ services: [service({ runningCount: 1 })] });
    ecs.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [FAMILY_ARN] });
  });

  it("scales to zero, deletes the service, its Cloud Map service and its task definition", async () => {
    await runtime().release(SPEC);

    expect(inputs(ecs.commandCalls(UpdateServiceCommand))).toEqual([
      { cluster: "ft-cluster", service: NAME, desiredCount: 0 },
    ]);
    expect(inputs(ecs.commandCalls(DeleteServiceCommand))).toEqual([
      { cluster: "ft-cluster", service: NAME, force: true },
    ]);
    expect(inputs(discovery.commandCalls(DeleteRegistryCommand))).toEqual([{ Id: "srv-abc" }]);
    expect(inputs(ecs.commandCalls(DeregisterTaskDefinitionCommand))).toEqual([
      { taskDefinition: FAMILY_ARN },
    ]);
  });

  it("deregisters leftover instances when Cloud Map finds the service still in use, then deletes it", async () => {
    discovery
      .on(DeleteRegistryCommand)
      .rejectsOnce(new ResourceInUse({ message: "in use", $metadata: {} }))
      .resolves({});
    discovery.on(ListInstancesCommand).resolves({ Instances: [{ Id: "task-1" }] });
    await runtime().release(SPEC);

    expect(inputs(discovery.commandCalls(DeregisterInstanceCommand))).toEqual([
      { ServiceId: "srv-abc", InstanceId: "task-1" },
    ]);
    expect(discovery.commandCalls(DeleteRegistryCommand)).toHaveLength(2);
  });

  it("gives up for now when the instances never go, so the message is retried", async () => {
    discovery.on(DeleteRegistryCommand).rejects(new ResourceInUse({ message: "in use", $metadata: {} }));
    discovery.on(ListInstancesCommand).resolves({ Instances: [] });
    await expect(runtime().release(SPEC)).rejects.toThrow(/in use/);
  });

  it("is a no-op on what is already gone: not-found errors are tolerated", async () => {
    ecs
      .on(UpdateServiceCommand)
      .rejects(new ServiceNotActiveException({ message: "draining", $metadata: {} }));
    ecs.on(DeleteServiceCommand).rejects(new ServiceNotFoundException({ message: "gone", $metadata: {} }));
    discovery.on(DeleteRegistryCommand).rejects(new ServiceNotFound({ message: "gone", $metadata: {} }));
    await expect(runtime().release(SPEC)).resolves.toBeUndefined();
    expect(ecs.commandCalls(DeregisterTaskDefinitionCommand)).toHaveLength(1);
  });

  it("finds the Cloud Map service by name when the ECS service is long gone, and twice is fine", async () => {
    ecs.on(DescribeServicesCommand).resolves({ services: [], failures: [{ reason: "MISSING" }] });
    ecs.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [] });
    discovery.on(ListRegistriesCommand).resolves({
      Services: [
        { Id: "srv-other", Name: "ftm-dep-other" },
        { Id: "srv-abc", Name: NAME },
      ],
    });
    const r = runtime();
    await r.release(SPEC);
    discovery.on(ListRegistriesCommand).resolves({ Services: [] });
    await r.release(SPEC);

    expect(ecs.commandCalls(UpdateServiceCommand)).toHaveLength(0);
    expect(ecs.commandCalls(DeleteServiceCommand)).toHaveLength(0);
    expect(inputs(discovery.commandCalls(ListRegistriesCommand))[0]).toMatchObject({
      Filters: [{ Name: "NAMESPACE_ID", Values: ["ns-123"], Condition: "EQ" }],
    });
    expect(inputs(discovery.commandCalls(DeleteRegistryCommand))).toEqual([{ Id: "srv-abc" }]);
  });
});

describe("configuration", () => {
  const ENV = {
    DEPLOYMENT_CLUSTER: "ft-cluster",
    DEPLOYMENT_TASK_FAMILY: "ft-model-server",
    DEPLOYMENT_SUBNETS: '["subnet-a","subnet-b"]',
    DEPLOYMENT_SECURITY_GROUP: "sg-servers",
    DEPLOYMENT_NAMESPACE_ID: "ns-123",
    DEPLOYMENT_NAMESPACE_NAME: "deployments.ft.internal",
    DEPLOYMENT_CAPACITY_PROVIDERS: '{"g6.2xlarge":"cp-g6","g5.12xlarge":"cp-g5-12"}',
  };

  it("reads the construct's variables", () => {
    expect(ecsRuntimeFromEnv(ENV)).toEqual(CONFIG);
  });

  it("fails at cold start on a missing or malformed variable", () => {
    expect(() => ecsRuntimeFromEnv({ ...ENV, DEPLOYMENT_CLUSTER: undefined })).toThrow(/DEPLOYMENT_CLUSTER/);
    expect(() => ecsRuntimeFromEnv({ ...ENV, DEPLOYMENT_SUBNETS: '"subnet-a"' })).toThrow(
      /DEPLOYMENT_SUBNETS/,
    );
    expect(() => ecsRuntimeFromEnv({ ...ENV, DEPLOYMENT_CAPACITY_PROVIDERS: "[]" })).toThrow(
      /DEPLOYMENT_CAPACITY_PROVIDERS/,
    );
  });
});

describe("the deployer's queue handler", () => {
  const record = (messageId: string, body: unknown) =>
    ({
      messageId,
      body: typeof body === "string" ? body : JSON.stringify(body),
      attributes: { ApproximateReceiveCount: "1" },
    }) as unknown as SQSRecord;
  const context = {} as Context;

  it("handles each message and reports only the failed one, so it alone is retried", async () => {
    const released: string[] = [];
    const fakeRuntime: DeploymentRuntime = {
      start: async () => {},
      probe: async () => ({ state: "starting" }),
      release: async (ref) => {
        if (ref.deploymentId === "dep-bad") throw new Error("throttled");
        released.push(ref.deploymentId);
      },
    };
    const deps = {
      store: { getModel: async () => undefined, updateDeployment: async () => true },
      runtime: fakeRuntime,
      queue: { send: async () => {} },
      catalog: [],
      checkDelaySeconds: 1,
    } as unknown as DeployerDependencies;
    const handler = deployerHandler(() => deps);

    const response = await handler(
      {
        Records: [
          record("m1", { action: "release", modelCode: "acme-full-1", deploymentId: "dep-good" }),
          record("m2", { action: "release", modelCode: "acme-full-1", deploymentId: "dep-bad" }),
          record("m3", "not json"),
        ],
      },
      context,
    );

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m2" }]);
    expect(released).toEqual(["dep-good"]);
  });
});
