import { Duration } from "aws-cdk-lib";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { DynamoEventSource, SqsDlq, SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { RetrySchedule } from "../../lambdas/core/webhooks/retry.ts";
import { CONFIG_ENV, SERVICES } from "../resources/definitions.ts";
import { bind, grant, NAME_ONLY, type TableRef } from "./bind.ts";
import type { DurableQueue } from "./durable-queue.ts";
import { acknowledge } from "./nag.ts";
import { deadLetterAlarm } from "./observability.ts";
import { PlatformFunction } from "./platform-function.ts";

export interface WebhooksProps {
  /** Tenants' endpoints (url, events, signing secret). */
  readonly webhooksTable: TableRef<"webhooks">;
  /** Each endpoint's recent deliveries (TTL). */
  readonly deliveriesTable: TableRef<"webhook-deliveries">;
  /** Its stream (NEW_AND_OLD_IMAGES, definitions.ts) feeds the fan-out: job status changes. */
  readonly jobsTable: TableRef<"jobs">;
  /** Its stream feeds the fan-out: file status changes. */
  readonly filesTable: TableRef<"files">;
  /** The `webhook-deliveries` queue (with its DLQ and alarm): one message per event, endpoint and attempt. */
  readonly queue: DurableQueue<"webhook-deliveries">;
  readonly alarmTopic: sns.ITopic;
  /** The delivery retry schedule; lambdas/core/webhooks/retry.ts's defaults (10 s ×3 up to 4 h, 24 h) otherwise. */
  readonly retrySchedule?: Partial<RetrySchedule>;
}

/** Statuses whose changes are events (lambdas/core/webhooks/events.ts); the stream filters keep only these. */
const EVENT_STATUSES = {
  jobs: ["succeeded", "failed", "cancelled", "paused"],
  files: ["processed", "error"],
} as const;

/**
 * The webhooks bounded context. Events come from the jobs and files tables' streams, so every status
 * change is seen whoever writes it (job-status, the jobs API's cancel and pause, the validator), at
 * least once: the fan-out function turns a change into one message per subscribed endpoint on the
 * `webhook-deliveries` queue; the delivery function signs and POSTs it, records the attempt, and
 * re-queues a failure with a growing delay for about 24 h before the DLQ. The API function
 * (`/v4/webhooks…`, routed by `Api.routeWebhooks`) is its own: only it and these two touch the
 * webhooks tables, and it reaches no other table.
 */
export class Webhooks extends Construct {
  readonly apiFunction: PlatformFunction;
  readonly fanoutFunction: PlatformFunction;
  readonly deliveryFunction: PlatformFunction;
  /** Stream batches the fan-out could not handle after its retries (their metadata, for an operator). */
  readonly fanoutFailures: sqs.Queue;

  constructor(scope: Construct, id: string, props: WebhooksProps) {
    super(scope, id);
    const queueRef = props.queue.ref;

    this.apiFunction = new PlatformFunction(this, "WebhooksApi", {
      entry: "lambdas/webhooks-api/index.ts",
      service: SERVICES.webhooksApi,
      description: "/v4/webhooks: a tenant's signed webhook endpoints and their deliveries",
      // A registration resolves the URL's host (no private addresses).
      timeout: Duration.seconds(10),
      memorySize: 256,
    });
    bind(this.apiFunction, props.webhooksTable, { actions: ["GetItem", "PutItem", "DeleteItem", "Query"] });
    bind(this.apiFunction, props.deliveriesTable, { actions: ["Query"] });
    // `POST /v4/webhooks/{id}/test` queues a test event.
    bind(this.apiFunction, queueRef, { actions: ["SendMessage"] });

    this.fanoutFailures = new sqs.Queue(this, "FanoutFailures", {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    acknowledge(
      this.fanoutFailures,
      "AwsSolutions-SQS3",
      "This queue is itself the fan-out's on-failure destination (a dead letter); an operator inspects it.",
    );
    acknowledge(
      this.fanoutFailures,
      "Serverless-SQSRedrivePolicy",
      "This queue is itself the fan-out's on-failure destination (a dead letter); an operator inspects it.",
    );
    deadLetterAlarm(
      this,
      "FanoutFailuresAlarm",
      this.fanoutFailures,
      "Webhook fan-out failed on stream records: their events were not queued for delivery",
      props.alarmTopic,
    );

    this.fanoutFunction = new PlatformFunction(this, "WebhookFanout", {
      entry: "lambdas/webhook-fanout/index.ts",
      service: SERVICES.webhookFanout,
      description: "jobs and files table streams → one webhook delivery per subscribed endpoint",
      timeout: Duration.seconds(60),
      memorySize: 256,
    });
    bind(this.fanoutFunction, props.webhooksTable, { actions: ["Query"] });
    bind(this.fanoutFunction, queueRef, { actions: ["SendMessage"] });
    // The names tell the records' tables apart; their streams are read through the event sources.
    bind(this.fanoutFunction, props.jobsTable, NAME_ONLY);
    bind(this.fanoutFunction, props.filesTable, NAME_ONLY);
    for (const [table, statuses] of [
      [props.jobsTable, EVENT_STATUSES.jobs],
      [props.filesTable, EVENT_STATUSES.files],
    ] as const) {
      this.fanoutFunction.addEventSource(
        new DynamoEventSource(table.table, {
          startingPosition: lambda.StartingPosition.TRIM_HORIZON,
          batchSize: 100,
          maxBatchingWindow: Duration.seconds(1),
          bisectBatchOnError: true,
          reportBatchItemFailures: true,
          retryAttempts: 10,
          onFailure: new SqsDlq(this.fanoutFailures),
          // Only writes that leave the item in an event status invoke the function.
          filters: [
            lambda.FilterCriteria.filter({
              dynamodb: { NewImage: { status: { S: lambda.FilterRule.or(...statuses) } } },
            }),
          ],
        }),
      );
    }
    acknowledge(
      this.fanoutFunction.role!,
      "AwsSolutions-IAM5[Resource::*]",
      "dynamodb:ListStreams (added by the stream event sources) supports no resource-level permissions; X-Ray likewise.",
    );

    const schedule = props.retrySchedule ?? {};
    const scheduleEnv: Record<string, string> = {};
    const scheduleKeys = {
      baseSeconds: CONFIG_ENV.webhookRetryBaseSeconds,
      factor: CONFIG_ENV.webhookRetryFactor,
      maxDelaySeconds: CONFIG_ENV.webhookRetryMaxDelaySeconds,
      windowSeconds: CONFIG_ENV.webhookRetryWindowSeconds,
    } as const;
    for (const [key, variable] of Object.entries(scheduleKeys)) {
      const value = schedule[key as keyof RetrySchedule];
      if (value !== undefined) scheduleEnv[variable] = String(value);
    }
    this.deliveryFunction = new PlatformFunction(this, "WebhookDelivery", {
      entry: "lambdas/webhook-delivery/index.ts",
      service: SERVICES.webhookDelivery,
      description: "Signs and POSTs webhook events to tenants' endpoints; retries with backoff, then the DLQ",
      // Records are attempted in parallel, each at most 10 s (http-sender.ts); the queue's visibility is 180 s.
      timeout: Duration.seconds(30),
      memorySize: 256,
      environment: {
        [CONFIG_ENV.webhookDeadLetterQueueUrl]: props.queue.deadLetterQueue.queueUrl,
        ...scheduleEnv,
      },
    });
    bind(this.deliveryFunction, props.webhooksTable, { actions: ["GetItem"] });
    bind(this.deliveryFunction, props.deliveriesTable, { actions: ["UpdateItem"] });
    // The next attempt is a new, delayed message on the same queue; a spent one goes to its DLQ.
    bind(this.deliveryFunction, queueRef, { actions: ["SendMessage"] });
    grant(
      this.deliveryFunction,
      { kind: "queue", id: "webhook-deliveries", queue: props.queue.deadLetterQueue },
      { actions: ["SendMessage"] },
    );
    this.deliveryFunction.addEventSource(
      new SqsEventSource(props.queue.queue, {
        batchSize: 5,
        reportBatchItemFailures: true,
        maxConcurrency: 10,
      }),
    );
    acknowledge(
      this.deliveryFunction,
      "Serverless-LambdaEventSourceMappingDestination",
      "Failed messages go to the webhook-deliveries queue's own DLQ (redrive policy, alarmed); SQS mappings take no on-failure destination.",
    );
  }
}
