import { Duration } from "aws-cdk-lib";
import * as apigateway from "aws-cdk-lib/aws-apigateway";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { CONSOLE_ORIGIN_ENV } from "../../lambdas/core/http/response.ts";
import { SERVICES } from "../resources/definitions.ts";
import { KEY_PATTERNS } from "../resources/key-patterns.ts";
import { type BucketRef, bind, type TableRef } from "./bind.ts";
import { acknowledge } from "./nag.ts";
import { PlatformFunction } from "./platform-function.ts";

export interface ApiProps {
  /** The authorizer looks keys up by hash. */
  readonly apiKeysTable: TableRef<"api-keys">;
  readonly filesTable: TableRef<"files">;
  /** The files function refuses to delete a file that unfinished jobs use. */
  readonly jobsTable: TableRef<"jobs">;
  readonly datasetsBucket: BucketRef<"datasets">;
  /** The usage function reads tenants' daily chat tokens from it (the chat function writes them). */
  readonly usageTable: TableRef<"usage">;
  /** The files function reads a tenant's quota overrides from it (lambdas/core/tenants/quotas.ts). */
  readonly tenantsTable: TableRef<"tenants">;
  /** Steady-state requests per second for the whole stage; default 50. */
  readonly throttlingRateLimit?: number;
  /** Burst for the whole stage; default 100. */
  readonly throttlingBurstLimit?: number;
  /** Seconds API Gateway caches an authorizer decision per key; default 60 (also the revocation delay). */
  readonly authorizerCacheSeconds?: number;
  /** Each tenant's steady-state requests per second (its usage plan key's throttle); default 10. */
  readonly tenantRequestsPerSecond?: number;
  /** Each tenant's burst; default 20. */
  readonly tenantBurst?: number;
  /** Each tenant's requests per UTC day (the usage plan's quota); default 10000. */
  readonly tenantRequestsPerDay?: number;
  /**
   * The hosted console's origin (`https://<CloudFront domain>`, console.ts), the one origin browsers may
   * call the API from: every routed resource answers its CORS preflight without the authorizer, gateway
   * responses (401, 403, 429, other 4XX and 5XX) carry `Access-Control-Allow-Origin` for it, and the
   * routed functions get it as `CONSOLE_ORIGIN` (lambdas/core/http/api-gateway.ts). May be a token. Unset:
   * no CORS at all.
   */
  readonly consoleOrigin?: string;
}

/** The error envelope API Gateway itself answers with (no key, throttled, unknown route...). */
function envelope(message: string, type: string, code: string): string {
  return JSON.stringify({
    error: { message, type, param: null, code, request_id: "$context.requestId" },
  });
}

/** Per-tenant limits of the default usage plan when the operator sets none (CDK context). */
export const DEFAULT_TENANT_LIMITS = { requestsPerSecond: 10, burst: 20, requestsPerDay: 10_000 } as const;

/**
 * The API bounded context: the REST API under `/v4`, its API key authorizer, stage throttling, the
 * per-tenant usage plan (each tenant's API Gateway key, returned by the authorizer), access
 * logs, gateway responses in the OpenAI error envelope, the files API function and the usage API
 * function (`GET /v4/usage`, read-only over the usage table). Other contexts'
 * functions are routed here: the jobs function ({@link Api.routeJobs}) and chat ({@link Api.route}).
 */
export class Api extends Construct {
  readonly restApi: apigateway.RestApi;
  readonly v4: apigateway.Resource;
  readonly authorizer: apigateway.TokenAuthorizer;
  /**
   * Every tenant's rate and daily quota. `ftctl admin` attaches one API key per tenant to it (its id is
   * a stack output); the authorizer returns the tenant's key as `usageIdentifierKey`.
   */
  readonly usagePlan: apigateway.UsagePlan;
  readonly filesFunction: PlatformFunction;
  readonly usageFunction: PlatformFunction;
  /** {@link ApiProps.consoleOrigin}. */
  readonly consoleOrigin?: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.consoleOrigin = props.consoleOrigin;
    const accessLogs = new logs.LogGroup(this, "AccessLogs", { retention: logs.RetentionDays.THREE_MONTHS });
    this.restApi = new apigateway.RestApi(this, "RestApi", {
      restApiName: "fine-tuning-platform",
      description: "OpenAI/Zhipu-compatible files, fine-tuning jobs, models and chat",
      // Multipart uploads arrive base64-encoded so the bytes survive untouched.
      binaryMediaTypes: ["multipart/form-data"],
      endpointTypes: [apigateway.EndpointType.REGIONAL],
      cloudWatchRole: true,
      // The authorizer supplies each tenant's usage plan key: clients never send x-api-key.
      apiKeySourceType: apigateway.ApiKeySourceType.AUTHORIZER,
      deployOptions: {
        stageName: "prod",
        throttlingRateLimit: props.throttlingRateLimit ?? 50,
        throttlingBurstLimit: props.throttlingBurstLimit ?? 100,
        tracingEnabled: true,
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        accessLogDestination: new apigateway.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields({
          caller: false,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: false,
        }),
      },
    });

