import { DeleteMessageCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { DeploymentsRepository, SqsDeploymentQueue } from "../../lambdas/aws/deployments-repository.ts";
import { DEFAULT_CATALOG } from "../../lambdas/core/catalog/base-models.ts";
import type {
  DeployerMessage,
  DeploymentProbe,
  DeploymentRef,
  DeploymentRuntime,
} from "../../lambdas/core/deployments/deployment.ts";
import type { ModelRecord } from "../../lambdas/core/jobs/wire.ts";
import { handleDeployerMessage } from "../../lambdas/deployer/deploy.ts";
import {
  type DeploymentsDependencies,
  deployModel,
  undeployModel,
} from "../../lambdas/jobs-api/deployments.ts";
import type { BootstrappedResources } from "../../local/bootstrap.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { freshResources, localClients, uniquePrefix } from "./aws.ts";

// biome-ignore lint/suspicious/noExplicitAny: wire objects, read field by field in assertions
type Json = Record<string, any>;

const model = (tenantId: string, modelCode: string, method: "full" | "lora" = "full"): ModelRecord => ({
  modelCode,
  tenantId,
  jobId: `ftjob-${modelCode}`,
  baseModel: "tiny-chat",
  method,
  status: "ready",
  createdAt: Math.floor(Date.now() / 1000),
  artifactUri: `s3://artifacts/tenants/${tenantId}/jobs/ftjob-${modelCode}/${method === "full" ? "model" : "adapter"}/`,
});

/**
 * Deployment records on the real models table and the deployer's messages on the real queue (delayed
 * health checks included), with a scripted runtime; then the deploy routes through the local gateway.
 */
describe("deployment records and the deployer queue (LocalStack)", () => {
  const { documents, sqs } = localClients();
  let resources: BootstrappedResources;
  let store: DeploymentsRepository;
  let queue: SqsDeploymentQueue;
  let deps: DeploymentsDependencies;

  beforeAll(async () => {
    resources = await freshResources("deploy");
    store = new DeploymentsRepository(documents, resources.tables.models);
    queue = new SqsDeploymentQueue(sqs, resources.queueUrls.deployments);
    deps = {
      deployments: store,
      deploymentQueue: queue,
      deploymentsEnabled: true,
      deploymentsPerTenant: 2,
      deploymentTimeoutSeconds: 600,
      catalog: DEFAULT_CATALOG,
    };
  });

  const put = (record: ModelRecord) =>
    documents.send(new PutCommand({ TableName: resources.tables.models, Item: record }));

  async function receive(waitSeconds = 5): Promise<{ message: DeployerMessage; sentDelayedBy: number }[]> {
    const started = Date.now();
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: resources.queueUrls.deployments,
        WaitTimeSeconds: waitSeconds,
        MaxNumberOfMessages: 10,
      }),
    );
    const out = [];
    for (const m of Messages ?? []) {
      await sqs.send(
        new DeleteMessageCommand({
          QueueUrl: resources.queueUrls.deployments,
          ReceiptHandle: m.ReceiptHandle!,
        }),
      );
      out.push({ message: JSON.parse(m.Body!) as DeployerMessage, sentDelayedBy: Date.now() - started });
    }
    return out;
  }

  it("deploys through the queue: start, a delayed health check, deployed with the server's address", async () => {
    await put(model("tn_a", "dep-it-1"));
    const started = await deployModel(deps, "tn_a", "dep-it-1");
    expect(started.deployment).toMatchObject({
      status: "deploying",
      tensorParallelSize: 1,
      instanceType: "m7i.large",
    });
    // A second call while deploying answers the same deployment.
    expect((await deployModel(deps, "tn_a", "dep-it-1")).deployment?.id).toBe(started.deployment!.id);

    const probes: DeploymentProbe[] = [
      { state: "starting" },
      { state: "healthy", endpoint: "http://10.0.0.7:8080/v1" },
    ];
    const released: DeploymentRef[] = [];
    const runtime: DeploymentRuntime = {
      start: async () => {},
      probe: async () => probes.shift()!,
      release: async (ref) => {
        released.push(ref);
      },
    };
    const deployer = { store, runtime, queue, catalog: DEFAULT_CATALOG, checkDelaySeconds: 1 };
    const [deploy] = await receive();
    expect(deploy?.message).toEqual({
      action: "deploy",
      modelCode: "dep-it-1",
      deploymentId: started.deployment!.id,
    });
    await handleDeployerMessage(deploy!.message, deployer);
    const [check] = await receive();
    expect(check?.message.action).toBe("check");
    await handleDeployerMessage(check!.message, deployer);
    const deployed = await store.getModel("dep-it-1");
    expect(deployed?.deployment).toMatchObject({ status: "deployed", endpoint: "http://10.0.0.7:8080/v1" });
    expect(deployed?.deployment?.deployedAt).toBeGreaterThan(0);

    const undeployed = await undeployModel(deps, "tn_a", "dep-it-1");
    expect(undeployed.deployment?.status).toBe("undeployed");
    expect(undeployed.deployment?.endpoint).toBeUndefined();
    const [release] = await receive();
    expect(release?.message).toEqual({
      action: "release",
      modelCode: "dep-it-1",
      deploymentId: started.deployment!.id,
    });
    await handleDeployerMessage(release!.message, deployer);
    expect(released).toEqual([{ modelCode: "dep-it-1", deploymentId: started.deployment!.id }]);
    expect(released).toHaveLength(1);
  });

  it("writes a deployment only for the owner's ready full model, and only one live at a time", async () => {
    await put(model("tn_b", "dep-it-2"));
    await put(model("tn_b", "dep-it-lora", "lora"));
    const record = {
      id: "dep-x",
      status: "deploying" as const,
      tensorParallelSize: 1,
      instanceType: "m7i.large",
      requestedAt: 1,
      deployedAt: null,
      deadline: 2,
    };
    expect(await store.startDeployment("tn_other", "dep-it-2", record)).toEqual({
      outcome: "not_deployable",
    });
    expect(await store.startDeployment("tn_b", "dep-it-lora", record)).toEqual({ outcome: "not_deployable" });
    expect(await store.startDeployment("tn_b", "dep-it-2", record)).toEqual({ outcome: "started" });
    expect(await store.startDeployment("tn_b", "dep-it-2", { ...record, id: "dep-y" })).toEqual({
      outcome: "live",
    });
    // Only the deployment named, from the statuses named.
    expect(await store.updateDeployment("dep-it-2", "dep-y", ["deploying"], { status: "deployed" })).toBe(
      false,
    );
    expect(await store.updateDeployment("dep-it-2", "dep-x", ["deployed"], { status: "failed" })).toBe(false);
    expect(
      await store.updateDeployment("dep-it-2", "dep-x", ["deploying"], { status: "failed", reason: "r" }),
    ).toBe(true);
    expect((await store.getModel("dep-it-2"))?.deployment).toMatchObject({
      id: "dep-x",
      status: "failed",
      reason: "r",
    });
    expect(await store.startDeployment("tn_b", "dep-it-2", { ...record, id: "dep-z" })).toEqual({
      outcome: "started",
    });
  });

  it("counts a tenant's live deployments through the byTenant index", async () => {
    await put(model("tn_c", "dep-it-3"));
    await put(model("tn_c", "dep-it-4"));
    await put(model("tn_c", "dep-it-5"));
    expect(await store.liveDeployments("tn_c")).toBe(0);
    await deployModel(deps, "tn_c", "dep-it-3");
    await deployModel(deps, "tn_c", "dep-it-4");
    expect(await store.liveDeployments("tn_c")).toBe(2);
    await expect(deployModel(deps, "tn_c", "dep-it-5")).rejects.toMatchObject({
      status: 429,
      code: "quota_exceeded",
    });
    await undeployModel(deps, "tn_c", "dep-it-3");
    expect(await store.liveDeployments("tn_c")).toBe(1);
    await receive(1);
  });
});

