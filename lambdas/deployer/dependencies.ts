import { SERVICES } from "../../infra/resources/definitions.ts";
import { documentClient, sqsClient } from "../aws/clients.ts";
import { DeploymentsRepository, SqsDeploymentQueue } from "../aws/deployments-repository.ts";
import { configEnv, queueUrl, tableName } from "../aws/env.ts";
import { observability } from "../aws/observability.ts";
import { catalogFromEnv } from "../core/catalog/base-models.ts";
import type { DeploymentRuntime } from "../core/deployments/deployment.ts";
import { deploymentSettings } from "../core/deployments/settings.ts";
import type { DeployerDependencies } from "./deploy.ts";

/** The deployer's dependencies from the environment, over `runtime` (ECS in AWS, the local server locally). */
export function deployerDependencies(runtime: DeploymentRuntime): DeployerDependencies {
  const { logger } = observability(SERVICES.deployer);
  const settings = deploymentSettings({ checkSeconds: configEnv("deploymentCheckSeconds") });
  return {
    store: new DeploymentsRepository(documentClient(), tableName("models")),
    runtime,
    queue: new SqsDeploymentQueue(sqsClient(), queueUrl("deployments")),
    catalog: catalogFromEnv(configEnv("catalogOverride")),
    checkDelaySeconds: settings.checkDelaySeconds,
    log: (message, details) => logger.warn(message, details),
  };
}
