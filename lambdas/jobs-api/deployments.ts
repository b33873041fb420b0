import { findBaseModel } from "../core/catalog/base-models.ts";
import {
  type DeploymentQueue,
  type DeploymentRecord,
  type DeploymentsStore,
  isLive,
} from "../core/deployments/deployment.ts";
import { planServing } from "../core/deployments/plan.ts";
import {
  ConflictError,
  InvalidRequestError,
  RateLimitError,
  ServiceUnavailableError,
} from "../core/errors.ts";
import { newId } from "../core/ids.ts";
import type { GpuInstanceType } from "../core/jobs/resources.ts";
import type { ModelRecord } from "../core/jobs/wire.ts";
import { type Clock, nowSeconds } from "./dependencies.ts";
import { causedBy, modelNotFound } from "./errors.ts";

/**
 * `POST` and `DELETE /v4/models/{code}/deploy`: a full-parameter model gets a server of its own (the
 * deployer starts it; this only records the request and queues it), and loses it again. A LoRA model
 * is served on its base model's server and needs no deploy.
 */
export interface DeploymentsDependencies extends Clock {
  /**
   * Whether this platform runs model servers of its own: in AWS only with private inference servers
   * (CDK context `inferenceServers`); always on the local platform.
   */
  readonly deploymentsEnabled: boolean;
  readonly deployments: DeploymentsStore;
  readonly deploymentQueue: DeploymentQueue;
  /** Live (deploying or deployed) deployments a tenant may hold at once (operator setting). */
  readonly deploymentsPerTenant: number;
  /** How long a server may take to pass its health check before the deployment fails, seconds. */
  readonly deploymentTimeoutSeconds: number;
  /** GPU types the serving planner may choose from; every known type when absent. */
  readonly servingInstanceTypes?: readonly GpuInstanceType[];
  readonly catalog: Parameters<typeof findBaseModel>[1];
}

/** Deploys the tenant's full-parameter model; a deployment already under way or live is answered as it is. */
export async function deployModel(
  deps: DeploymentsDependencies,
  tenantId: string,
  code: string,
): Promise<ModelRecord> {
  const record = await deployableModel(deps, tenantId, code, "deployed");
  if (isLive(record.deployment)) return record;
  if (!deps.deploymentsEnabled) {
    throw new ServiceUnavailableError(
      "This platform serves chat through an external endpoint and runs no model servers of its own, so full-parameter models can not be deployed here. The operator enables deployments with private inference servers (CDK context inferenceServers).",
      "deployments_unavailable",
    );
  }
  const live = await deps.deployments.liveDeployments(tenantId);
  if (live >= deps.deploymentsPerTenant) {
    throw new RateLimitError(
      `Your organization has ${live} live deployments; the limit is ${deps.deploymentsPerTenant} (deployments per tenant, set by the operator). Undeploy one with DELETE /v4/models/{code}/deploy, then retry.`,
      "quota_exceeded",
    );
  }
  const base = findBaseModel(record.baseModel, deps.catalog);
  if (!base) {
    throw new ServiceUnavailableError(
      `The base model '${record.baseModel}' of '${code}' is no longer served by this platform.`,
      "model_not_served",
    );
  }
  let plan: ReturnType<typeof planServing>;
  try {
    plan = planServing(base, deps.servingInstanceTypes);
  } catch (error) {
    throw causedBy(
      new ServiceUnavailableError(
        `No GPU instance type configured on this platform can serve '${code}' (${(error as Error).message})`,
        "model_not_served",
      ),
      error,
    );
  }
  const now = nowSeconds(deps);
  const deployment: DeploymentRecord = {
    id: newId("dep", now * 1000),
    status: "deploying",
    tensorParallelSize: plan.tensorParallelSize,
    instanceType: plan.instanceType,
    requestedAt: now,
    deployedAt: null,
    deadline: now + deps.deploymentTimeoutSeconds,
  };
  const started = await deps.deployments.startDeployment(tenantId, code, deployment);
  if (started.outcome === "started") {
    try {
      await deps.deploymentQueue.send({ action: "deploy", modelCode: code, deploymentId: deployment.id });
    } catch (error) {
      // Nothing will ever start it: record that, so a retry can deploy again.
      await deps.deployments.updateDeployment(code, deployment.id, ["deploying"], {
        status: "failed",
        reason: "The deployment could not be queued; deploy again.",
      });
      throw causedBy(
        new ServiceUnavailableError(
          "The deployment could not be queued; retry shortly.",
          "deployment_unavailable",
        ),
        error,
      );
    }
  }
  return current(deps, tenantId, code);
}

/** Undeploys the tenant's full-parameter model; one with no live deployment is answered as it is. */
export async function undeployModel(
  deps: DeploymentsDependencies,
  tenantId: string,
  code: string,
): Promise<ModelRecord> {
  const record = await deployableModel(deps, tenantId, code, "undeployed");
  await releaseDeployment(deps, record);
  return current(deps, tenantId, code);
}

/** The model as stored now; 404 when it went away meanwhile (deleted by a concurrent call). */
async function current(deps: DeploymentsDependencies, tenantId: string, code: string): Promise<ModelRecord> {
  const record = await deps.deployments.getModel(code);
  if (!record || record.tenantId !== tenantId) throw modelNotFound(code);
  return record;
}

/**
 * Marks a live deployment undeployed (chat stops at once) and queues the release of its server. The
 * release needs only the message, so it completes even when the model is deleted right after.
 */
export async function releaseDeployment(
  deps: Pick<DeploymentsDependencies, "deployments" | "deploymentQueue">,
  record: ModelRecord,
): Promise<void> {
  const deployment = record.deployment;
  if (!deployment || !isLive(deployment)) return;
  await deps.deployments.updateDeployment(record.modelCode, deployment.id, ["deploying", "deployed"], {
    status: "undeployed",
    endpoint: null,
  });
  await deps.deploymentQueue.send({
    action: "release",
    modelCode: record.modelCode,
    deploymentId: deployment.id,
  });
}

/** The tenant's ready full-parameter model, or the error that says why it can not be (un)deployed. */
async function deployableModel(
  deps: DeploymentsDependencies,
  tenantId: string,
  code: string,
  verb: "deployed" | "undeployed",
): Promise<ModelRecord> {
  if (findBaseModel(code, deps.catalog)) {
    throw new InvalidRequestError(
      `'${code}' is a base model: the platform serves it; it can not be ${verb}.`,
      "model",
      "model_not_deployable",
    );
  }
  const record = await deps.deployments.getModel(code);
  if (!record || record.tenantId !== tenantId) throw modelNotFound(code);
  if (record.method !== "full") {
    throw new InvalidRequestError(
      `'${code}' is a LoRA model: it is served on its base model '${record.baseModel}''s server and needs no deploy. Chat with it directly.`,
      "model",
      "model_not_deployable",
    );
  }
  if (verb === "deployed" && record.status === "pending") {
    throw new ConflictError(
      `The model '${code}' is still training (job ${record.jobId}); deploy it once its job has succeeded.`,
      "model_not_ready",
      "model",
    );
  }
  if (verb === "deployed" && record.status === "failed") {
    throw new ConflictError(
      `The model '${code}' can not be deployed: its fine-tuning job ${record.jobId} did not succeed.`,
      "model_failed",
      "model",
    );
  }
  return record;
}
