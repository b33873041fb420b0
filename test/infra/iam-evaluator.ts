/**
 * A small evaluator of the synthesized IAM policies, for the isolation tests: LocalStack community does
 * not enforce IAM, so what a tenant-scoped session may reach is decided here from the template itself.
 *
 * It knows what the platform's policies use and refuses anything else loudly (an unknown condition
 * operator, `NotAction`, an intrinsic it cannot resolve), so that a policy changing shape fails the
 * tests instead of being misread: Allow/Deny statements, `Action` and `Resource` globs (`*`, `?`), the
 * policy variables `${aws:PrincipalTag/…}` (a statement whose variable has no value matches nothing, as
 * IAM treats it), the operators StringEquals, StringLike, StringNotLike and their `ForAllValues:`
 * forms, and Null. Resource ARNs of the template's own resources are written `arn:aws:<service>:::<LogicalId>`
 * (S3 buckets, DynamoDB tables, IAM roles).
 */

import type { Template } from "aws-cdk-lib/assertions";

export interface Statement {
  readonly Effect: "Allow" | "Deny";
  readonly Action?: string | string[];
  readonly Resource?: unknown;
  readonly Principal?: unknown;
  readonly Condition?: Record<string, Record<string, string | string[]>>;
  readonly [other: string]: unknown;
}

export interface Request {
  /** `s3:GetObject`. */
  readonly action: string;
  /** The resource ARN, with the template's resources as {@link arnOf} writes them. */
  readonly resource?: string;
  /** The calling principal's ARN (trust policies only). */
  readonly principal?: string;
  /** The session's tags: `aws:PrincipalTag/<key>`. */
  readonly principalTags?: Readonly<Record<string, string>>;
  /** Other context keys: `s3:prefix`, `dynamodb:LeadingKeys`, `aws:RequestTag/tenantId`, `aws:TagKeys`. */
  readonly context?: Readonly<Record<string, string | readonly string[]>>;
}

const SERVICE_OF: Record<string, string> = {
  "AWS::S3::Bucket": "s3",
  "AWS::DynamoDB::Table": "dynamodb",
  "AWS::DynamoDB::GlobalTable": "dynamodb",
  "AWS::IAM::Role": "iam",
};

/** The evaluator's ARN of a template resource: `arn:aws:s3:::StorageDatasets615E7AC1`. */
export function arnOf(template: Template, logicalIdPrefix: string): string {
  const [id, resource] = resourceByPrefix(template, logicalIdPrefix);
  const service = SERVICE_OF[resource.Type];
  if (!service) throw new Error(`no ARN form for ${resource.Type} (${id})`);
  return `arn:aws:${service}:::${id}`;
}

interface TemplateResource {
  readonly Type: string;
  readonly Properties: {
    readonly Roles?: unknown[];
    readonly PolicyDocument?: { readonly Statement: unknown[] };
    readonly AssumeRolePolicyDocument?: { readonly Statement: unknown[] };
  };
}

const resourcesOf = (template: Template) => template.toJSON().Resources as Record<string, TemplateResource>;

function resourceByPrefix(template: Template, prefix: string): [string, TemplateResource] {
  const resources = resourcesOf(template);
  const found = Object.entries(resources).filter(
    ([id, r]) => id.startsWith(prefix) && SERVICE_OF[r.Type] !== undefined,
  );
  if (found.length !== 1) throw new Error(`${found.length} resources with the logical id prefix ${prefix}`);
  return found[0]!;
}

/** The statements of the identity policies attached to the role whose logical id starts with `rolePrefix`. */
export function identityStatements(template: Template, rolePrefix: string): Statement[] {
  const [roleId] = resourceByPrefix(template, rolePrefix);
  return Object.values(resourcesOf(template))
    .filter(
      (r) =>
        r.Type === "AWS::IAM::Policy" &&
        (r.Properties.Roles ?? []).some((ref) => JSON.stringify(ref) === JSON.stringify({ Ref: roleId })),
    )
    .flatMap((r) => resolveStatements(template, r.Properties.PolicyDocument?.Statement ?? []));
}

/** The trust policy's statements of the role whose logical id starts with `rolePrefix`. */
export function trustStatements(template: Template, rolePrefix: string): Statement[] {
  const [, role] = resourceByPrefix(template, rolePrefix);
  return resolveStatements(template, role.Properties.AssumeRolePolicyDocument?.Statement ?? []);
}

function resolveStatements(template: Template, statements: unknown[]): Statement[] {
  return statements.map((s) => resolve(template, s) as Statement);
}

