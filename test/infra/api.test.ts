import { Match } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { synthPlatform } from "./synth.ts";

describe("API construct", () => {
  const { template, violations } = synthPlatform();

  it("puts every files route behind the API key authorizer", () => {
    const methods = Object.values(template.findResources("AWS::ApiGateway::Method")).map((m) => m.Properties);
    const routed = methods.filter((m) => m.HttpMethod !== "OPTIONS");
    expect(routed.length).toBeGreaterThanOrEqual(6);
    for (const method of routed) {
      expect(method.AuthorizationType).toBe("CUSTOM");
      expect(method.AuthorizerId).toBeDefined();
    }
    template.hasResourceProperties("AWS::ApiGateway::Authorizer", {
      Type: "TOKEN",
      IdentitySource: "method.request.header.Authorization",
      AuthorizerResultTtlInSeconds: 60,
    });
  });

  it("answers every method of every routed path: ANY behind the authorizer to the path's function", () => {
    const methods = Object.values(template.findResources("AWS::ApiGateway::Method")).map((m) => m.Properties);
    const routed = new Set(methods.map((m) => m.ResourceId.Ref as string));
    const any = methods.filter((m) => m.HttpMethod === "ANY");
    expect(new Set(any.map((m) => m.ResourceId.Ref as string))).toEqual(routed);
    expect(any).toHaveLength(routed.size);
    for (const method of any) {
      expect(method).toMatchObject({ AuthorizationType: "CUSTOM", Integration: { Type: "AWS_PROXY" } });
      expect(method.AuthorizerId).toEqual({ Ref: expect.stringMatching(/^ApiApiKeyAuthorizer/) });
    }
    // Only a path without a resource is API Gateway's own 404.
    template.hasResourceProperties("AWS::ApiGateway::GatewayResponse", {
      ResponseType: "MISSING_AUTHENTICATION_TOKEN",
      StatusCode: "404",
      ResponseTemplates: { "application/json": Match.stringLikeRegexp('"code":"unknown_url"') },
    });
  });

  it("reports no unacknowledged cdk-nag finding, ANY methods included", () => {
    expect(violations).toEqual([]);
  });

  it("throttles the stage, writes access logs and traces", () => {
    template.hasResourceProperties("AWS::ApiGateway::Stage", {
      StageName: "prod",
      TracingEnabled: true,
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp("requestId") },
      MethodSettings: Match.arrayWith([
        Match.objectLike({
          ThrottlingRateLimit: 50,
          ThrottlingBurstLimit: 100,
          HttpMethod: "*",
          ResourcePath: "/*",
        }),
      ]),
    });
  });

  it("answers 401 and throttling in the OpenAI error envelope with the request id", () => {
    template.hasResourceProperties("AWS::ApiGateway::GatewayResponse", {
      ResponseType: "UNAUTHORIZED",
      StatusCode: "401",
      ResponseTemplates: {
        "application/json": Match.stringLikeRegexp(
          '"type":"authentication_error".*"request_id":"\\$context.requestId"',
        ),
      },
    });
    template.hasResourceProperties("AWS::ApiGateway::GatewayResponse", {
      ResponseType: "THROTTLED",
      ResponseTemplates: { "application/json": Match.stringLikeRegexp('"code":"rate_limit_exceeded"') },
    });
  });

  it("lets the authorizer read only the api-keys table, by key", () => {
    const policies = Object.entries(template.findResources("AWS::IAM::Policy")).filter(([id]) =>
      id.startsWith("ApiAuthorizerRole"),
    );
    expect(policies).toHaveLength(1);
    const statements = policies[0]![1].Properties.PolicyDocument.Statement as {
      Action: unknown;
      Resource: unknown;
    }[];
    expect(statements.map((s) => s.Action)).toEqual(
      expect.arrayContaining(["dynamodb:GetItem", ["logs:CreateLogStream", "logs:PutLogEvents"]]),
    );
    expect(JSON.stringify(statements)).not.toMatch(/dynamodb:(Scan|PutItem|Query)/);
  });

  it("lets the files function put, get and delete dataset objects, and only get and delete results files", () => {
    const statements = Object.entries(template.findResources("AWS::IAM::Policy"))
      .filter(([id]) => id.startsWith("ApiFilesApiRole"))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[]);
    const s3 = statements.filter((s) => JSON.stringify(s.Action).includes('"s3:'));
    expect(s3.map((s) => s.Action)).toEqual([
      ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
      ["s3:GetObject", "s3:DeleteObject"],
    ]);
    expect(JSON.stringify(s3[0]!.Resource)).toMatch(/StorageDatasets.*"\/tenants\/\*\/files\/\*\.jsonl"\]/);
    expect(JSON.stringify(s3[1]!.Resource)).toMatch(/StorageDatasets.*"\/tenants\/\*\/files\/\*\.csv"\]/);
  });

  it("routes GET /v4/usage to the usage function behind the API key authorizer", () => {
    const usage = Object.entries(template.findResources("AWS::ApiGateway::Resource")).find(
      ([, r]) => r.Properties.PathPart === "usage",
    );
    expect(usage).toBeDefined();
    expect(usage![1].Properties.ParentId).toEqual({ Ref: expect.stringMatching(/^ApiRestApiv4/) });
    const all = Object.values(template.findResources("AWS::ApiGateway::Method"))
      .map((m) => m.Properties)
      .filter((m) => m.ResourceId.Ref === usage![0]);
    // ANY hands other methods to the function, whose router answers 405; OPTIONS is the console's CORS
    // preflight (test/infra/console.test.ts).
    expect(all.map((m) => m.HttpMethod).sort()).toEqual(["ANY", "GET", "OPTIONS"]);
    const methods = all.filter((m) => m.HttpMethod === "GET");
    expect(methods[0]).toMatchObject({
      HttpMethod: "GET",
      AuthorizationType: "CUSTOM",
      AuthorizerId: { Ref: expect.stringMatching(/^ApiApiKeyAuthorizer/) },
      Integration: { Type: "AWS_PROXY" },
    });
    expect(JSON.stringify(methods[0]!.Integration.Uri)).toMatch(/"ApiUsageApi[0-9A-F]{8}"/);
    const fn = Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) =>
      /^ApiUsageApi[0-9A-F]{8}$/.test(id),
    )![1];
    expect(Object.keys(fn.Properties.Environment.Variables)).toContain("USAGE_TABLE");
  });

  it("lets the usage function only query the usage table", () => {
    const statements = Object.entries(template.findResources("AWS::IAM::Policy"))
      .filter(([id]) => id.startsWith("ApiUsageApiRole"))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[]);
    // Beside its log group and X-Ray: DynamoDB, and only this.
    const data = statements.filter((s) => !/"(logs|xray):/.test(JSON.stringify(s.Action)));
    expect(data).toEqual([
      {
        Action: "dynamodb:Query",
        Effect: "Allow",
        Resource: { "Fn::GetAtt": [expect.stringMatching(/^StorageUsageTable/), "Arn"] },
      },
    ]);
  });

  it("lets no function but the chat function write usage", () => {
    const writers = Object.entries(template.findResources("AWS::IAM::Policy"))
      .filter(([, p]) =>
        (p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[]).some(
          (s) =>
            JSON.stringify(s.Resource).includes("StorageUsageTable") &&
            /dynamodb:(PutItem|UpdateItem|DeleteItem|BatchWriteItem)/.test(JSON.stringify(s.Action)),
        ),
      )
      .map(([id]) => id.replace(/[0-9A-F]{8}$/, ""));
    expect(writers).toEqual(["ChatChatFunctionRoleDefaultPolicy"]);
  });

  it("builds every function as ARM64 Node.js 24 with tracing, explicit timeout and memory, and its own log group", () => {
    const functions = Object.values(template.findResources("AWS::Lambda::Function")).filter((f) =>
      f.Properties.Runtime?.startsWith("nodejs24"),
    );
    expect(functions.length).toBeGreaterThanOrEqual(3);
    for (const fn of functions) {
      expect(fn.Properties).toMatchObject({
        Architectures: ["arm64"],
        TracingConfig: { Mode: "Active" },
        LoggingConfig: { LogFormat: "JSON", LogGroup: expect.anything() },
      });
      expect(fn.Properties.Timeout).toBeGreaterThan(0);
      expect(fn.Properties.MemorySize).toBeGreaterThan(0);
      expect(fn.Properties.Environment.Variables.NODE_OPTIONS).toBe("--enable-source-maps");
    }
  });
});

