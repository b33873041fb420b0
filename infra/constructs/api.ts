import { Duration } from "aws-cdk-lib";
import * as apigateway from "aws-cdk-lib/aws-apigateway";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { acknowledge, arnToken } from "./nag.ts";
import { PlatformFunction } from "./platform-function.ts";
import { batchJobArns, batchJobArnsFinding } from "./training.ts";

export interface ApiProps {
  readonly apiKeysTable: dynamodb.ITable;
  readonly filesTable: dynamodb.ITable;
  readonly jobsTable: dynamodb.ITable;
  readonly eventsTable: dynamodb.ITable;
  readonly modelsTable: dynamodb.ITable;
  readonly idempotencyTable: dynamodb.ITable;
  readonly datasetsBucket: s3.IBucket;
  readonly artifactsBucket: s3.IBucket;
  /** The `training` queue a created job is sent to. */
  readonly trainingQueue: sqs.IQueue;
  /** Steady-state requests per second for the whole stage; default 50. */
  readonly throttlingRateLimit?: number;
  /** Burst for the whole stage; default 100. */
  readonly throttlingBurstLimit?: number;
  /** Seconds API Gateway caches an authorizer decision per key; default 60 (also the revocation delay). */
  readonly authorizerCacheSeconds?: number;
}

/** The error envelope API Gateway itself answers with (no key, throttled, unknown route...). */
function envelope(message: string, type: string, code: string): string {
  return JSON.stringify({
    error: { message, type, param: null, code, request_id: "$context.requestId" },
  });
}

/**
 * The API bounded context: the REST API under `/v4`, its API key authorizer, stage throttling, access
 * logs, gateway responses in the OpenAI error envelope, and the files API function.
 */
