import { Duration, Validations } from "aws-cdk-lib";
import type * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import type * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { dlqName, physicalName, type QueueDefinition, type QueueId } from "../resources/definitions.ts";
import type { QueueRef } from "./bind.ts";
import { deadLetterAlarm } from "./observability.ts";

export interface DurableQueueProps<Id extends QueueId = QueueId> {
  readonly prefix: string;
  readonly definition: QueueDefinition & { readonly id: Id };
  /** Where the dead-letter alarm notifies. */
  readonly alarmTopic: sns.ITopic;
}

/**
 * An SQS queue with its dead-letter queue and an alarm that fires as soon as one message lands there:
 * a message in a DLQ is a tenant's upload or job that nobody processed.
 */
export class DurableQueue<Id extends QueueId = QueueId> extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly dlqAlarm: cloudwatch.Alarm;
  /** The queue with its `definitions.ts` id, to `bind` a producer to. */
  readonly ref: QueueRef<Id>;

  constructor(scope: Construct, id: string, props: DurableQueueProps<Id>) {
    super(scope, id);
    const def = props.definition;
    this.deadLetterQueue = new sqs.Queue(this, "Dlq", {
      queueName: dlqName(props.prefix, def.id),
      retentionPeriod: Duration.seconds(def.dlqRetentionPeriodSeconds),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: "Serverless::Serverless-SQSRedrivePolicy",
      reason: "This is the dead-letter queue itself; its messages are inspected and redriven by an operator.",
    });
    this.queue = new sqs.Queue(this, "Queue", {
      queueName: physicalName(props.prefix, def.id),
      visibilityTimeout: Duration.seconds(def.visibilityTimeoutSeconds),
      retentionPeriod: Duration.seconds(def.retentionPeriodSeconds),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: def.maxReceiveCount },
    });
    this.ref = { kind: "queue", id: def.id, queue: this.queue };
    this.dlqAlarm = deadLetterAlarm(
      this,
      "DlqAlarm",
      this.deadLetterQueue,
      `Messages in ${dlqName(props.prefix, def.id)}: ${def.id} work that failed ${def.maxReceiveCount} times`,
      props.alarmTopic,
    );
  }
}
