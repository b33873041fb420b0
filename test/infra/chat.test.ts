import { Match } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { principalTag } from "../../infra/constructs/tenant-scope.ts";
import { CHAT_COMPLETIONS_PATH } from "../../lambdas/chat/local.ts";
import { DEFAULT_CATALOG } from "../../lambdas/core/catalog/base-models.ts";
import { filesRoutes } from "../../lambdas/files-api/routes.ts";
import { jobsRoutes } from "../../lambdas/jobs-api/routes.ts";
import { usageRoutes } from "../../lambdas/usage-api/routes.ts";
import { webhooksRoutes } from "../../lambdas/webhooks-api/routes.ts";
import { synthPlatform } from "./synth.ts";

const ECR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-inference:1";

function chatFunction(template: ReturnType<typeof synthPlatform>["template"]) {
  return Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) =>
    id.startsWith("ChatChatFunction"),
  )![1];
}

describe("chat construct", () => {
  const { template } = synthPlatform();

  it("streams from a Function URL that the function authenticates itself", () => {
    template.hasResourceProperties("AWS::Lambda::Url", {
      AuthType: "NONE",
      InvokeMode: "RESPONSE_STREAM",
      TargetFunctionArn: { "Fn::GetAtt": [Match.stringLikeRegexp("^ChatChatFunction"), "Arn"] },
      Cors: Match.objectLike({ AllowMethods: ["POST"] }),
    });
    template.hasOutput("ChatFunctionUrl", {
      Description: "CHAT_URL",
      Value: { "Fn::GetAtt": [Match.stringLikeRegexp("^ChatChatFunctionFunctionUrl"), "FunctionUrl"] },
    });
  });

  it("runs 15 minutes with the models and api-keys tables, outside the VPC without private servers", () => {
    const fn = chatFunction(template);
    expect(fn.Properties.Timeout).toBe(900);
    expect(fn.Properties.MemorySize).toBe(512);
    expect(fn.Properties.VpcConfig).toBeUndefined();
    const env = fn.Properties.Environment.Variables;
    expect(env.MODELS_TABLE).toBeDefined();
    expect(env.API_KEYS_TABLE).toBeDefined();
    expect(env.USAGE_TABLE).toBeDefined();
    expect(env.INFERENCE_ENDPOINTS).toBeDefined();
  });

  it("lets the function read models and api keys by key, add to usage totals and to its token windows, nothing else", () => {
    const statements = Object.entries(template.findResources("AWS::IAM::Policy"))
      .filter(([id]) => id.startsWith("ChatChatFunctionRole"))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[]);
    const dynamo = statements.filter((s) => JSON.stringify(s.Action).includes("dynamodb"));
    expect(dynamo.map((s) => s.Action)).toEqual([
      "dynamodb:GetItem",
      "dynamodb:GetItem",
      "dynamodb:UpdateItem",
      ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    ]);
    expect(JSON.stringify(dynamo.map((s) => s.Resource))).toMatch(
      /StorageModelsTable.*StorageApiKeysTable.*StorageUsageTable.*StorageChatRateTable/,
    );
    // Only the usage table, by ARN: no index, no other table.
    expect(dynamo[2]!.Resource).toEqual({
      "Fn::GetAtt": [expect.stringMatching(/^StorageUsageTable/), "Arn"],
    });
  });

  it("routes POST /v4/chat/completions to it, streamed, behind the API key authorizer", () => {
    template.hasResourceProperties("AWS::ApiGateway::Resource", { PathPart: "completions" });
    template.hasResourceProperties("AWS::ApiGateway::Method", {
      HttpMethod: "POST",
      ResourceId: { Ref: Match.stringLikeRegexp("^ApiRestApiv4chatcompletions") },
      AuthorizationType: "CUSTOM",
      AuthorizerId: { Ref: Match.stringLikeRegexp("^ApiApiKeyAuthorizer") },
      Integration: Match.objectLike({
        Type: "AWS_PROXY",
        ResponseTransferMode: "STREAM",
        TimeoutInMillis: 900_000,
        Uri: {
          "Fn::Join": [
            "",
            Match.arrayWith([
              ":lambda:path/2021-11-15/functions/",
              { "Fn::GetAtt": [Match.stringLikeRegexp("^ChatChatFunction"), "Arn"] },
              "/response-streaming-invocations",
            ]),
          ],
        },
      }),
    });
  });
});

