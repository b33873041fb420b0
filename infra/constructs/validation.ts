import { Duration, Stack } from "aws-cdk-lib";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as iam from "aws-cdk-lib/aws-iam";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3n from "aws-cdk-lib/aws-s3-notifications";
import { Construct } from "constructs";
import { NOTIFICATIONS } from "../resources/definitions.ts";
import type { DurableQueue } from "./durable-queue.ts";
import { acknowledge, arnToken } from "./nag.ts";
import { PlatformFunction } from "./platform-function.ts";

export interface ValidationProps {
  readonly datasetsBucket: s3.Bucket;
  readonly filesTable: dynamodb.ITable;
  /** The queue (with DLQ and alarm) that buffers S3 events for the validator. */
  readonly queue: DurableQueue;
  /** JSON of base model name → max sequence tokens, to count over-length examples. */
  readonly contextLimits: Record<string, number>;
}

/**
 * The validation bounded context: every object created under `tenants/` becomes an SQS message, and the
 * validator streams it and records `processed` with statistics or `error` with a line-level report.
 */
export class Validation extends Construct {
  readonly validator: PlatformFunction;

  constructor(scope: Construct, id: string, props: ValidationProps) {
    super(scope, id);
    const notification = NOTIFICATIONS.find((n) => n.bucket === "datasets" && n.queue === "validation")!;
    props.datasetsBucket.addEventNotification(
      s3.EventType.OBJECT_CREATED,
      new s3n.SqsDestination(props.queue.queue),
      { prefix: notification.prefix },
    );
    this.validator = new PlatformFunction(this, "Validator", {
      entry: "lambdas/validator/index.ts",
      description: "Streams uploaded JSONL files and records statistics or line-level errors",
      // A 1 GiB file at tens of MB/s takes well under this; the queue's visibility timeout is longer.
      timeout: Duration.minutes(5),
      memorySize: 1024,
      environment: {
        FILES_TABLE: props.filesTable.tableName,
        DATASETS_BUCKET: props.datasetsBucket.bucketName,
        CONTEXT_LIMITS: JSON.stringify(props.contextLimits),
      },
    });
    this.validator.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        resources: [props.filesTable.tableArn],
      }),
    );
    this.validator.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject"],
        resources: [props.datasetsBucket.arnForObjects("tenants/*")],
      }),
    );
    acknowledge(
      this.validator.role!,
      `AwsSolutions-IAM5[Resource::${arnToken(props.datasetsBucket)}/tenants/*]`,
      "Reads objects under tenants/* only: every uploaded dataset, whose tenant the key names.",
    );
    acknowledge(
      this.validator,
      "Serverless-LambdaEventSourceMappingDestination",
      "Failed messages go to the validation queue's own DLQ (redrive policy, alarmed); SQS mappings take no on-failure destination.",
    );
    // The singleton CDK creates to configure bucket notifications.
    const notificationsHandler = Stack.of(this).node.children.find((c) =>
      c.node.id.startsWith("BucketNotificationsHandler"),
    );
    if (notificationsHandler) {
      acknowledge(
        notificationsHandler,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's own handler that sets the bucket notification at deploy time; it runs only then.",
      );
    }
    this.validator.addEventSource(
      new SqsEventSource(props.queue.queue, {
        batchSize: 5,
        reportBatchItemFailures: true,
        maxConcurrency: 10,
      }),
    );
  }
}