describe("the deploy routes on the local platform (no inference server: deployments fail, saying why)", () => {
  let platform: LocalPlatform;
  let keyA: string;
  let keyB: string;
  let tenantA: string;
  const { documents } = localClients();

  beforeAll(async () => {
    platform = await startPlatform({ prefix: uniquePrefix("deployapi"), port: 0 });
    const admin = new TenantAdmin(new ApiKeysRepository(documents, platform.resources.tables["api-keys"]));
    const a = await admin.createTenant("tenant a");
    keyA = a.apiKey;
    tenantA = a.tenantId;
    keyB = (await admin.createTenant("tenant b")).apiKey;
  });

  afterAll(async () => {
    await platform?.stop();
  });

  const call = async (key: string, method: string, path: string) => {
    const response = await fetch(`${platform.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}` },
    });
    return { status: response.status, body: (await response.json()) as Json };
  };

  it("answers deploy, 404 for another tenant, 400 for LoRA, and shows the failed deployment's reason", async () => {
    const put = (record: ModelRecord) =>
      documents.send(new PutCommand({ TableName: platform.resources.tables.models, Item: record }));
    await put(model(tenantA, "api-full"));
    await put(model(tenantA, "api-lora", "lora"));

    expect((await call(keyB, "POST", "/models/api-full/deploy")).status).toBe(404);
    const lora = await call(keyA, "POST", "/models/api-lora/deploy");
    expect(lora.status).toBe(400);
    expect(lora.body.error.code).toBe("model_not_deployable");
    const chat = await fetch(`${platform.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${keyA}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "api-full", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(chat.status).toBe(409);
    expect(((await chat.json()) as Json).error.code).toBe("model_not_deployed");

    const deployed = await call(keyA, "POST", "/models/api-full/deploy");
    expect(deployed.status).toBe(200);
    expect(deployed.body.deployment).toMatchObject({
      status: "deploying",
      tensor_parallel_size: 1,
      instance_type: "m7i.large",
    });
    let current: Json = deployed.body;
    for (let i = 0; i < 40 && current.deployment.status === "deploying"; i++) {
      await new Promise((r) => setTimeout(r, 250));
      current = (await call(keyA, "GET", "/models/api-full")).body;
    }
    expect(current.deployment).toMatchObject({
      status: "failed",
      failure_reason: "The deployment failed: this local platform runs no inference server.",
    });
    const undeployed = await call(keyA, "DELETE", "/models/api-full/deploy");
    expect(undeployed.body.deployment.status).toBe("failed");
    expect((await call(keyB, "DELETE", "/models/api-full/deploy")).status).toBe(404);
  });
});
