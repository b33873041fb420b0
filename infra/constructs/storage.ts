import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import {
  BUCKETS,
  type BucketId,
  type KeyAttribute,
  physicalName,
  TABLES,
  type TableDefinition,
  type TableId,
} from "../resources/definitions.ts";
import type { BucketRef, TableRef } from "./bind.ts";

export interface StorageProps {
  /** Prefix of physical table names. */
  readonly prefix: string;
  /**
   * RETAIN (the default) keeps tables and buckets when the stack is deleted: they hold tenants' data.
   * DESTROY is for throw-away test stacks.
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The storage bounded context: the datasets and artifacts buckets (plus their access-log bucket) and
 * every DynamoDB table, built from the shared definitions in resources/definitions.ts.
 */
export class Storage extends Construct {
  readonly buckets: Readonly<Record<BucketId, s3.Bucket>>;
  readonly tables: Readonly<Record<TableId, dynamodb.Table>>;
  readonly accessLogsBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const autoDelete = removalPolicy === RemovalPolicy.DESTROY;

    // Server access logs cannot be delivered to a bucket that itself logs, nor to a KMS-encrypted one.
    this.accessLogsBucket = new s3.Bucket(this, "AccessLogs", {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy,
      autoDeleteObjects: autoDelete,
    });

    const buckets = {} as Record<BucketId, s3.Bucket>;
    for (const def of BUCKETS) {
      buckets[def.id] = new s3.Bucket(this, pascal(def.id), {
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        encryption: s3.BucketEncryption.S3_MANAGED,
        enforceSSL: true,
        versioned: def.versioned,
        serverAccessLogsBucket: this.accessLogsBucket,
        serverAccessLogsPrefix: `${def.id}/`,
        lifecycleRules: [
          { abortIncompleteMultipartUploadAfter: Duration.days(1) },
          ...(def.versioned ? [{ noncurrentVersionExpiration: Duration.days(30) }] : []),
        ],
        // Browsers may PUT to presigned URLs directly; nothing else is allowed cross-origin.
        cors: [{ allowedMethods: [s3.HttpMethods.PUT], allowedOrigins: ["*"], allowedHeaders: ["*"] }],
        removalPolicy,
        autoDeleteObjects: autoDelete,
      });
    }
    this.buckets = buckets;

    const tables = {} as Record<TableId, dynamodb.Table>;
    for (const def of TABLES) tables[def.id] = this.createTable(def, props.prefix, removalPolicy);
    this.tables = tables;
  }

  /** The table of `definitions.ts` named `id`, to `bind` a function to. */
  table<Id extends TableId>(id: Id): TableRef<Id> {
    return { kind: "table", id, table: this.tables[id] };
  }

  /** The bucket of `definitions.ts` named `id`, to `bind` a function to. */
  bucket<Id extends BucketId>(id: Id): BucketRef<Id> {
    return { kind: "bucket", id, bucket: this.buckets[id] };
  }

  private createTable(def: TableDefinition, prefix: string, removalPolicy: RemovalPolicy): dynamodb.Table {
    const table = new dynamodb.Table(this, `${pascal(def.id)}Table`, {
      tableName: physicalName(prefix, def.id),
      partitionKey: attribute(def.partitionKey),
      ...(def.sortKey ? { sortKey: attribute(def.sortKey) } : {}),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      ...(def.timeToLiveAttribute ? { timeToLiveAttribute: def.timeToLiveAttribute } : {}),
      ...(def.stream ? { stream: dynamodb.StreamViewType[def.stream] } : {}),
      removalPolicy,
    });
    for (const index of def.globalSecondaryIndexes) {
      table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: attribute(index.partitionKey),
        ...(index.sortKey ? { sortKey: attribute(index.sortKey) } : {}),
        projectionType: dynamodb.ProjectionType[index.projection],
      });
    }
    return table;
  }
}

function attribute(key: KeyAttribute): dynamodb.Attribute {
  return {
    name: key.name,
    type: key.type === "S" ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER,
  };
}

/** `job-events` → `JobEvents`, for construct ids. */
export function pascal(id: string): string {
  return id
    .split("-")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}
