import * as iam from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";

/**
 * Tenant isolation enforced by IAM (attribute-based access control with STS session tags), not by the
 * containers' own prefix checks alone.
 *
 * A container whose work belongs to one tenant (a training job; an adapter the inference proxy loads)
 * does not use its own role for that tenant's data: it assumes a tenant-scoped role with session tags
 * (`tenantId`, and `jobId` for a training job), and that role's policies name the data through
 * `${aws:PrincipalTag/tenantId}` in the resource ARNs and in `dynamodb:LeadingKeys`. The container's own
 * role may do nothing but assume it. A bug in the trainer's or the proxy's key handling can then reach
 * only the tagged tenant's prefixes: IAM, not the code, refuses another tenant's object.
 *
 * Why session tags (ABAC) rather than an inline session policy built from the tenant id: the policy is
 * static, synthesized and reviewed once (cdk-nag, the CDK assertions and the policy evaluator in
 * test/infra/tenant-isolation.test.ts check it), where a session policy would be IAM JSON assembled at
 * run time in Python, restating the S3 layout and the table keys in a second place (and bounded by the
 * packed policy size); the trust policy can require the tag keys; and CloudTrail records each
 * AssumeRole's tags, so an operator sees which tenant every session was for.
 *
 * What it does not do: the container chooses the tag values from its environment (TENANT_ID, JOB_ID,
 * set by the dispatcher from the job record; the tenant prefix of the artifact URI that the chat
 * function checked). It confines mistakes in the code that handles keys and URIs, not a container whose
 * code is hostile (that one could assume the role with another tenant's tag).
 */

/** The session tag keys the images pass on AssumeRole (batch-images/trainer aws.py, inference s3sync.py). */
export const SESSION_TAGS = { tenant: "tenantId", job: "jobId" } as const;
export type SessionTag = (typeof SESSION_TAGS)[keyof typeof SESSION_TAGS];

/** The environment variable that names the tenant-scoped role to the trainer. */
export const TENANT_ROLE_ENV = "TENANT_ROLE_ARN";
/** The environment variable that names the tenant-scoped adapter reader role to the inference image. */
export const TENANT_READER_ROLE_ENV = "TENANT_READER_ROLE_ARN";

/** `${aws:PrincipalTag/tenantId}`: a policy variable IAM replaces with the session's tag per request. */
export const principalTag = (tag: SessionTag): string => `\${aws:PrincipalTag/${tag}}`;

/**
 * A layout pattern of `contract/platform.json` (`tenants/{tenantId}/jobs/{jobId}/`) with each `{name}`
 * that is a session tag in `tags` replaced by its policy variable and every other `{name}` by `*`.
 */
export function tenantScoped(pattern: string, tags: readonly SessionTag[]): string {
  return pattern.replace(/\{([A-Za-z]+)\}/g, (_, name: string) =>
    (tags as readonly string[]).includes(name) ? principalTag(name as SessionTag) : "*",
  );
}

export interface TenantScopedRoleProps {
  /** The container's own role: the only principal that may assume this one. */
  readonly assumedBy: iam.IRole;
  /** Tags every session must carry (non-empty, without `/`), and the only tags it may carry. */
  readonly tags: readonly SessionTag[];
  readonly description: string;
}

/**
 * A role only `assumedBy` may assume, only with the session tags `tags`; `assumedBy` gets
 * `sts:AssumeRole` and `sts:TagSession` on it and nothing more from here. Grant it what one tenant's
 * session may do, with resources written through {@link tenantScoped} / {@link principalTag}.
 *
 * The trust policy follows the IAM user guide's shape for session tags: `sts:AssumeRole` from the
 * principal, and `sts:TagSession` only with the required tags (present, non-empty, no `/`: a tenant id
 * never has one, and a `/` could reach into a deeper prefix), no other tag keys, and transitive keys
 * among them. `sts:AssumeRole` itself carries no tag condition (the guide's shape; whether its request
 * context has the tags is not documented), so a session could be assumed without them: the role denies
 * such a session everything (`Null` on each tag), rather than rely on how IAM resolves a policy variable
 * that has no value.
 */
export function tenantScopedRole(scope: Construct, id: string, props: TenantScopedRoleProps): iam.Role {
  const role = new iam.Role(scope, id, {
    assumedBy: new iam.ArnPrincipal(props.assumedBy.roleArn),
    // The default one-hour maximum: role chaining (a task role's session assuming this role) allows no
    // more anyway, and the images refresh their credentials before they expire.
    description: props.description,
  });
  const eachTag = (value: string) =>
    Object.fromEntries(props.tags.map((tag) => [`aws:RequestTag/${tag}`, value]));
  role.assumeRolePolicy?.addStatements(
    new iam.PolicyStatement({
      actions: ["sts:TagSession"],
      principals: [new iam.ArnPrincipal(props.assumedBy.roleArn)],
      conditions: {
        StringLike: eachTag("?*"),
        StringNotLike: eachTag("*/*"),
        "ForAllValues:StringEquals": {
          "aws:TagKeys": [...props.tags],
          "sts:TransitiveTagKeys": [...props.tags],
        },
      },
    }),
  );
  for (const tag of props.tags) {
    role.addToPolicy(
      new iam.PolicyStatement({
        effect: iam.Effect.DENY,
        actions: ["*"],
        resources: ["*"],
        conditions: { Null: { [`aws:PrincipalTag/${tag}`]: "true" } },
      }),
    );
  }
  iam.Grant.addToPrincipal({
    grantee: props.assumedBy,
    actions: ["sts:AssumeRole", "sts:TagSession"],
    resourceArns: [role.roleArn],
  });
  return role;
}
