import { describe, expect, it } from "vitest";
import type { ModelRecord } from "../../../lambdas/core/jobs/wire.ts";
import { toFineTunedModelObject } from "../../../lambdas/core/jobs/wire.ts";
import { deployModel, undeployModel } from "../../../lambdas/jobs-api/deployments.ts";
import { deleteModel } from "../../../lambdas/jobs-api/models.ts";
import { fakeDependencies, NOW, OTHER_TENANT, storedJob, TENANT } from "./fakes.ts";

/** A ready model of TENANT trained with `method`. */
async function readyModel(method: "full" | "lora" = "full", fakes = fakeDependencies(), tenantId = TENANT) {
  const job = await storedJob(fakes, { status: "succeeded" }, tenantId);
  const model: ModelRecord = {
    ...fakes.jobs.models.get(job.modelCode)!,
    status: "ready",
    method,
    artifactUri: `s3://artifacts/tenants/${tenantId}/jobs/${job.jobId}/${method === "full" ? "model" : "adapter"}/`,
  };
  fakes.jobs.models.set(job.modelCode, model);
  return { fakes, code: job.modelCode };
}

describe("deploy", () => {
  it("records a deploying deployment planned by the serving planner and queues it for the deployer", async () => {
    const { fakes, code } = await readyModel();
    const record = await deployModel(fakes.deps, TENANT, code);
    expect(record.deployment).toMatchObject({
      status: "deploying",
      // tiny-chat trains and serves on CPU: one process, on its method's instance type.
      tensorParallelSize: 1,
      instanceType: "m7i.large",
      requestedAt: NOW / 1000,
      deployedAt: null,
      deadline: NOW / 1000 + 600,
    });
    expect(record.deployment?.id).toMatch(/^dep-/);
    expect(fakes.deploymentQueue.sent).toEqual([
      {
        message: { action: "deploy", modelCode: code, deploymentId: record.deployment!.id },
        delaySeconds: undefined,
      },
    ]);
    expect(toFineTunedModelObject(record).deployment).toEqual({
      id: record.deployment!.id,
      status: "deploying",
      tensor_parallel_size: 1,
      instance_type: "m7i.large",
      requested_at: NOW / 1000,
      deployed_at: null,
    });
  });

  it("answers a deployment already deploying or deployed unchanged, queueing nothing", async () => {
    const { fakes, code } = await readyModel();
    const first = await deployModel(fakes.deps, TENANT, code);
    expect(await deployModel(fakes.deps, TENANT, code)).toEqual(first);
    const deployed = {
      ...first.deployment!,
      status: "deployed" as const,
      deployedAt: 1,
      endpoint: "http://x/v1",
    };
    fakes.jobs.models.set(code, { ...first, deployment: deployed });
    expect((await deployModel(fakes.deps, TENANT, code)).deployment).toEqual(deployed);
    expect(fakes.deploymentQueue.sent).toHaveLength(1);
  });

  it("is a 400 for a LoRA model and for a base model, saying why", async () => {
    const { fakes, code } = await readyModel("lora");
    await expect(deployModel(fakes.deps, TENANT, code)).rejects.toMatchObject({
      status: 400,
      code: "model_not_deployable",
      message: expect.stringContaining(
        "is a LoRA model: it is served on its base model 'tiny-chat''s server and needs no deploy",
      ),
    });
    await expect(deployModel(fakes.deps, TENANT, "tiny-chat")).rejects.toMatchObject({
      status: 400,
      code: "model_not_deployable",
    });
  });

  it("is a 404 for another tenant's model and an unknown code, alike", async () => {
    const { fakes, code } = await readyModel();
    for (const call of [deployModel, undeployModel]) {
      await expect(call(fakes.deps, OTHER_TENANT, code)).rejects.toMatchObject({
        status: 404,
        code: "model_not_found",
      });
      await expect(call(fakes.deps, TENANT, "ft:tiny-chat:nope")).rejects.toMatchObject({ status: 404 });
    }
    expect(fakes.jobs.models.get(code)?.deployment).toBeUndefined();
  });

  it("is a 409 while the model is training or when its job failed", async () => {
    const { fakes, code } = await readyModel();
    fakes.jobs.models.set(code, { ...fakes.jobs.models.get(code)!, status: "pending" });
    await expect(deployModel(fakes.deps, TENANT, code)).rejects.toMatchObject({
      status: 409,
      code: "model_not_ready",
    });
    fakes.jobs.models.set(code, { ...fakes.jobs.models.get(code)!, status: "failed" });
    await expect(deployModel(fakes.deps, TENANT, code)).rejects.toMatchObject({
      status: 409,
      code: "model_failed",
    });
  });

  it("holds the tenant to its limit of live deployments with a 429 quota_exceeded naming the limit", async () => {
    const fakes = fakeDependencies();
    const codes: string[] = [];
    for (let i = 0; i < 3; i++) codes.push((await readyModel("full", fakes)).code);
    const other = (await readyModel("full", fakes, OTHER_TENANT)).code;
    await deployModel(fakes.deps, TENANT, codes[0]!);
    await deployModel(fakes.deps, TENANT, codes[1]!);
    await expect(deployModel(fakes.deps, TENANT, codes[2]!)).rejects.toMatchObject({
      status: 429,
      code: "quota_exceeded",
      message: expect.stringContaining("the limit is 2"),
    });
    // Another tenant's count is its own.
    expect((await deployModel(fakes.deps, OTHER_TENANT, other)).deployment?.status).toBe("deploying");
    // An undeploy frees a place.
    await undeployModel(fakes.deps, TENANT, codes[0]!);
    expect((await deployModel(fakes.deps, TENANT, codes[2]!)).deployment?.status).toBe("deploying");
  });

  it("answers 503 deployments_unavailable where the platform runs no model servers of its own", async () => {
    const { fakes, code } = await readyModel();
    await expect(
      deployModel({ ...fakes.deps, deploymentsEnabled: false }, TENANT, code),
    ).rejects.toMatchObject({
      status: 503,
      code: "deployments_unavailable",
      message: expect.stringContaining("CDK context inferenceServers"),
    });
    expect(fakes.deploymentQueue.sent).toEqual([]);
  });

  it("marks the deployment failed and answers 503 when it can not be queued, so a retry deploys again", async () => {
    const { fakes, code } = await readyModel();
    fakes.deploymentQueue.failure = new Error("sqs down");
    await expect(deployModel(fakes.deps, TENANT, code)).rejects.toMatchObject({ status: 503 });
    expect(fakes.jobs.models.get(code)?.deployment?.status).toBe("failed");
    fakes.deploymentQueue.failure = undefined;
    expect((await deployModel(fakes.deps, TENANT, code)).deployment?.status).toBe("deploying");
  });
});