describe("jobs and models routes", () => {
  const { template } = synthPlatform();
  const resources = template.findResources("AWS::ApiGateway::Resource");
  const methods = Object.values(template.findResources("AWS::ApiGateway::Method")).map((m) => m.Properties);

  /** `GET /v4/fine_tuning/jobs/{job_id}` style names of every method. */
  function routes(): string[] {
    const path = (ref: string): string => {
      const resource = resources[ref];
      if (!resource) return "";
      const parent = resource.Properties.ParentId.Ref as string | undefined;
      return `${parent ? path(parent) : ""}/${resource.Properties.PathPart}`;
    };
    return methods
      .filter((m) => m.HttpMethod !== "OPTIONS" && m.HttpMethod !== "ANY")
      .map((m) => `${m.HttpMethod} ${path(m.ResourceId.Ref as string)}`);
  }

  it("serves the jobs and models API behind the authorizer from the jobs function", () => {
    expect(routes()).toEqual(
      expect.arrayContaining([
        "GET /v4/fine_tuning/jobs",
        "POST /v4/fine_tuning/jobs",
        "GET /v4/fine_tuning/jobs/{job_id}",
        "DELETE /v4/fine_tuning/jobs/{job_id}",
        "POST /v4/fine_tuning/jobs/{job_id}/cancel",
        "GET /v4/fine_tuning/jobs/{job_id}/events",
        "GET /v4/fine_tuning/jobs/{job_id}/checkpoints",
        "GET /v4/models",
        "GET /v4/models/{model_code}",
        "POST /v4/models/{model_code}",
        "DELETE /v4/models/{model_code}",
        "POST /v4/models/{model_code}/deploy",
        "DELETE /v4/models/{model_code}/deploy",
        "DELETE /v4/fine_tuning/fine_tuned_models/{model_code}",
        "POST /v4/chat/completions",
      ]),
    );
    const jobsMethods = methods.filter((m) =>
      (JSON.stringify(m.Integration?.Uri) ?? "").includes("ApiJobsApi"),
    );
    // 16 routes on 11 resources (pause and resume included), each resource with its ANY (the 405 path).
    expect(jobsMethods.filter((m) => m.HttpMethod !== "ANY")).toHaveLength(16);
    expect(jobsMethods.filter((m) => m.HttpMethod === "ANY")).toHaveLength(11);
    for (const method of jobsMethods) {
      expect(method.AuthorizationType).toBe("CUSTOM");
      expect(method.AuthorizerId).toEqual({ Ref: expect.stringMatching(/^ApiApiKeyAuthorizer/) });
    }
  });

  it("has exactly the routes of the functions' routers, so the local platform and AWS answer alike", () => {
    // Only the patterns are read: the routers' dependencies are never called.
    const unused = {} as never;
    const routers = [
      ...filesRoutes({ files: unused, datasets: unused, claimForDeletion: unused, quotas: unused }),
      ...jobsRoutes({
        jobs: unused,
        files: unused,
        queue: unused,
        runner: unused,
        artifacts: unused,
        catalog: DEFAULT_CATALOG,
        deployments: unused,
        deploymentQueue: unused,
        deploymentsEnabled: true,
        deploymentsPerTenant: 2,
        deploymentTimeoutSeconds: 60,
        quotas: unused,
      }),
      ...usageRoutes({ usage: unused }),
      ...webhooksRoutes(unused),
      { method: "POST", pattern: CHAT_COMPLETIONS_PATH },
    ].map((route) => `${route.method} ${route.pattern.replace(/\{\w+\}/g, "{}")}`);
    const gateway = routes().map((route) => route.replace(/\{\w+\}/g, "{}"));
    expect([...new Set(gateway)].sort()).toEqual([...new Set(routers)].sort());
  });

  it("hands every other method of a routed path to the path's function (ANY), so its router answers 405 with Allow", () => {
    const byResource = new Map<string, typeof methods>();
    for (const method of methods) {
      const ref = method.ResourceId.Ref as string;
      byResource.set(ref, [...(byResource.get(ref) ?? []), method]);
    }
    expect(byResource.size).toBeGreaterThanOrEqual(15);
    for (const [ref, onResource] of byResource) {
      const any = onResource.filter((m) => m.HttpMethod === "ANY");
      expect(any, ref).toHaveLength(1);
      expect(any[0]).toMatchObject({
        AuthorizationType: "CUSTOM",
        AuthorizerId: { Ref: expect.stringMatching(/^ApiApiKeyAuthorizer/) },
        Integration: { Type: "AWS_PROXY" },
      });
      // The same function (and transfer mode: chat streams) as the resource's declared methods.
      // OPTIONS is the console's CORS preflight, answered by API Gateway (test/infra/console.test.ts).
      for (const declared of onResource.filter((m) => m.HttpMethod !== "ANY" && m.HttpMethod !== "OPTIONS")) {
        expect(any[0]!.Integration.Uri, ref).toEqual(declared.Integration.Uri);
        expect(any[0]!.Integration.ResponseTransferMode, ref).toEqual(
          declared.Integration.ResponseTransferMode,
        );
      }
    }
  });

  it("lets API Gateway invoke each function from its ANY methods with one API-wide permission, keeping resource policies small", () => {
    const permissions = Object.values(template.findResources("AWS::Lambda::Permission")).map(
      (p) => p.Properties,
    );
    const apiScoped = permissions
      .filter((p) => (JSON.stringify(p.SourceArn) ?? "").endsWith('/*/*/*"]]}'))
      .map((p) => (p.FunctionName["Fn::GetAtt"][0] as string).replace(/[0-9A-F]{8}$/, ""))
      .sort();
    expect(apiScoped).toEqual([
      "ApiFilesApi",
      "ApiJobsApi",
      "ApiUsageApi",
      "ChatChatFunction",
      "WebhooksWebhooksApi",
    ]);
    // Lambda caps a resource policy at 20 KB: the jobs function's 16 routes (and their test
    // invocations) plus that one.
    const jobs = permissions.filter((p) => JSON.stringify(p.FunctionName).includes("ApiJobsApi"));
    expect(jobs).toHaveLength(2 * 16 + 1);
  });

  it("gives the jobs function its tables, the training queue, checkpoints and cancel", () => {
    const fn = Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) =>
      id.startsWith("ApiJobsApi"),
    )![1];
    expect(Object.keys(fn.Properties.Environment.Variables)).toEqual(
      expect.arrayContaining([
        "FILES_TABLE",
        "JOBS_TABLE",
        "EVENTS_TABLE",
        "MODELS_TABLE",
        "IDEMPOTENCY_TABLE",
        "TRAINING_QUEUE_URL",
        "ARTIFACTS_BUCKET",
      ]),
    );
    const statements = Object.entries(template.findResources("AWS::IAM::Policy"))
      .filter(([id]) => id.startsWith("ApiJobsApiRole"))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[]);
    const text = JSON.stringify(statements);
    for (const action of [
      "sqs:SendMessage",
      "batch:TerminateJob",
      "dynamodb:DeleteItem",
      "dynamodb:BatchWriteItem",
    ]) {
      expect(text).toContain(action);
    }
    expect(text).toContain("/index/byTenant");
    expect(text).not.toContain("/index/*");
    expect(text).not.toMatch(/dynamodb:Scan|s3:PutObject|batch:SubmitJob/);
    // A DPO job may start from the tenant's fine-tuned model: create reads it from the models table by key.
    const models = statements.filter((s) =>
      /^\{"Fn::GetAtt":\["StorageModelsTable[0-9A-F]+","Arn"\]\}$/.test(JSON.stringify(s.Resource)),
    );
    expect(models.flatMap((s) => s.Action as string[])).toContain("dynamodb:GetItem");
    // Create adds the job to its files' users (a conditional update); it never puts or deletes a file.
    const files = statements.filter((s) =>
      /^\{"Fn::GetAtt":\["StorageFilesTable[0-9A-F]+","Arn"\]\}$/.test(JSON.stringify(s.Resource)),
    );
    expect(files.flatMap((s) => s.Action as string[]).sort()).toEqual([
      "dynamodb:GetItem",
      "dynamodb:UpdateItem",
    ]);
  });

  it("lets the jobs function read and list checkpoints only, not the rest of a job's artifacts", () => {
    const statements = Object.entries(template.findResources("AWS::IAM::Policy"))
      .filter(([id]) => id.startsWith("ApiJobsApiRole"))
      .flatMap(
        ([, p]) =>
          p.Properties.PolicyDocument.Statement as {
            Action: unknown;
            Resource: unknown;
            Condition?: unknown;
          }[],
      );
    const s3 = statements.filter((s) => JSON.stringify(s.Action).includes('"s3:'));
    expect(s3.map((s) => s.Action)).toEqual(["s3:GetObject", "s3:ListBucket"]);
    expect(JSON.stringify(s3[0]!.Resource)).toMatch(/"\/tenants\/\*\/jobs\/\*\/checkpoints\/\*"\]/);
    expect(s3[1]!.Condition).toEqual({ StringLike: { "s3:prefix": ["tenants/*/jobs/*/checkpoints/*"] } });
  });
});

