import { type CfnResource, Stack, Validations } from "aws-cdk-lib";
import type { IConstruct } from "constructs";

/**
 * Acknowledges one cdk-nag finding on one construct (and its children), with the reason. Findings are
 * named as cdk-nag prints them, e.g. `AwsSolutions-IAM5[Resource::*]`; the pack prefix is added here.
 */
export function acknowledge(construct: IConstruct, finding: string, reason: string): void {
  const pack = finding.startsWith("Serverless-") ? "Serverless" : "AwsSolutions";
  Validations.of(construct).acknowledge({ id: `${pack}::${finding}`, reason });
}

/** `<LogicalId.Arn>`: how cdk-nag names a resource's ARN inside an IAM5 finding. */
export function arnToken(resource: IConstruct): string {
  const cfn = resource.node.defaultChild as CfnResource;
  return `<${Stack.of(resource).getLogicalId(cfn)}.Arn>`;
}

/**
 * A resource string as cdk-nag prints it inside a finding: IAM policy variables (`${aws:PrincipalTag/x}`)
 * become `<aws:PrincipalTag/x>`, like the tokens it names.
 */
export function nagResource(resource: string): string {
  return resource.replace(/\$\{([^}]+)\}/g, "<$1>");
}