    const authorizerFunction = new PlatformFunction(this, "Authorizer", {
      entry: "lambdas/authorizer/index.ts",
      service: SERVICES.authorizer,
      description: "API key → tenant",
      timeout: Duration.seconds(5),
      memorySize: 256,
    });
    bind(authorizerFunction, props.apiKeysTable, { actions: ["GetItem"] });
    // The tenant's usage plan key value (written by ftctl admin); read only.
    bind(authorizerFunction, props.tenantsTable, { actions: ["GetItem"] });
    this.authorizer = new apigateway.TokenAuthorizer(this, "ApiKeyAuthorizer", {
      handler: authorizerFunction,
      identitySource: apigateway.IdentitySource.header("Authorization"),
      resultsCacheTtl: Duration.seconds(props.authorizerCacheSeconds ?? 60),
    });

    const limits = {
      requestsPerSecond: props.tenantRequestsPerSecond ?? DEFAULT_TENANT_LIMITS.requestsPerSecond,
      burst: props.tenantBurst ?? DEFAULT_TENANT_LIMITS.burst,
      requestsPerDay: props.tenantRequestsPerDay ?? DEFAULT_TENANT_LIMITS.requestsPerDay,
    };
    // API Gateway's own per-key throttle and quota: no counter of ours to keep consistent across
    // functions. The stage limits above still cap all tenants together.
    this.usagePlan = this.restApi.addUsagePlan("TenantUsagePlan", {
      name: "tenant-default",
      description:
        "Every tenant's request rate and daily quota (one API key per tenant, made by ftctl admin)",
      throttle: { rateLimit: limits.requestsPerSecond, burstLimit: limits.burst },
      quota: { limit: limits.requestsPerDay, period: apigateway.Period.DAY },
      apiStages: [{ api: this.restApi, stage: this.restApi.deploymentStage }],
    });

    const responses: [apigateway.ResponseType, string, string, string][] = [
      [
        apigateway.ResponseType.UNAUTHORIZED,
        "Invalid or missing API key. Pass it as 'Authorization: Bearer <key>'.",
        "authentication_error",
        "invalid_api_key",
      ],
      [
        apigateway.ResponseType.ACCESS_DENIED,
        "Invalid or missing API key.",
        "authentication_error",
        "invalid_api_key",
      ],
      [
        // The tenant's plan throttle, or the stage's when all tenants together exceed it.
        apigateway.ResponseType.THROTTLED,
        `Rate limit exceeded: ${limits.requestsPerSecond} requests per second (burst ${limits.burst}) per tenant; retry after a short wait.`,
        "rate_limit_error",
        "rate_limit_exceeded",
      ],
      [
        apigateway.ResponseType.QUOTA_EXCEEDED,
        `Daily request quota exceeded: ${limits.requestsPerDay} requests per day per tenant; it resets at 00:00 UTC.`,
        "rate_limit_error",
        "quota_exceeded",
      ],
      [
        // A tenant made before usage plans has no key in the plan until the operator gives it one.
        apigateway.ResponseType.INVALID_API_KEY,
        "This tenant has no request quota yet; the platform operator gives it one with 'ftctl admin tenants sync-usage-keys'.",
        "permission_error",
        "usage_key_missing",
      ],
      [
        apigateway.ResponseType.REQUEST_TOO_LARGE,
        "The request body is too large.",
        "invalid_request_error",
        "payload_too_large",
      ],
      [
        // A path without a resource; another method of a routed path reaches its function (route()).
        apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN,
        "Unknown path.",
        "not_found_error",
        "unknown_url",
      ],
      [
        apigateway.ResponseType.DEFAULT_4XX,
        "The request was rejected.",
        "invalid_request_error",
        "invalid_request",
      ],
      [
        apigateway.ResponseType.DEFAULT_5XX,
        "The server had an error while processing your request.",
        "server_error",
        "internal_error",
      ],
    ];
    for (const [type, message, errorType, code] of responses) {
      this.restApi.addGatewayResponse(`Gateway${type.responseType}`, {
        type,
        ...(type === apigateway.ResponseType.UNAUTHORIZED || type === apigateway.ResponseType.ACCESS_DENIED
          ? { statusCode: "401" }
          : {}),
        ...(type === apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN ? { statusCode: "404" } : {}),
        responseHeaders: {
          "Content-Type": "'application/json'",
          // Without it the console could not read why a request failed (a wrong key, a throttle).
          ...(props.consoleOrigin
            ? { "Access-Control-Allow-Origin": `'${props.consoleOrigin}'`, Vary: "'Origin'" }
            : {}),
        },
        templates: { "application/json": envelope(message, errorType, code) },
      });
    }