describe("private inference servers", () => {
  const { template, violations } = synthPlatform({
    env: { account: "123456789012", region: "us-east-1" },
    inference: {
      servers: ["glm-4-9b-chat", "qwen2.5-7b-instruct"],
      imageUri: ECR_IMAGE,
    },
  });

  it("runs one vLLM service per base model on ECS GPU instances (full models are deployed through the API)", () => {
    template.resourceCountIs("AWS::ECS::Service", 2);
    const containers = Object.entries(template.findResources("AWS::ECS::TaskDefinition"))
      .filter(([id]) => id.startsWith("ChatInference"))
      .map(([, t]) => t.Properties.ContainerDefinitions[0]);
    expect(containers).toHaveLength(2);
    for (const container of containers) {
      expect(JSON.stringify(container.Image)).toContain("/ft-inference:1");
      expect(container.ResourceRequirements).toEqual([{ Type: "GPU", Value: "1" }]);
      // The image's adapter proxy; vLLM itself listens on 127.0.0.1:8000 inside the container.
      expect(container.PortMappings).toEqual([expect.objectContaining({ ContainerPort: 8080 })]);
    }
    const env = containers.map((c) =>
      Object.fromEntries(c.Environment.map((e: { Name: string; Value: unknown }) => [e.Name, e.Value])),
    );
    expect(env.map((e) => e.BASE_MODEL)).toEqual(["glm-4-9b-chat", "qwen2.5-7b-instruct"]);
    expect(env.map((e) => e.PORT)).toEqual(["8080", "8080"]);
    expect(env.some((e) => "MODEL_CODE" in e)).toBe(false);
    template.hasResourceProperties("AWS::ElasticLoadBalancingV2::LoadBalancer", { Scheme: "internal" });
    template.hasResourceProperties("AWS::ElasticLoadBalancingV2::TargetGroup", {
      HealthCheckPath: "/health",
      TargetType: "ip",
    });
  });

  it("lets the servers' execution role pull the image from its ECR repository", () => {
    template.hasResourceProperties("AWS::IAM::Policy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(["ecr:BatchGetImage"]),
            Resource: Match.stringLikeRegexp(":repository/ft-inference$"),
          }),
        ]),
      },
      Roles: [{ Ref: Match.stringLikeRegexp("^ChatInferenceExecutionRole") }],
    });
  });

  it("puts the chat function in the VPC, the only source the load balancer admits", () => {
    const fn = chatFunction(template);
    expect(fn.Properties.VpcConfig.SubnetIds).toHaveLength(2);
    const endpoints = JSON.stringify(fn.Properties.Environment.Variables.INFERENCE_ENDPOINTS);
    for (const name of ["glm-4-9b-chat", "qwen2.5-7b-instruct"]) expect(endpoints).toContain(name);
    expect(endpoints).toMatch(/:800[0-1]\/v1/);
    const ingress = Object.values(template.findResources("AWS::EC2::SecurityGroupIngress"))
      .map((r) => r.Properties)
      .filter((p) => JSON.stringify(p.GroupId).includes("LoadBalancerSecurityGroup"));
    expect(ingress).toHaveLength(1);
    expect(ingress[0]!.SourceSecurityGroupId).toEqual({
      "Fn::GetAtt": [expect.stringMatching(/^ChatChatSecurityGroup/), "GroupId"],
    });
  });

  it("lets the servers read their weights, and adapters only through the tenant-scoped reader", () => {
    const statementsOf = (prefix: string) =>
      Object.entries(template.findResources("AWS::IAM::Policy"))
        .filter(([id]) => id.startsWith(prefix))
        .flatMap(
          ([, p]) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[],
        );
    const statements = statementsOf("ChatInferenceTaskRole");
    expect(statements.map((s) => s.Action)).toEqual([
      "s3:GetObject",
      "s3:ListBucket",
      ["sts:AssumeRole", "sts:TagSession"],
    ]);
    const text = JSON.stringify(statements[0]!.Resource);
    for (const pattern of ["/base-models/glm-4-9b-chat/*", "/base-models/qwen2.5-7b-instruct/*"]) {
      expect(text).toContain(`"${pattern}"`);
    }
    // No tenant's data with the task role itself; full models have servers of their own (deployments.ts).
    expect(JSON.stringify(statements)).not.toContain("tenants/");
    // The base models it serves, not every model under base-models/.
    expect(text).not.toContain('"/base-models/*"');
    const reader = JSON.stringify(statementsOf("ChatInferenceTenantAdapterReaderRole"));
    expect(reader).toContain(`"/tenants/${principalTag("tenantId")}/jobs/*/adapter/*"`);
    expect(reader).not.toContain("/model/*");
  });

  it("reports no unacknowledged cdk-nag finding", () => {
    expect(violations).toEqual([]);
  });
});

describe("external inference endpoint", () => {
  it("passes the URL as the default endpoint", () => {
    const { template } = synthPlatform({ inference: { endpointUrl: "https://llm.example.com/v1" } });
    const env = chatFunction(template).Properties.Environment.Variables;
    expect(JSON.parse(env.INFERENCE_ENDPOINTS as string)).toEqual({ "*": "https://llm.example.com/v1" });
  });
});
