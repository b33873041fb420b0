import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct, type IConstruct } from "constructs";
import {
  BUCKET_ENV,
  type BucketId,
  QUEUE_ENV,
  type QueueId,
  TABLE_ENV,
  type TableId,
  tableDefinition,
} from "../resources/definitions.ts";
import { acknowledge, arnToken, nagResource } from "./nag.ts";

/**
 * One resource of `definitions.ts` with the CDK resource built from it: the id names the environment
 * variable (`TABLE_ENV`, `BUCKET_ENV`, `QUEUE_ENV`), the resource takes the grant. Built by
 * `Storage.table()`, `Storage.bucket()` and `DurableQueue.ref`, so that an id and a resource cannot
 * be paired wrongly.
 */
export interface TableRef<Id extends TableId = TableId> {
  readonly kind: "table";
  readonly id: Id;
  readonly table: dynamodb.ITable;
}
export interface BucketRef<Id extends BucketId = BucketId> {
  readonly kind: "bucket";
  readonly id: Id;
  readonly bucket: s3.IBucket;
}
export interface QueueRef<Id extends QueueId = QueueId> {
  readonly kind: "queue";
  readonly id: Id;
  readonly queue: sqs.IQueue;
}
export type ResourceRef = TableRef | BucketRef | QueueRef;

/** DynamoDB item actions (the `dynamodb:` prefix is added). */
export type TableAction =
  | "GetItem"
  | "PutItem"
  | "UpdateItem"
  | "DeleteItem"
  | "Query"
  | "ConditionCheckItem"
  | "BatchWriteItem";

/**
 * What a principal may do with a table. Exact action lists rather than `grantReadData` /
 * `grantReadWriteData`: those add Scan, BatchGetItem, the stream actions and every index, which no
 * function of the platform needs (one table per entity exists for least privilege per function).
 */
export interface TableAccess {
  /** Actions on the table's items. */
  readonly actions?: readonly TableAction[];
  /** Actions on global secondary indexes, by index name (each must be in the table's definition). */
  readonly indexes?: Readonly<Record<string, readonly TableAction[]>>;
}

/** S3 object actions (the `s3:` prefix is added). */
export type ObjectAction = "GetObject" | "PutObject" | "DeleteObject";

/** Object actions on the keys matching some patterns. */
export interface ObjectGrant {
  /** Key patterns such as `tenants/*`: one resource each. */
  readonly keys: readonly string[];
  readonly actions: readonly ObjectAction[];
  /**
   * Why the wildcard is safe: the reason of the cdk-nag IAM5 acknowledgement each pattern raises (which
   * tenant's or job's keys is decided in code, from the authorizer or the job record).
   */
  readonly why: string;
}

/**
 * What a principal may do with a bucket. Exact object actions on key patterns rather than
 * `grantRead(fn, "tenants/*")` / `grantReadWrite`: those add `s3:GetObject*`, `s3:GetBucket*`,
 * `s3:List*` on the whole bucket and `s3:Abort*`, `s3:DeleteObject*`, which no function needs.
 */
export interface BucketAccess {
  readonly objects?: readonly ObjectGrant[];
  /** `s3:ListBucket`, only for listings under these key patterns (`s3:prefix`, StringLike). */
  readonly list?: readonly string[];
}

/** SQS actions (the `sqs:` prefix is added). */
export type QueueAction = "SendMessage" | "GetQueueAttributes";

/**
 * What a principal may do with a queue. Exact actions rather than `grantSendMessages`, which adds
 * `sqs:GetQueueUrl` (functions get the URL itself). Consumers get theirs from the SQS event source.
 */
export interface QueueAccess {
  readonly actions: readonly QueueAction[];
}

/**
 * The function only passes the name on (to a Batch job's environment, in a URI) and never calls the
 * resource itself: the variable, no grant.
 */
export const NAME_ONLY = "nameOnly";
type NameOnly = typeof NAME_ONLY;

/**
 * Binds a function to a table, bucket or queue of `definitions.ts` in one call: the environment
 * variable the handler reads (`tableName(id)`, `bucketName(id)`, `queueUrl(id)` in lambdas/aws/env.ts)
 * and the least-privilege grant, together.
 *
 * The tables, buckets and queues use AWS-owned or AWS-managed keys (storage.ts, durable-queue.ts), so
 * no KMS grant goes with these.
 */
