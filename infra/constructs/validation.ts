import { Duration, Stack } from "aws-cdk-lib";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3n from "aws-cdk-lib/aws-s3-notifications";
import { Construct } from "constructs";
import { NOTIFICATIONS, SERVICES } from "../resources/definitions.ts";
import { KEY_PATTERNS } from "../resources/key-patterns.ts";
import { type BucketRef, bind, type TableRef } from "./bind.ts";
import type { PlatformCatalog } from "./catalog.ts";
import type { DurableQueue } from "./durable-queue.ts";
import { acknowledge } from "./nag.ts";
import { PlatformFunction } from "./platform-function.ts";

export interface ValidationProps {
  readonly datasetsBucket: BucketRef<"datasets">;
  readonly filesTable: TableRef<"files">;
  /** The queue (with DLQ and alarm) that buffers S3 events for the validator. */
  readonly queue: DurableQueue;
  /** The validator counts over-length examples against each catalog model's maximum sequence length. */
  readonly catalog: PlatformCatalog;
}

/**
 * The validation bounded context: every dataset object created under `tenants/` becomes an SQS message, and the
 * validator streams it and records `processed` with statistics or `error` with a line-level report.
 */
export class Validation extends Construct {
  readonly validator: PlatformFunction;

  constructor(scope: Construct, id: string, props: ValidationProps) {
    super(scope, id);
    const notification = NOTIFICATIONS.find((n) => n.bucket === "datasets" && n.queue === "validation")!;
    props.datasetsBucket.bucket.addEventNotification(
      s3.EventType.OBJECT_CREATED,
      new s3n.SqsDestination(props.queue.queue),
      { prefix: notification.prefix, ...(notification.suffix ? { suffix: notification.suffix } : {}) },
    );
    this.validator = new PlatformFunction(this, "Validator", {
      entry: "lambdas/validator/index.ts",
      service: SERVICES.validator,
      description: "Streams uploaded JSONL files and records statistics or line-level errors",
      // A 1 GiB file at tens of MB/s takes well under this; the queue's visibility timeout is longer.
      timeout: Duration.minutes(5),
      memorySize: 1024,
    });
    bind(this.validator, props.filesTable, { actions: ["GetItem", "UpdateItem"] });
    bind(this.validator, props.datasetsBucket, {
      objects: [
        {
          keys: [KEY_PATTERNS.datasets],
          actions: ["GetObject"],
          why: "Reads dataset objects only: every uploaded dataset, whose tenant the key names.",
        },
      ],
    });
    props.catalog.bind(this.validator);
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
