import type {
  DeploymentProbe,
  DeploymentRef,
  DeploymentRuntime,
  DeploymentSpec,
} from "../../lambdas/core/deployments/deployment.ts";

/**
 * Deployments on the local platform: the local inference server (`python -m ft_trainer.serve`) loads a
 * full-parameter model when deployed and unloads it when undeployed, through its loopback admin
 * endpoints (`/admin/deployments/{code}`, documented in ft_trainer/serve.py). The deployer, its queue
 * and the states are the same as in AWS; only where the server runs differs.
 */
export class LocalDeploymentRuntime implements DeploymentRuntime {
  /** `inferenceUrl`: the server's OpenAI-compatible base URL, `http://127.0.0.1:{port}/v1`. */
  constructor(private readonly inferenceUrl: string) {}

  private admin(modelCode: string): string {
    return `${new URL(this.inferenceUrl).origin}/admin/deployments/${encodeURIComponent(modelCode)}`;
  }

  async start(spec: DeploymentSpec): Promise<void> {
    const response = await fetch(this.admin(spec.modelCode), {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        base_model: spec.baseModel,
        artifact_uri: spec.artifactUri,
        family: spec.family,
      }),
    });
    if (!response.ok) {
      throw new Error(
        `the local inference server refused the deploy (${response.status}): ${await response.text()}`,
      );
    }
  }

  async probe(spec: DeploymentSpec): Promise<DeploymentProbe> {
    const response = await fetch(this.admin(spec.modelCode));
    if (response.status === 404) return { state: "starting", detail: "not loading yet" };
    if (!response.ok) throw new Error(`the local inference server answered ${response.status}`);
    const body = (await response.json()) as { status?: string; error?: string | null };
    if (body.status === "ready") return { state: "healthy", endpoint: this.inferenceUrl };
    if (body.status === "failed") {
      return {
        state: "failed",
        reason: `its weights could not be loaded (${body.error ?? "unknown error"})`,
      };
    }
    return { state: "starting", detail: body.status ?? "loading" };
  }

  async release(ref: DeploymentRef): Promise<void> {
    const response = await fetch(this.admin(ref.modelCode), { method: "DELETE" });
    if (!response.ok && response.status !== 404) {
      throw new Error(`the local inference server did not unload ${ref.modelCode} (${response.status})`);
    }
  }
}
