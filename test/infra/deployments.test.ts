import { Match } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { servingCapacities } from "../../infra/constructs/deployments.ts";
import { principalTag, TENANT_READER_ROLE_ENV } from "../../infra/constructs/tenant-scope.ts";
import { CONFIG_ENV } from "../../infra/resources/definitions.ts";
import { DEFAULT_CATALOG, findBaseModel } from "../../lambdas/core/catalog/base-models.ts";
import { INSTANCE_TYPES } from "../../lambdas/core/jobs/resources.ts";
import { synthPlatform } from "./synth.ts";

const ECR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-inference:1";

type Template = ReturnType<typeof synthPlatform>["template"];
type Statement = { Effect?: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

const resourcesOf = (template: Template, type: string, prefix: string) =>
  Object.entries(template.findResources(type)).filter(([id]) => id.startsWith(prefix));

function statementsOf(template: Template, prefix: string): Statement[] {
  return resourcesOf(template, "AWS::IAM::Policy", prefix).flatMap(
    ([, policy]) => policy.Properties.PolicyDocument.Statement as Statement[],
  );
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const statementWith = (statements: Statement[], action: string) =>
  statements.filter((s) => actionsOf(s).includes(action));

function functionOf(template: Template, prefix: string) {
  const found = resourcesOf(template, "AWS::Lambda::Function", prefix);
  expect(found, prefix).toHaveLength(1);
  return found[0]![1];
}

/** The instance types the planner picks for the built-in catalog's full-method models. */
const PLANNED = [
  "g5.12xlarge",
  "g6e.12xlarge",
  "p4d.24xlarge",
  "p4de.24xlarge",
  "g6e.2xlarge",
  "g6.2xlarge",
  "m7i.large",
];

describe("serving capacities", () => {
  it("are the planner's instance types for the catalog's full-method models, each once", () => {
    const capacities = servingCapacities(DEFAULT_CATALOG);
    expect(capacities.map((c) => c.instanceType).sort()).toEqual([...PLANNED].sort());
    expect(capacities.find((c) => c.instanceType === "m7i.large")!.gpu).toBe(false);
    expect(capacities.filter((c) => c.gpu)).toHaveLength(PLANNED.length - 1);
  });

  it("size each type's disk for the image and the largest model planned on it", () => {
    const p4de = servingCapacities(DEFAULT_CATALOG).find((c) => c.instanceType === "p4de.24xlarge")!;
    const largest = findBaseModel("chatglm_130b", DEFAULT_CATALOG)!;
    expect(p4de.volumeGiB).toBeGreaterThanOrEqual((largest.parameters * 2 * 1.2) / 2 ** 30);
    expect(p4de.volumeGiB % 50).toBe(0);
  });

  it("skip a model no configured type can serve (the API refuses its deployment)", () => {
    const small = INSTANCE_TYPES.filter((t) => t.name === "g6.2xlarge");
    const capacities = servingCapacities(DEFAULT_CATALOG, small);
    expect(capacities.map((c) => c.instanceType).sort()).toEqual(["g6.2xlarge", "m7i.large"]);
  });
});

describe("deployments construct (with private inference servers)", () => {
  const { template, violations } = synthPlatform({
    env: { account: "123456789012", region: "us-east-1" },
    inference: { servers: ["glm-4-9b-chat"], imageUri: ECR_IMAGE },
  });

  it("adds one capacity provider per planned instance type to the inference servers' cluster", () => {
    template.resourceCountIs("AWS::ECS::Cluster", 1);
    const providers = resourcesOf(template, "AWS::ECS::CapacityProvider", "Deployments");
    expect(providers).toHaveLength(PLANNED.length);
    for (const [, provider] of providers) {
      expect(provider.Properties.AutoScalingGroupProvider.ManagedScaling).toMatchObject({
        Status: "ENABLED",
      });
    }
    const association = Object.values(
      template.findResources("AWS::ECS::ClusterCapacityProviderAssociations"),
    );
    expect(association).toHaveLength(1);
    const associated = JSON.stringify(association[0]!.Properties.CapacityProviders);
    for (const [id] of providers) expect(associated).toContain(id);
    expect(association[0]!.Properties.Cluster).toEqual({
      Ref: expect.stringMatching(/^ChatInferenceCluster/),
    });
  });

  it("starts each type's instances from zero, IMDSv2 only, on encrypted disks, with the GPU AMI on GPU types", () => {
    const groups = resourcesOf(template, "AWS::AutoScaling::AutoScalingGroup", "Deployments");
    expect(groups).toHaveLength(PLANNED.length);
    for (const [, group] of groups) expect(group.Properties.MinSize).toBe("0");
    const templates = resourcesOf(template, "AWS::EC2::LaunchTemplate", "Deployments").map(
      ([, lt]) => lt.Properties.LaunchTemplateData,
    );
    expect(templates.map((data) => data.InstanceType).sort()).toEqual([...PLANNED].sort());
    const parameters = template.toJSON().Parameters as Record<string, { Default?: string }>;
    for (const data of templates) {
      expect(data.MetadataOptions.HttpTokens).toBe("required");
      expect(data.BlockDeviceMappings[0].Ebs).toMatchObject({ Encrypted: true, VolumeType: "gp3" });
      const ami = parameters[data.ImageId.Ref as string]!.Default!;
      expect(ami).toContain("amazon-linux-2023");
      expect(ami.includes("/gpu/")).toBe(data.InstanceType !== "m7i.large");
    }
  });

  it("has a private DNS namespace in the VPC for the servers' names", () => {
    template.hasResourceProperties("AWS::ServiceDiscovery::PrivateDnsNamespace", {
      Name: "deployments.ft.internal",
      Vpc: { Ref: Match.stringLikeRegexp("^NetworkVpc") },
    });
  });

  it("defines the template task definition: the inference image on 8080 with a long-started health check", () => {
    const definitions = resourcesOf(template, "AWS::ECS::TaskDefinition", "DeploymentsServerTemplate");
    expect(definitions).toHaveLength(1);
    const properties = definitions[0]![1].Properties;
    expect(properties).toMatchObject({ NetworkMode: "awsvpc", RequiresCompatibilities: ["EC2"] });
    const container = (properties.ContainerDefinitions as Record<string, unknown>[])[0]!;
    expect(container).toMatchObject({
      Name: "vllm",
      PortMappings: [expect.objectContaining({ ContainerPort: 8080 })],
      LogConfiguration: expect.objectContaining({ LogDriver: "awslogs" }),
      LinuxParameters: expect.objectContaining({ SharedMemorySize: 16_384 }),
      HealthCheck: expect.objectContaining({ StartPeriod: 300, Retries: 10 }),
    });
    expect(JSON.stringify(container.Image)).toContain("/ft-inference:1");
    expect((container.HealthCheck as { Command: string[] }).Command.join(" ")).toContain(
      "http://127.0.0.1:8080/health",
    );
    // The GPUs are each deployment's own (the deployer's copy); the template reserves none.
    expect(container.ResourceRequirements).toBeUndefined();
  });

  it("lets the servers read full-parameter models' weights only through their tenant's scoped session", () => {
    const statements = statementsOf(template, "DeploymentsServerTaskRole");
    expect(statements.map((s) => s.Action)).toEqual([["sts:AssumeRole", "sts:TagSession"]]);
    const tenant = principalTag("tenantId");
    const reader = statementsOf(template, "DeploymentsTenantModelReaderRole").filter(
      (s) => s.Effect === "Allow",
    );
    expect(reader.map((s) => s.Action)).toEqual(["s3:GetObject", "s3:ListBucket"]);
    expect(JSON.stringify(reader[0]!.Resource)).toContain(`"/tenants/${tenant}/jobs/*/model/*"`);
    expect(reader[1]!.Condition).toEqual({
      StringLike: { "s3:prefix": [`tenants/${tenant}/jobs/*/model/*`] },
    });
    const [, templateTask] = Object.entries(template.findResources("AWS::ECS::TaskDefinition")).find(([id]) =>
      id.startsWith("DeploymentsServerTemplate"),
    )!;
    expect(templateTask.Properties.ContainerDefinitions[0].Environment).toContainEqual({
      Name: TENANT_READER_ROLE_ENV,
      Value: { "Fn::GetAtt": [expect.stringMatching(/^DeploymentsTenantModelReaderRole/), "Arn"] },
    });
  });

  it("admits only the chat function to the servers, on 8080", () => {
    const ingress = Object.values(template.findResources("AWS::EC2::SecurityGroupIngress"))
      .map((r) => r.Properties)
      .filter((p) => JSON.stringify(p.GroupId).includes("DeploymentsServerSecurityGroup"));
    expect(ingress).toEqual([
      expect.objectContaining({
        FromPort: 8080,
        ToPort: 8080,
        SourceSecurityGroupId: { "Fn::GetAtt": [expect.stringMatching(/^ChatChatSecurityGroup/), "GroupId"] },
      }),
    ]);
  });

  it("runs the deployer on the deployments queue with partial batch failures and the runtime's configuration", () => {
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: { "Fn::GetAtt": [Match.stringLikeRegexp("^DeploymentsQueue"), "Arn"] },
      FunctionName: { Ref: Match.stringLikeRegexp("^DeploymentsDeployer") },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
    const env = functionOf(template, "DeploymentsDeployer").Properties.Environment.Variables;
    for (const key of [
      "deploymentCluster",
      "deploymentTaskFamily",
      "deploymentSubnets",
      "deploymentSecurityGroup",
      "deploymentNamespaceId",
      "deploymentNamespaceName",
      "deploymentCapacityProviders",
    ] as const) {
      expect(env[CONFIG_ENV[key]], key).toBeDefined();
    }
    expect(env.MODELS_TABLE).toBeDefined();
    expect(env.DEPLOYMENTS_QUEUE_URL).toBeDefined();
    const providers = JSON.stringify(env[CONFIG_ENV.deploymentCapacityProviders]);
    for (const type of PLANNED) expect(providers).toContain(`"${type}`);
  });

  it("passes exactly the servers' two roles, to ECS tasks only", () => {
    const passRole = statementWith(statementsOf(template, "DeploymentsDeployer"), "iam:PassRole");
    expect(passRole).toHaveLength(1);
    expect(passRole[0]!.Resource).toEqual([
      { "Fn::GetAtt": [expect.stringMatching(/^DeploymentsServerTaskRole/), "Arn"] },
      { "Fn::GetAtt": [expect.stringMatching(/^DeploymentsServerExecutionRole/), "Arn"] },
    ]);
    expect(passRole[0]!.Condition).toEqual({
      StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" },
    });
  });

  it("scopes the deployer's ECS and Cloud Map actions to its cluster, its names and its namespace", () => {
    const statements = statementsOf(template, "DeploymentsDeployer");
    const text = (action: string) => JSON.stringify(statementWith(statements, action).map((s) => s.Resource));
    for (const action of [
      "ecs:CreateService",
      "ecs:UpdateService",
      "ecs:DeleteService",
      "ecs:DescribeServices",
    ]) {
      expect(text(action)).toMatch(/service\/","?\{"Ref":"ChatInferenceCluster[0-9A-F]+"\},"\/ftm-\*"/);
    }
    expect(text("ecs:RegisterTaskDefinition")).toContain(":task-definition/ftm-*:*");
    expect(statementWith(statements, "ecs:ListTasks")[0]!.Condition).toEqual({
      ArnEquals: { "ecs:cluster": { "Fn::GetAtt": [expect.stringMatching(/^ChatInferenceCluster/), "Arn"] } },
    });
    expect(statementWith(statements, "servicediscovery:CreateService")[0]!.Condition).toEqual({
      StringEquals: {
        "servicediscovery:NamespaceArn": {
          "Fn::GetAtt": [expect.stringMatching(/^DeploymentsNamespace/), "Arn"],
        },
      },
    });
    expect(statementWith(statements, "ecs:TagResource")[0]!.Condition).toEqual({
      StringEquals: { "ecs:CreateAction": ["CreateService", "RegisterTaskDefinition"] },
    });
    const all = statements.flatMap(actionsOf);
    expect(all.filter((a) => a.endsWith(":*") || a === "*")).toEqual([]);
    expect(all).toEqual(
      expect.arrayContaining(["dynamodb:GetItem", "dynamodb:UpdateItem", "sqs:SendMessage"]),
    );
  });

  it("tells the jobs function that deployments are available and lets it queue them", () => {
    const env = functionOf(template, "ApiJobsApi").Properties.Environment.Variables;
    expect(env[CONFIG_ENV.deploymentsEnabled]).toBe("true");
    expect(env.DEPLOYMENTS_QUEUE_URL).toEqual({ Ref: expect.stringMatching(/^DeploymentsQueue/) });
    const send = statementWith(statementsOf(template, "ApiJobsApiRole"), "sqs:SendMessage").map((s) =>
      JSON.stringify(s.Resource),
    );
    expect(send.some((r) => r.includes("DeploymentsQueue"))).toBe(true);
  });

  it("routes POST and DELETE /v4/models/{model_code}/deploy to the jobs function behind the authorizer", () => {
    const deploy = Object.entries(template.findResources("AWS::ApiGateway::Resource")).filter(
      ([, r]) => r.Properties.PathPart === "deploy",
    );
    expect(deploy).toHaveLength(1);
    const [deployId, resource] = deploy[0]!;
    const parent = resource.Properties.ParentId.Ref as string;
    expect(template.findResources("AWS::ApiGateway::Resource")[parent]!.Properties.PathPart).toBe(
      "{model_code}",
    );
    for (const method of ["POST", "DELETE"]) {
      template.hasResourceProperties("AWS::ApiGateway::Method", {
        HttpMethod: method,
        ResourceId: { Ref: deployId },
        AuthorizationType: "CUSTOM",
        AuthorizerId: { Ref: Match.stringLikeRegexp("^ApiApiKeyAuthorizer") },
        Integration: Match.objectLike({
          Uri: {
            "Fn::Join": [
              "",
              Match.arrayWith([{ "Fn::GetAtt": [Match.stringLikeRegexp("^ApiJobsApi"), "Arn"] }]),
            ],
          },
        }),
      });
    }
  });

  it("reports no unacknowledged cdk-nag finding", () => {
    expect(violations).toEqual([]);
  });
});

describe("without private inference servers", () => {
  const { template } = synthPlatform();

  it("has no deployer and no model-server capacity: the chat function is outside the VPC", () => {
    expect(resourcesOf(template, "AWS::Lambda::Function", "DeploymentsDeployer")).toHaveLength(0);
    template.resourceCountIs("AWS::ECS::CapacityProvider", 0);
    template.resourceCountIs("AWS::ServiceDiscovery::PrivateDnsNamespace", 0);
  });

  it("still gives the jobs function the queue, without the flag: the API can refuse deployments", () => {
    const env = functionOf(template, "ApiJobsApi").Properties.Environment.Variables;
    expect(env.DEPLOYMENTS_QUEUE_URL).toBeDefined();
    expect(env[CONFIG_ENV.deploymentsEnabled]).toBeUndefined();
  });
});

describe("the operator's deployment limits", () => {
  it("reach the jobs function from the stack's props (CDK context deploymentsPerTenant, deploymentTimeoutMinutes)", () => {
    const { template } = synthPlatform({
      inference: { servers: ["glm-4-9b-chat"], imageUri: ECR_IMAGE },
      deployments: { perTenant: 5, timeoutMinutes: 60 },
    });
    const env = functionOf(template, "ApiJobsApi").Properties.Environment.Variables;
    expect(env[CONFIG_ENV.deploymentsPerTenant]).toBe("5");
    expect(env[CONFIG_ENV.deploymentTimeoutMinutes]).toBe("60");
  });
});
