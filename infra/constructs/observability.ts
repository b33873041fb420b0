import * as kms from "aws-cdk-lib/aws-kms";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";

export interface ObservabilityProps {
  /** An address subscribed to every alarm; none by default (subscribe later in the console). */
  readonly alarmEmail?: string;
}

/** The observability bounded context: the topic every alarm of the platform notifies. */
export class Observability extends Construct {
  readonly alarmTopic: sns.Topic;

  constructor(scope: Construct, id: string, props: ObservabilityProps = {}) {
    super(scope, id);
    this.alarmTopic = new sns.Topic(this, "AlarmTopic", {
      displayName: "Fine-tuning platform alarms",
      // The AWS-managed key: CloudWatch alarms may publish to it without a key policy of ours.
      masterKey: kms.Alias.fromAliasName(this, "SnsKey", "alias/aws/sns"),
      enforceSSL: true,
    });
    if (props.alarmEmail) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }
  }
}
