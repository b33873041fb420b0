import { type BaseModelCatalog, findBaseModel } from "../core/catalog/base-models.ts";
import type {
  DeployerMessage,
  DeploymentQueue,
  DeploymentRecord,
  DeploymentRuntime,
  DeploymentSpec,
  DeploymentsStore,
} from "../core/deployments/deployment.ts";
import type { ModelRecord } from "../core/jobs/wire.ts";

/**
 * The deployer: moves a deployment from `deploying` to `deployed` (or `failed`) and releases what an
 * undeploy, a failure or a superseded deployment leaves behind. One code path for `deploy` and `check`:
 * start the server (idempotent, so a check also retries a start that failed), probe its health, and
 * either record it, give up, or look again after `checkDelaySeconds`. Never inside an API request.
 */
export interface DeployerDependencies {
  readonly store: Pick<DeploymentsStore, "getModel" | "updateDeployment">;
  readonly runtime: DeploymentRuntime;
  readonly queue: DeploymentQueue;
  readonly catalog: BaseModelCatalog;
  /** Seconds between health checks: 30 in AWS (a GPU server takes minutes), 1 locally. */
  readonly checkDelaySeconds: number;
  /** Epoch ms; Date.now by default. */
  readonly now?: () => number;
  /** Operator detail (never shown to the tenant). */
  readonly log?: (message: string, details: Record<string, unknown>) => void;
}

export async function handleDeployerMessage(
  message: DeployerMessage,
  deps: DeployerDependencies,
): Promise<void> {
  const ref = { modelCode: message.modelCode, deploymentId: message.deploymentId };
  if (message.action === "release") {
    await deps.runtime.release(ref);
    return;
  }
  const record = await deps.store.getModel(message.modelCode);
  const deployment = record?.deployment;
  if (!record || !deployment || deployment.id !== message.deploymentId) {
    // Deleted, or superseded by a later deploy: this deployment's resources are nobody's.
    await deps.runtime.release(ref);
    return;
  }
  if (deployment.status === "deployed") return; // a redelivered check of a finished deployment
  if (deployment.status !== "deploying") {
    await deps.runtime.release(ref);
    return;
  }
  const spec = deploymentSpec(record, deployment, deps.catalog);
  if (!spec) {
    await fail(deps, ref, `its base model '${record.baseModel}' is no longer in the catalog`);
    return;
  }
  const nowSeconds = Math.floor((deps.now?.() ?? Date.now()) / 1000);
  if (nowSeconds > deployment.deadline) {
    const minutes = Math.round((deployment.deadline - deployment.requestedAt) / 60);
    await fail(deps, ref, `its server did not pass its health check within ${minutes} minutes`);
    return;
  }
  try {
    await deps.runtime.start(spec);
  } catch (error) {
    // Throttling or a transient API error: the next check starts it again, until the deadline.
    deps.log?.("deployment start failed; retrying at the next check", { ...ref, error: describe(error) });
    await deps.queue.send({ action: "check", ...ref }, deps.checkDelaySeconds);
    return;
  }
  const probe = await deps.runtime.probe(spec);
  if (probe.state === "healthy") {
    const recorded = await deps.store.updateDeployment(ref.modelCode, ref.deploymentId, ["deploying"], {
      status: "deployed",
      deployedAt: nowSeconds,
      endpoint: probe.endpoint,
      reason: null,
    });
    // Undeployed (or redeployed) while it started: its server is nobody's.
    if (!recorded) await deps.runtime.release(ref);
    return;
  }
  if (probe.state === "failed") {
    await fail(deps, ref, probe.reason);
    return;
  }
  await deps.queue.send({ action: "check", ...ref }, deps.checkDelaySeconds);
}

/** Releases the server, then records why (the release first: a failed deployment holds nothing). */
async function fail(
  deps: DeployerDependencies,
  ref: { modelCode: string; deploymentId: string },
  reason: string,
): Promise<void> {
  deps.log?.("deployment failed", { ...ref, reason });
  await deps.runtime.release(ref);
  await deps.store.updateDeployment(ref.modelCode, ref.deploymentId, ["deploying"], {
    status: "failed",
    reason: `The deployment failed: ${reason}.`,
    endpoint: null,
  });
}

export function deploymentSpec(
  record: ModelRecord,
  deployment: DeploymentRecord,
  catalog: BaseModelCatalog,
): DeploymentSpec | undefined {
  const base = findBaseModel(record.baseModel, catalog);
  if (!base || !record.artifactUri) return undefined;
  const gpus = base.methods.full?.gpus === 0 ? 0 : deployment.tensorParallelSize;
  return {
    modelCode: record.modelCode,
    deploymentId: deployment.id,
    tenantId: record.tenantId,
    baseModel: base.name,
    family: base.family,
    artifactUri: record.artifactUri,
    tensorParallelSize: deployment.tensorParallelSize,
    instanceType: deployment.instanceType,
    gpus,
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export { deployerDependencies } from "./dependencies.ts";