export function bind(fn: lambda.Function, ref: TableRef, access: TableAccess | NameOnly): void;
export function bind(fn: lambda.Function, ref: BucketRef, access: BucketAccess | NameOnly): void;
export function bind(fn: lambda.Function, ref: QueueRef, access: QueueAccess | NameOnly): void;
export function bind(
  fn: lambda.Function,
  ref: ResourceRef,
  access: TableAccess | BucketAccess | QueueAccess | NameOnly,
): void {
  for (const [name, value] of Object.entries(resourceEnv(ref))) fn.addEnvironment(name, value);
  if (access !== NAME_ONLY) grantAccess(fn, ref, access);
}

/** The grant of {@link bind} alone, for principals that get names otherwise (a Batch job, an ECS task). */
export function grant(grantee: iam.IGrantable, ref: TableRef, access: TableAccess): void;
export function grant(grantee: iam.IGrantable, ref: BucketRef, access: BucketAccess): void;
export function grant(grantee: iam.IGrantable, ref: QueueRef, access: QueueAccess): void;
export function grant(
  grantee: iam.IGrantable,
  ref: ResourceRef,
  access: TableAccess | BucketAccess | QueueAccess,
): void {
  grantAccess(grantee, ref, access);
}

/** `{ JOBS_TABLE: <name>, … }`: the variables of {@link bind}, for a container's environment. */
export function resourceEnv(...refs: readonly ResourceRef[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ref of refs) {
    if (ref.kind === "table") env[TABLE_ENV[ref.id]] = ref.table.tableName;
    else if (ref.kind === "bucket") env[BUCKET_ENV[ref.id]] = ref.bucket.bucketName;
    else env[QUEUE_ENV[ref.id]] = ref.queue.queueUrl;
  }
  return env;
}

function grantAccess(
  grantee: iam.IGrantable,
  ref: ResourceRef,
  access: TableAccess | BucketAccess | QueueAccess,
): void {
  if (ref.kind === "table") grantTable(grantee, ref, access as TableAccess);
  else if (ref.kind === "bucket") grantBucket(grantee, ref, access as BucketAccess);
  else allow(grantee, prefixed("sqs", (access as QueueAccess).actions), [ref.queue.queueArn]);
}

function grantTable(grantee: iam.IGrantable, { id, table }: TableRef, access: TableAccess): void {
  if (access.actions?.length) allow(grantee, prefixed("dynamodb", access.actions), [table.tableArn]);
  const defined = tableDefinition(id).globalSecondaryIndexes.map((index) => index.indexName);
  for (const [index, actions] of Object.entries(access.indexes ?? {})) {
    if (!defined.includes(index)) throw new Error(`Table ${id} has no index ${index} (definitions.ts).`);
    allow(grantee, prefixed("dynamodb", actions), [`${table.tableArn}/index/${index}`]);
  }
}

function grantBucket(grantee: iam.IGrantable, { bucket }: BucketRef, access: BucketAccess): void {
  for (const { keys, actions, why } of access.objects ?? []) {
    allow(
      grantee,
      prefixed("s3", actions),
      keys.map((key) => bucket.arnForObjects(key)),
    );
    for (const key of keys.filter((k) => k.includes("*"))) {
      acknowledge(
        roleOf(grantee),
        `AwsSolutions-IAM5[Resource::${arnToken(bucket)}/${nagResource(key)}]`,
        why,
      );
    }
  }
  if (access.list?.length) {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["s3:ListBucket"],
      resourceArns: [bucket.bucketArn],
      conditions: { StringLike: { "s3:prefix": [...access.list] } },
    });
  }
}

/** The role behind `grantee`, where cdk-nag reports (and acknowledgements attach to) its policy. */
export function roleOf(grantee: iam.IGrantable): IConstruct {
  const role = grantee.grantPrincipal;
  if (!Construct.isConstruct(role)) throw new Error("The principal must be a role of this app.");
  return role;
}

function allow(grantee: iam.IGrantable, actions: string[], resourceArns: string[]): void {
  iam.Grant.addToPrincipal({ grantee, actions, resourceArns });
}

const prefixed = (service: string, actions: readonly string[]): string[] =>
  actions.map((action) => `${service}:${action}`);