export class Api extends Construct {
  readonly restApi: apigateway.RestApi;
  readonly v4: apigateway.Resource;
  readonly authorizer: apigateway.TokenAuthorizer;
  readonly filesFunction: PlatformFunction;
  readonly jobsFunction: PlatformFunction;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const accessLogs = new logs.LogGroup(this, "AccessLogs", { retention: logs.RetentionDays.THREE_MONTHS });
    this.restApi = new apigateway.RestApi(this, "RestApi", {
      restApiName: "fine-tuning-platform",
      description: "OpenAI/Zhipu-compatible files, fine-tuning jobs, models and chat",
      // Multipart uploads arrive base64-encoded so the bytes survive untouched.
      binaryMediaTypes: ["multipart/form-data"],
      endpointTypes: [apigateway.EndpointType.REGIONAL],
      cloudWatchRole: true,
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
      description: "API key → tenant",
      timeout: Duration.seconds(5),
      memorySize: 256,
      environment: { API_KEYS_TABLE: props.apiKeysTable.tableName },
    });
    authorizerFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["dynamodb:GetItem"], resources: [props.apiKeysTable.tableArn] }),
    );
    this.authorizer = new apigateway.TokenAuthorizer(this, "ApiKeyAuthorizer", {
      handler: authorizerFunction,
      identitySource: apigateway.IdentitySource.header("Authorization"),
      resultsCacheTtl: Duration.seconds(props.authorizerCacheSeconds ?? 60),
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
        apigateway.ResponseType.THROTTLED,
        "Too many requests; retry after a short wait.",
        "rate_limit_error",
        "rate_limit_exceeded",
      ],
      [
        apigateway.ResponseType.REQUEST_TOO_LARGE,
        "The request body is too large.",
        "invalid_request_error",
        "payload_too_large",
      ],
      [
        apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN,
        "Unknown path or method.",
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
        responseHeaders: { "Content-Type": "'application/json'" },
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
      description: "/v4/files: upload, list, get, content, delete",
      timeout: Duration.seconds(29),
      memorySize: 1024,
      environment: {
        FILES_TABLE: props.filesTable.tableName,
        JOBS_TABLE: props.jobsTable.tableName,
        DATASETS_BUCKET: props.datasetsBucket.bucketName,
      },
    });
    this.filesFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: [
          "dynamodb:GetItem",
          "dynamodb:PutItem",
          "dynamodb:UpdateItem",
          "dynamodb:DeleteItem",
          "dynamodb:Query",
        ],
        resources: [props.filesTable.tableArn],
      }),
    );
    this.filesFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["dynamodb:Query"], resources: [props.jobsTable.tableArn] }),
    );
    // The function signs upload URLs: its own role must allow the PUT the URL performs.
    this.filesFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
        resources: [props.datasetsBucket.arnForObjects("tenants/*")],
      }),
    );
    acknowledge(
      this.filesFunction.role!,
      `AwsSolutions-IAM5[Resource::${arnToken(props.datasetsBucket)}/tenants/*]`,
      "Object actions on the tenants/* prefix only; which tenant's prefix is enforced in code from the authorizer context.",
    );

    const files = this.v4.addResource("files");
    this.route(files, "GET", this.filesFunction);
    this.route(files, "POST", this.filesFunction);
    this.route(files.addResource("uploads"), "POST", this.filesFunction);
    const file = files.addResource("{file_id}");
    this.route(file, "GET", this.filesFunction);
    this.route(file, "DELETE", this.filesFunction);
    this.route(file.addResource("content"), "GET", this.filesFunction);

    this.jobsFunction = this.createJobsFunction(props);
    const fineTuning = this.v4.addResource("fine_tuning");
    const jobs = fineTuning.addResource("jobs");
    this.route(jobs, "GET", this.jobsFunction);
    this.route(jobs, "POST", this.jobsFunction);
    const job = jobs.addResource("{job_id}");
    this.route(job, "GET", this.jobsFunction);
    this.route(job, "DELETE", this.jobsFunction);
    this.route(job.addResource("cancel"), "POST", this.jobsFunction);
    this.route(job.addResource("events"), "GET", this.jobsFunction);
    this.route(job.addResource("checkpoints"), "GET", this.jobsFunction);
    // The zhipuai SDK's `fine_tuning.models.delete`.
    const fineTunedModel = fineTuning.addResource("fine_tuned_models").addResource("{model_code}");
    this.route(fineTunedModel, "DELETE", this.jobsFunction);
    const models = this.v4.addResource("models");
    this.route(models, "GET", this.jobsFunction);
    const model = models.addResource("{model_code}");
    this.route(model, "GET", this.jobsFunction);
    this.route(model, "POST", this.jobsFunction);
    this.route(model, "DELETE", this.jobsFunction);
  }

  /** `/v4/fine_tuning/jobs…` and `/v4/models…`: create, list, cancel, events, checkpoints, models. */
  private createJobsFunction(props: ApiProps): PlatformFunction {
    const fn = new PlatformFunction(this, "JobsApi", {
      entry: "lambdas/jobs-api/index.ts",
      description: "/v4/fine_tuning/jobs and /v4/models",
      timeout: Duration.seconds(29),
      memorySize: 1024,
      environment: {
        FILES_TABLE: props.filesTable.tableName,
        JOBS_TABLE: props.jobsTable.tableName,
        EVENTS_TABLE: props.eventsTable.tableName,
        MODELS_TABLE: props.modelsTable.tableName,
        IDEMPOTENCY_TABLE: props.idempotencyTable.tableName,
        TRAINING_QUEUE_URL: props.trainingQueue.queueUrl,
        ARTIFACTS_BUCKET: props.artifactsBucket.bucketName,
      },
    });
    // Creating a job is one transaction: job + model code (conditional put) + idempotency record, with
    // a condition check that the training file is still there.
    // Deleting a job removes its item (conditional on a finished status) and then its events.
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: [
          "dynamodb:GetItem",
          "dynamodb:PutItem",
          "dynamodb:UpdateItem",
          "dynamodb:DeleteItem",
          "dynamodb:Query",
        ],
        resources: [props.jobsTable.tableArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:GetItem", "dynamodb:ConditionCheckItem"],
        resources: [props.filesTable.tableArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem"],
        resources: [props.eventsTable.tableArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
        resources: [props.modelsTable.tableArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:Query"],
        resources: [`${props.modelsTable.tableArn}/index/byTenant`],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:GetItem", "dynamodb:PutItem"],
        resources: [props.idempotencyTable.tableArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["sqs:SendMessage", "sqs:GetQueueAttributes"],
        resources: [props.trainingQueue.queueArn],
      }),
    );
    // Checkpoints: lists a job's checkpoint prefixes and reads each checkpoint.json.
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject"],
        resources: [props.artifactsBucket.arnForObjects("tenants/*")],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["s3:ListBucket"],
        resources: [props.artifactsBucket.bucketArn],
        conditions: { StringLike: { "s3:prefix": ["tenants/*"] } },
      }),
    );
    // Cancel terminates the job's Batch job.
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["batch:TerminateJob"], resources: [batchJobArns(this)] }),
    );
    acknowledge(
      fn.role!,
      `AwsSolutions-IAM5[Resource::${arnToken(props.artifactsBucket)}/tenants/*]`,
      "Reads checkpoint manifests under tenants/*; which tenant's prefix is enforced in code from the authorizer context.",
    );
    acknowledge(
      fn.role!,
      batchJobArnsFinding(this),
      "Batch job ids are known only per job; cancel terminates this account's jobs in this region, the id comes from the tenant's own job record.",
    );
    return fn;
  }

  /** A proxy route behind the API key authorizer. */
  route(
    resource: apigateway.IResource,
    method: string,
    fn: PlatformFunction,
    options: { stream?: boolean } = {},
  ): void {
    resource.addMethod(
      method,
      new apigateway.LambdaIntegration(fn, {
        // A streamed response may last up to 15 minutes (a buffered one 29 seconds).
        ...(options.stream
          ? { responseTransferMode: apigateway.ResponseTransferMode.STREAM, timeout: Duration.minutes(15) }
          : {}),
      }),
      { authorizer: this.authorizer, authorizationType: apigateway.AuthorizationType.CUSTOM },
    );
    acknowledge(
      resource.node.findChild(method),
      "AwsSolutions-COG4",
      "Tenants authenticate with platform API keys (OpenAI-style bearer keys) through the Lambda authorizer, not Cognito users.",
    );
  }
}