    // Bodies are validated in the functions (zod), so that errors come in the OpenAI envelope; this
    // validator checks declared parameters, and bodies of any method that declares a model.
    this.restApi.addRequestValidator("RequestValidator", {
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    acknowledge(
      this.restApi,
      "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
      "The account-level role API Gateway needs to write execution and access logs; AWS maintains its scope.",
    );
    acknowledge(
      this.restApi,
      "AwsSolutions-APIG3",
      "WAF is an operator's choice with its own cost; associate a web ACL with the stage when the API is exposed publicly (see README).",
    );
    this.v4 = this.restApi.root.addResource("v4");

    this.filesFunction = new PlatformFunction(this, "FilesApi", {
      entry: "lambdas/files-api/index.ts",
      service: SERVICES.filesApi,
      description: "/v4/files: upload, list, get, content, delete",
      timeout: Duration.seconds(29),
      memorySize: 1024,
    });
    bind(this.filesFunction, props.filesTable, {
      actions: ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"],
    });
    // Delete reads the jobs that used a file, by key in a transaction (file-usage.ts), and queries
    // the tenant's jobs for those that predate that record.
    bind(this.filesFunction, props.jobsTable, { actions: ["Query", "GetItem"] });
    // A new file is checked against the tenant's quotas: its overrides by key (the files it holds are
    // counted with the Query above).
    bind(this.filesFunction, props.tenantsTable, { actions: ["GetItem"] });
    bind(this.filesFunction, props.datasetsBucket, {
      objects: [
        {
          keys: [KEY_PATTERNS.datasets],
          // The function signs upload URLs: its own role must allow the PUT the URL performs.
          actions: ["PutObject", "GetObject", "DeleteObject"],
          why: "Object actions on dataset objects only; which tenant's is enforced in code from the authorizer context.",
        },
        {
          // Jobs' results files are read and deleted here, never written: job-status makes them.
          keys: [KEY_PATTERNS.resultsFiles],
          actions: ["GetObject", "DeleteObject"],
          why: "Reads and deletes results files only; which tenant's is enforced in code from the authorizer context.",
        },
      ],
    });

    const files = this.v4.addResource("files");
    this.route(files, "GET", this.filesFunction);
    this.route(files, "POST", this.filesFunction);
    this.route(files.addResource("uploads"), "POST", this.filesFunction);
    const file = files.addResource("{file_id}");
    this.route(file, "GET", this.filesFunction);
    this.route(file, "DELETE", this.filesFunction);
    this.route(file.addResource("content"), "GET", this.filesFunction);

    this.usageFunction = new PlatformFunction(this, "UsageApi", {
      entry: "lambdas/usage-api/index.ts",
      service: SERVICES.usageApi,
      description: "/v4/usage: a tenant's chat tokens per day and model",
      // One key-range query of at most 366 days times the tenant's models.
      timeout: Duration.seconds(10),
      memorySize: 256,
    });
    // Read-only: the chat function alone adds to the totals (chat.ts).
    bind(this.usageFunction, props.usageTable, { actions: ["Query"] });
    this.route(this.v4.addResource("usage"), "GET", this.usageFunction);
  }

  /** `/v4/fine_tuning/jobs…` and `/v4/models…` (with `…/{model_code}/deploy`) to the jobs function (jobs.ts). */
  routeJobs(fn: PlatformFunction): void {
    const fineTuning = this.v4.addResource("fine_tuning");
    const jobs = fineTuning.addResource("jobs");
    this.route(jobs, "GET", fn);
    this.route(jobs, "POST", fn);
    const job = jobs.addResource("{job_id}");
    this.route(job, "GET", fn);
    this.route(job, "DELETE", fn);
    this.route(job.addResource("cancel"), "POST", fn);
    // Pause (the trainer checkpoints and stops) and resume (queued again, continues from the checkpoint).
    this.route(job.addResource("pause"), "POST", fn);
    this.route(job.addResource("resume"), "POST", fn);
    this.route(job.addResource("events"), "GET", fn);
    this.route(job.addResource("checkpoints"), "GET", fn);
    // The zhipuai SDK's `fine_tuning.models.delete`.
    const fineTunedModel = fineTuning.addResource("fine_tuned_models").addResource("{model_code}");
    this.route(fineTunedModel, "DELETE", fn);
    const models = this.v4.addResource("models");
    this.route(models, "GET", fn);
    const model = models.addResource("{model_code}");
    this.route(model, "GET", fn);
    this.route(model, "POST", fn);
    this.route(model, "DELETE", fn);
    // A full-parameter model's own server: deploy, undeploy (the deployer does the work).
    const deploy = model.addResource("deploy");
    this.route(deploy, "POST", fn);
    this.route(deploy, "DELETE", fn);
  }

  /** `/v4/webhooks…` to the webhooks API function (webhooks.ts). */
  routeWebhooks(fn: PlatformFunction): void {
    const webhooks = this.v4.addResource("webhooks");
    this.route(webhooks, "GET", fn);
    this.route(webhooks, "POST", fn);
    const webhook = webhooks.addResource("{webhook_id}");
    this.route(webhook, "GET", fn);
    this.route(webhook, "DELETE", fn);
    this.route(webhook.addResource("deliveries"), "GET", fn);
    this.route(webhook.addResource("test"), "POST", fn);
  }

  /**
   * A proxy route behind the API key authorizer. The resource's first route also adds an `ANY` method
   * to the same function, which API Gateway uses only for the methods not declared explicitly: a
   * method the path does not have reaches the function's router, which answers 405 with `Allow` (API
   * Gateway alone could only answer 404). `ANY` is behind the same authorizer, and its invoke
   * permission is one per function and API (`scopePermissionToMethod: false`) so that the functions'
   * resource policies stay far below Lambda's 20 KB limit.
   */
  route(
    resource: apigateway.IResource,
    method: string,
    fn: PlatformFunction,
    options: { stream?: boolean } = {},
  ): void {
    // A streamed response may last up to 15 minutes (a buffered one 29 seconds).
    const transfer = options.stream
      ? { responseTransferMode: apigateway.ResponseTransferMode.STREAM, timeout: Duration.minutes(15) }
      : {};
    const authorization = {
      authorizer: this.authorizer,
      authorizationType: apigateway.AuthorizationType.CUSTOM,
      // Counts the request against the tenant's usage plan key, which the authorizer returns.
      apiKeyRequired: true,
    };
    resource.addMethod(method, new apigateway.LambdaIntegration(fn, transfer), authorization);
    const methods = [method];
    if (!resource.node.tryFindChild("ANY")) {
      resource.addMethod(
        "ANY",
        new apigateway.LambdaIntegration(fn, { ...transfer, scopePermissionToMethod: false }),
        authorization,
      );
      methods.push("ANY");
    }
    for (const name of methods) {
      acknowledge(
        resource.node.findChild(name),
        "AwsSolutions-COG4",
        "Tenants authenticate with platform API keys (OpenAI-style bearer keys) through the Lambda authorizer, not Cognito users.",
      );
    }
    if (this.consoleOrigin) this.allowConsole(resource, fn, this.consoleOrigin);
  }

  /**
   * The console's CORS on a routed resource: an explicit `OPTIONS` method (it takes precedence over
   * `ANY`, which sits behind the authorizer) answered by API Gateway itself, without the authorizer,
   * since a browser's preflight never carries the `Authorization` header; and the origin for the
   * function, which adds the header to its own responses.
   */
  private allowConsole(resource: apigateway.IResource, fn: PlatformFunction, origin: string): void {
    fn.addEnvironment(CONSOLE_ORIGIN_ENV, origin);
    if (resource.node.tryFindChild("OPTIONS")) return;
    const preflight = resource.addCorsPreflight({
      allowOrigins: [origin],
      allowMethods: apigateway.Cors.ALL_METHODS,
      allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key"],
      maxAge: Duration.hours(1),
    });
    acknowledge(
      preflight,
      "AwsSolutions-APIG4",
      "A CORS preflight carries no credentials (Fetch standard); API Gateway answers it with headers only (mock integration), reaching no function.",
    );
    acknowledge(
      preflight,
      "AwsSolutions-COG4",
      "A CORS preflight carries no credentials (Fetch standard); API Gateway answers it with headers only (mock integration), reaching no function.",
    );
  }
}