/** Fn::GetAtt …Arn, Ref and Fn::Join of the template, recursively, into plain strings. */
function resolve(template: Template, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => resolve(template, v));
  if (value === null || typeof value !== "object") return value;
  const object = value as Record<string, unknown>;
  if ("Fn::GetAtt" in object) {
    const [id, attribute] = object["Fn::GetAtt"] as [string, string];
    if (attribute !== "Arn") throw new Error(`cannot resolve Fn::GetAtt ${id}.${attribute}`);
    return arnOf(template, id);
  }
  if ("Fn::Join" in object) {
    const [separator, parts] = object["Fn::Join"] as [string, unknown[]];
    return parts.map((part) => resolve(template, part)).join(separator);
  }
  if ("Ref" in object) return String(object.Ref);
  if (Object.keys(object).some((key) => key.startsWith("Fn::"))) {
    throw new Error(`cannot resolve ${JSON.stringify(object)}`);
  }
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, resolve(template, v)]));
}

/** Whether some Allow statement matches the request and no Deny statement does. */
export function isAllowed(statements: readonly Statement[], request: Request): boolean {
  const matching = statements.filter((s) => matches(s, request));
  return matching.some((s) => s.Effect === "Allow") && !matching.some((s) => s.Effect === "Deny");
}

function matches(statement: Statement, request: Request): boolean {
  for (const unsupported of ["NotAction", "NotResource", "NotPrincipal"]) {
    if (unsupported in statement) throw new Error(`the evaluator does not support ${unsupported}`);
  }
  const actions = list(statement.Action);
  if (!actions.some((pattern) => glob(pattern, request.action, request, true))) return false;
  if (statement.Principal !== undefined && !principalMatches(statement.Principal, request)) return false;
  if (statement.Resource !== undefined) {
    if (request.resource === undefined) return false;
    if (!list(statement.Resource).some((pattern) => glob(pattern, request.resource!, request))) return false;
  }
  return Object.entries(statement.Condition ?? {}).every(([operator, keys]) =>
    Object.entries(keys).every(([key, values]) => condition(operator, key, list(values), request)),
  );
}

function principalMatches(principal: unknown, request: Request): boolean {
  if (request.principal === undefined) return false;
  const aws = (principal as { AWS?: unknown }).AWS;
  return aws !== undefined && list(aws).includes(request.principal);
}

function condition(operator: string, key: string, policyValues: string[], request: Request): boolean {
  if (operator === "Null") {
    if (policyValues.length !== 1) throw new Error(`Null on ${key} takes one value`);
    return (contextValues(key, request) === undefined) === (policyValues[0] === "true");
  }
  const forAll = operator.startsWith("ForAllValues:");
  const base = operator.replace(/^ForAllValues:/, "");
  const test = (value: string): boolean => {
    switch (base) {
      case "StringEquals":
        return policyValues.some((p) => substitute(p, request) === value);
      case "StringLike":
        return policyValues.some((p) => glob(p, value, request));
      case "StringNotLike":
        return !policyValues.some((p) => glob(p, value, request));
      default:
        throw new Error(`the evaluator does not support the condition operator ${operator}`);
    }
  };
  const present = contextValues(key, request);
  if (forAll) return present === undefined || present.every(test);
  if (present === undefined) return base === "StringNotLike";
  if (present.length !== 1) throw new Error(`${key} is multivalued: use a ForAllValues: operator`);
  return test(present[0]!);
}

function contextValues(key: string, request: Request): string[] | undefined {
  if (key.startsWith("aws:PrincipalTag/")) {
    const value = request.principalTags?.[key.slice("aws:PrincipalTag/".length)];
    return value === undefined ? undefined : [value];
  }
  const value = request.context?.[key];
  return value === undefined ? undefined : list(value as string | string[]);
}

/** `${aws:PrincipalTag/x}` → its value; undefined when a variable has none (the statement cannot match). */
function substitute(pattern: string, request: Request): string | undefined {
  let missing = false;
  const text = pattern.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
    const values = contextValues(name, request);
    if (values?.length !== 1) missing = true;
    return values?.[0] ?? "";
  });
  return missing ? undefined : text;
}

/**
 * IAM's wildcard match: `*` any run of characters, `?` one; a variable's value is literal (its own `*`
 * matches only `*`).
 */
function glob(pattern: string, value: string, request: Request, ignoreCase = false): boolean {
  let source = "";
  for (const part of pattern.split(/(\$\{[^}]+\})/)) {
    if (part.startsWith("${")) {
      const substituted = substitute(part, request);
      if (substituted === undefined) return false;
      source += literal(substituted);
    } else {
      source += part
        .split("")
        .map((c) => (c === "*" ? ".*" : c === "?" ? "." : literal(c)))
        .join("");
    }
  }
  return new RegExp(`^${source}$`, ignoreCase ? "is" : "s").test(value);
}

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const list = (value: unknown): string[] => (Array.isArray(value) ? value : [value]).map(String);