describe("validation construct", () => {
  const { template } = synthPlatform();

  it("sends ObjectCreated of .jsonl objects under tenants/ (datasets, not results files) to the validation queue", () => {
    template.hasResourceProperties("Custom::S3BucketNotifications", {
      NotificationConfiguration: {
        QueueConfigurations: [
          Match.objectLike({
            Events: ["s3:ObjectCreated:*"],
            Filter: {
              Key: {
                FilterRules: [
                  { Name: "suffix", Value: ".jsonl" },
                  { Name: "prefix", Value: "tenants/" },
                ],
              },
            },
          }),
        ],
      },
    });
  });

  it("feeds the validator from the queue with partial batch responses", () => {
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      BatchSize: 5,
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

  it("leaves the context limits to the validator, which reads them from the catalog", () => {
    const validator = Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) =>
      id.startsWith("ValidationValidator"),
    )![1];
    expect(validator.Properties.Environment.Variables.CONTEXT_LIMITS).toBeUndefined();
    // Without an override the validator uses the built-in catalog: nothing to pass.
    expect(validator.Properties.Environment.Variables.BASE_MODEL_CATALOG_OVERRIDE).toBeUndefined();
  });

  it("lets the validator read only dataset objects and update files", () => {
    const policy = Object.entries(template.findResources("AWS::IAM::Policy")).find(([id]) =>
      id.startsWith("ValidationValidatorRole"),
    );
    const text = JSON.stringify(policy?.[1]);
    expect(text).toContain("s3:GetObject");
    expect(text).toContain('"/tenants/*/files/*.jsonl"');
    expect(text).not.toContain('"/tenants/*"');
    expect(text).not.toMatch(/s3:(PutObject|DeleteObject)/);
    expect(text).not.toContain("dynamodb:DeleteItem");
  });
});
