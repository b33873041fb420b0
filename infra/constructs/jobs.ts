import { Duration } from "aws-cdk-lib";
import { Construct } from "constructs";
import type { ConfiguredInstanceTypes } from "../../lambdas/core/jobs/resources.ts";
import { CONFIG_ENV, SERVICES } from "../resources/definitions.ts";
import { KEY_PATTERNS } from "../resources/key-patterns.ts";
import { type BucketRef, bind, type QueueRef, type TableRef } from "./bind.ts";
import type { PlatformCatalog } from "./catalog.ts";
import { PlatformFunction } from "./platform-function.ts";
import { grantOnBatchJobs } from "./training-compute.ts";

export interface JobsProps {
  readonly filesTable: TableRef<"files">;
  readonly jobsTable: TableRef<"jobs">;
  readonly eventsTable: TableRef<"job-events">;
  readonly modelsTable: TableRef<"models">;
  readonly idempotencyTable: TableRef<"idempotency">;
  /** A new job is checked against the tenant's concurrent-jobs quota, whose override is read from here. */
  readonly tenantsTable: TableRef<"tenants">;
  readonly artifactsBucket: BucketRef<"artifacts">;
  /** The `training` queue a created job is sent to. */
  readonly trainingQueue: QueueRef<"training">;
  /** The `deployments` queue `POST`/`DELETE /v4/models/{code}/deploy` send the deployer's work to. */
  readonly deploymentsQueue: QueueRef<"deployments">;
  /** Base models a job may start from, their methods, bounds and prices. */
  readonly catalog: PlatformCatalog;
  /** The training compute's instance types: the resource planner chooses among them. */
  readonly instanceTypes: ConfiguredInstanceTypes;
}

/**
 * The fine-tuning jobs bounded context: the function behind `/v4/fine_tuning/jobs…` and `/v4/models…`
 * (create with a dry-run estimate, list, cancel, events, checkpoints, models). The API construct routes
 * to it (`Api.routeJobs`).
 */
export class Jobs extends Construct {
  readonly function: PlatformFunction;

  constructor(scope: Construct, id: string, props: JobsProps) {
    super(scope, id);
    const fn = new PlatformFunction(this, "JobsApi", {
      entry: "lambdas/jobs-api/index.ts",
      service: SERVICES.jobsApi,
      description: "/v4/fine_tuning/jobs and /v4/models",
      timeout: Duration.seconds(29),
      memorySize: 1024,
      environment: { [CONFIG_ENV.trainingInstanceTypes]: JSON.stringify(props.instanceTypes) },
    });
    // Creating a job is one transaction: job + model code (conditional put) + idempotency record, with
    // a conditional update that adds the job to its files' users (still processed, not being deleted).
    // Deleting a job removes its item (conditional on a finished status) and then its events.
    bind(fn, props.filesTable, { actions: ["GetItem", "UpdateItem"] });
    bind(fn, props.jobsTable, { actions: ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"] });
    bind(fn, props.eventsTable, { actions: ["PutItem", "Query", "BatchWriteItem"] });
    bind(fn, props.modelsTable, {
      actions: ["GetItem", "PutItem", "UpdateItem", "DeleteItem"],
      indexes: { byTenant: ["Query"] },
    });
    bind(fn, props.idempotencyTable, { actions: ["GetItem", "PutItem"] });
    bind(fn, props.tenantsTable, { actions: ["GetItem"] });
    bind(fn, props.trainingQueue, { actions: ["SendMessage", "GetQueueAttributes"] });
    bind(fn, props.deploymentsQueue, { actions: ["SendMessage"] });
    // Checkpoints: lists a job's checkpoint prefixes and reads each checkpoint.json (routes.ts).
    const checkpoints = KEY_PATTERNS.checkpoints;
    bind(fn, props.artifactsBucket, {
      objects: [
        {
          keys: [checkpoints],
          actions: ["GetObject"],
          why: "Reads checkpoint manifests of jobs; which tenant's job is enforced in code from the authorizer context.",
        },
      ],
      list: [checkpoints],
    });
    props.catalog.bind(fn);
    // Cancel terminates the job's Batch job.
    grantOnBatchJobs(
      fn,
      ["TerminateJob"],
      "Batch job ids are known only per job; cancel terminates this account's jobs in this region, the id comes from the tenant's own job record.",
    );
    this.function = fn;
  }
}