describe("undeploy", () => {
  it("marks a live deployment undeployed at once and queues the release of its server", async () => {
    const { fakes, code } = await readyModel();
    const { deployment } = await deployModel(fakes.deps, TENANT, code);
    const record = await undeployModel(fakes.deps, TENANT, code);
    expect(record.deployment).toMatchObject({ id: deployment!.id, status: "undeployed" });
    expect(fakes.deploymentQueue.sent.at(-1)?.message).toEqual({
      action: "release",
      modelCode: code,
      deploymentId: deployment!.id,
    });
  });

  it("answers a model that is not deployed as it is; a LoRA model is a 400", async () => {
    const { fakes, code } = await readyModel();
    const record = await undeployModel(fakes.deps, TENANT, code);
    expect(toFineTunedModelObject(record).deployment).toMatchObject({ status: "undeployed" });
    expect(fakes.deploymentQueue.sent).toEqual([]);
    const lora = await readyModel("lora", fakes);
    await expect(undeployModel(fakes.deps, TENANT, lora.code)).rejects.toMatchObject({ status: 400 });
  });

  it("runs first when a deployed model is deleted", async () => {
    const { fakes, code } = await readyModel();
    const { deployment } = await deployModel(fakes.deps, TENANT, code);
    await deleteModel(fakes.deps, TENANT, code);
    expect(fakes.jobs.models.has(code)).toBe(false);
    expect(fakes.deploymentQueue.sent.at(-1)?.message).toEqual({
      action: "release",
      modelCode: code,
      deploymentId: deployment!.id,
    });
  });
});
