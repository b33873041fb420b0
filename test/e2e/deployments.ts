import type OpenAI from "openai";

/** A full-parameter model's `deployment`, as GET /v4/models/{code} shows it. */
export interface DeploymentObject {
  readonly status: "deploying" | "deployed" | "failed" | "undeployed";
  readonly tensor_parallel_size: number | null;
  readonly instance_type: string | null;
  readonly deployed_at: number | null;
  readonly failure_reason?: string;
}

type ModelWithDeployment = OpenAI.Models.Model & { deployment?: DeploymentObject };

const path = (code: string) => `/models/${encodeURIComponent(code)}/deploy`;

/**
 * Deploys a full-parameter model (POST /v4/models/{code}/deploy) and waits until it is deployed; the
 * statuses seen on the way, in order.
 */
export async function deploy(client: OpenAI, code: string, timeoutMs = 120_000): Promise<string[]> {
  const started = await client.post<ModelWithDeployment>(path(code));
  const seen = [started.deployment!.status];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const model = (await client.models.retrieve(code)) as ModelWithDeployment;
    const status = model.deployment!.status;
    if (seen.at(-1) !== status) seen.push(status);
    if (status === "deployed") return seen;
    if (status !== "deploying")
      throw new Error(`deployment of ${code} ended ${JSON.stringify(model.deployment)}`);
    if (Date.now() > deadline) throw new Error(`deployment of ${code} still deploying after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** DELETE /v4/models/{code}/deploy; the model object it answers. */
export async function undeploy(client: OpenAI, code: string): Promise<ModelWithDeployment> {
  return client.delete<ModelWithDeployment>(path(code));
}

/** Runs `use` while the full-parameter models are deployed, undeploying them after (the tenant's limit is 2). */
export async function whileDeployed<T>(
  client: OpenAI,
  codes: readonly string[],
  use: () => Promise<T>,
): Promise<T> {
  for (const code of codes) await deploy(client, code);
  try {
    return await use();
  } finally {
    for (const code of codes) await undeploy(client, code);
  }
}
