import { type Duration, RemovalPolicy } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { METRICS_NAMESPACE, type ServiceName } from "../resources/definitions.ts";
import { acknowledge } from "./nag.ts";

export interface PlatformFunctionProps {
  /** Path of the handler module, e.g. `lambdas/validator/index.ts`. */
  readonly entry: string;
  /**
   * The handler's `SERVICES` entry: `POWERTOOLS_SERVICE_NAME`, so that the logs, traces and metric
   * dimensions CDK configures name the service the handler's own Powertools name (observability.ts).
   */
  readonly service: ServiceName;
  readonly description: string;
  /** Explicit on purpose: every function states how long it may run. */
  readonly timeout: Duration;
  /** Explicit on purpose: memory is also the CPU share. */
  readonly memorySize: number;
  /** Configuration beyond resource names, which `bind` (bind.ts) sets. */
  readonly environment?: Record<string, string>;
  /** Days to keep logs; 30 by default. */
  readonly logRetention?: logs.RetentionDays;
  readonly reservedConcurrentExecutions?: number;
}

/**
 * The one base for every Lambda function of the platform: ARM64, current Node.js runtime, ESM bundle
 * with source maps, active tracing, its own log group with retention, explicit timeout and memory.
 * Metrics are CloudWatch embedded metric format (EMF) lines in that log group, so writing the log group
 * is all the permission they need (no `cloudwatch:PutMetricData`).
 */
export class PlatformFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: PlatformFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Our own role instead of AWSLambdaBasicExecutionRole: it may write to this function's log group only.
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `Runs the ${id} function`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      role,
      entry: props.entry,
      handler: "handler",
      description: props.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout,
      memorySize: props.memorySize,
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      ...(props.reservedConcurrentExecutions !== undefined
        ? { reservedConcurrentExecutions: props.reservedConcurrentExecutions }
        : {}),
      environment: {
        NODE_OPTIONS: "--enable-source-maps",
        POWERTOOLS_SERVICE_NAME: props.service,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: "node24",
        minify: true,
        sourceMap: true,
        // The Node.js 24 runtime ships AWS SDK v3; bundling it again only grows cold starts.
        externalModules: ["@aws-sdk/*"],
        // Some CommonJS dependencies still call require(); give the ESM bundle one.
        banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
        mainFields: ["module", "main"],
      },
    });
    acknowledge(
      role,
      "AwsSolutions-IAM5[Resource::*]",
      "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions (active tracing).",
    );
    acknowledge(
      this,
      "Serverless-LambdaDLQ",
      "Invoked synchronously (API Gateway, authorizer) or by an SQS event source mapping whose queue has its own DLQ; a function DLQ only applies to asynchronous invocations.",
    );
  }
}
