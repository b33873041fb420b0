import type { BaseModel } from "../catalog/base-models.ts";
import type { ModelRecord } from "../jobs/wire.ts";

/**
 * Deployments of full-parameter models: a full model is a new set of weights that needs a server of its
 * own (LoRA models are served on their base model's server and need none). A tenant deploys one with
 * `POST /v4/models/{code}/deploy`; the deployer (lambdas/deployer) starts its server through a
 * {@link DeploymentRuntime} (ECS in AWS, the local inference server on `npm start`), waits for its
 * health check, and records where chat finds it. Pure: the types, the ports and the record's rules.
 *
 *   (none) ──deploy──▶ deploying ──healthy──▶ deployed
 *                         │  └──unhealthy / deadline──▶ failed (resources released)
 *                         └──────────── undeploy ──────────────▶ undeployed (resources released)
 *
 * Every deploy call makes a new deployment id. The deployer's messages carry it, so a message about an
 * earlier deployment (redelivered, or overtaken by an undeploy and a new deploy) changes nothing but
 * the release of that earlier deployment's own resources.
 */

export type DeploymentStatus = "deploying" | "deployed" | "failed" | "undeployed";

/** Stored on the model record (`ModelRecord.deployment`): the model code is the deployment's key. */
export interface DeploymentRecord {
  /** `dep-…`, new per deploy call. */
  readonly id: string;
  readonly status: DeploymentStatus;
  /** GPUs the server shards the model over (vLLM's tensor parallelism); 1 on a CPU server. */
  readonly tensorParallelSize: number;
  /** Where it runs: the planner's instance type. */
  readonly instanceType: string;
  /** Epoch seconds of the deploy call. */
  readonly requestedAt: number;
  /** Epoch seconds at which the server passed its health check; null before. */
  readonly deployedAt: number | null;
  /** Epoch seconds after which a deployment still not healthy fails. */
  readonly deadline: number;
  /** The server's OpenAI-compatible base URL (`…/v1`), set when deployed: what chat relays to. */
  readonly endpoint?: string;
  /** Why it failed (tenant-visible: no internals). */
  readonly reason?: string;
}

/** Statuses that hold (or are about to hold) a server, and count against the tenant's limit. */
export const LIVE_DEPLOYMENT_STATUSES: readonly DeploymentStatus[] = ["deploying", "deployed"];

export const isLive = (deployment: DeploymentRecord | undefined): boolean =>
  deployment !== undefined && LIVE_DEPLOYMENT_STATUSES.includes(deployment.status);

/** The `deployment` field of a full-parameter model's object. */
export function toDeploymentObject(deployment: DeploymentRecord | undefined) {
  if (!deployment) {
    return {
      status: "undeployed" as DeploymentStatus,
      tensor_parallel_size: null,
      instance_type: null,
      deployed_at: null,
    };
  }
  return {
    id: deployment.id,
    status: deployment.status,
    tensor_parallel_size: deployment.tensorParallelSize,
    instance_type: deployment.instanceType,
    requested_at: deployment.requestedAt,
    deployed_at: deployment.deployedAt,
    ...(deployment.status === "failed" && deployment.reason ? { failure_reason: deployment.reason } : {}),
  };
}

// ---- the deployer's messages and ports --------------------------------------------------------

/** A deployer queue message: start a deployment, look at its health again, or release it. */
export interface DeployerMessage {
  readonly action: "deploy" | "check" | "release";
  readonly modelCode: string;
  readonly deploymentId: string;
}

/** What a runtime needs to start one model's server. */
export interface DeploymentSpec {
  readonly modelCode: string;
  readonly deploymentId: string;
  readonly tenantId: string;
  readonly baseModel: string;
  /** The chat family (its template is the one the trainer used). */
  readonly family: BaseModel["family"];
  /** `s3://…/model/`: the consolidated full-parameter weights. */
  readonly artifactUri: string;
  readonly tensorParallelSize: number;
  readonly instanceType: string;
  /** GPUs of the task: the tensor-parallel size, or 0 on a CPU server. */
  readonly gpus: number;
}

/** Which deployment's resources: enough to release them without the model record (it may be gone). */
export type DeploymentRef = Pick<DeploymentSpec, "modelCode" | "deploymentId">;

export type DeploymentProbe =
  | { readonly state: "starting"; readonly detail?: string }
  | { readonly state: "healthy"; readonly endpoint: string }
  | { readonly state: "failed"; readonly reason: string };

/** Where model servers run: ECS services on GPU instances in AWS, the local inference server locally. */
export interface DeploymentRuntime {
  /** Creates the server; idempotent per deployment id (a redelivered message creates nothing twice). */
  start(spec: DeploymentSpec): Promise<void>;
  /** Whether the server passed its health check, and its address once it has. */
  probe(spec: DeploymentSpec): Promise<DeploymentProbe>;
  /** Stops and removes the server; idempotent (nothing there is fine). */
  release(ref: DeploymentRef): Promise<void>;
}

/** The deployer's queue; `delaySeconds` (≤ 900) spaces the health checks. */
export interface DeploymentQueue {
  send(message: DeployerMessage, delaySeconds?: number): Promise<void>;
}

/** How a deploy call's conditional write went. */
export type StartDeploymentOutcome =
  | { readonly outcome: "started" }
  /** A concurrent call started one first (or it is live already): answer the current deployment. */
  | { readonly outcome: "live" }
  /** The model is gone, not the tenant's, or no longer a ready full-parameter model. */
  | { readonly outcome: "not_deployable" };

/** Deployments on the models table (the model code is the key). */
export interface DeploymentsStore {
  /** Any tenant's model of that code (callers check the owner). */
  getModel(modelCode: string): Promise<ModelRecord | undefined>;
  /**
   * Writes a new deployment if the model is the tenant's ready full-parameter model with no live
   * deployment; else nothing.
   */
  startDeployment(
    tenantId: string,
    modelCode: string,
    deployment: DeploymentRecord,
  ): Promise<StartDeploymentOutcome>;
  /**
   * Changes the deployment only while it is still `deploymentId` and in one of `from`; false (nothing
   * written) when another change won. An `endpoint` or `reason` of null removes it.
   */
  updateDeployment(
    modelCode: string,
    deploymentId: string,
    from: readonly DeploymentStatus[],
    change: DeploymentChange,
  ): Promise<boolean>;
  /** The tenant's models with a live deployment (the per-tenant limit counts them). */
  liveDeployments(tenantId: string): Promise<number>;
}

export interface DeploymentChange {
  readonly status: DeploymentStatus;
  readonly deployedAt?: number;
  readonly endpoint?: string | null;
  readonly reason?: string | null;
}
