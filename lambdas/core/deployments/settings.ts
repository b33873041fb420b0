/**
 * The operator's deployment settings (CONFIG_ENV: DEPLOYMENTS_PER_TENANT, DEPLOYMENT_TIMEOUT_MINUTES,
 * DEPLOYMENT_CHECK_SECONDS), parsed once at cold start: a malformed value stops the function loudly.
 */
export interface DeploymentSettings {
  readonly deploymentsPerTenant: number;
  readonly deploymentTimeoutSeconds: number;
  readonly checkDelaySeconds: number;
}

export const DEFAULT_DEPLOYMENT_SETTINGS: DeploymentSettings = {
  deploymentsPerTenant: 2,
  // A GPU instance from zero, a vLLM image of ~10 GB and the weights: tens of minutes in the worst case.
  deploymentTimeoutSeconds: 45 * 60,
  checkDelaySeconds: 30,
};

export function deploymentSettings(values: {
  readonly perTenant?: string | undefined;
  readonly timeoutMinutes?: string | undefined;
  readonly checkSeconds?: string | undefined;
}): DeploymentSettings {
  const d = DEFAULT_DEPLOYMENT_SETTINGS;
  return {
    deploymentsPerTenant: integer("DEPLOYMENTS_PER_TENANT", values.perTenant, d.deploymentsPerTenant, 0),
    deploymentTimeoutSeconds:
      integer("DEPLOYMENT_TIMEOUT_MINUTES", values.timeoutMinutes, d.deploymentTimeoutSeconds / 60, 1) * 60,
    checkDelaySeconds: integer("DEPLOYMENT_CHECK_SECONDS", values.checkSeconds, d.checkDelaySeconds, 1, 900),
  };
}

function integer(name: string, value: string | undefined, fallback: number, min: number, max = 1e6): number {
  if (value === undefined || value.trim() === "") return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}; it is '${value}'.`);
  }
  return parsed;
}
