import { describe, expect, it } from "vitest";
import { DEFAULT_CATALOG } from "../../../lambdas/core/catalog/base-models.ts";
import type {
  DeploymentProbe,
  DeploymentRecord,
  DeploymentRef,
  DeploymentRuntime,
  DeploymentSpec,
} from "../../../lambdas/core/deployments/deployment.ts";
import type { ModelRecord } from "../../../lambdas/core/jobs/wire.ts";
import { type DeployerDependencies, handleDeployerMessage } from "../../../lambdas/deployer/deploy.ts";
import { FakeDeploymentQueue, InMemoryDeployments } from "../jobs-api/fakes.ts";

const NOW_S = 1_700_000_000;
const CODE = "ft:tiny-chat:acme:m1";

/** A runtime whose probes answer from a script; it counts what was started and released. */
class FakeRuntime implements DeploymentRuntime {
  readonly started: DeploymentSpec[] = [];
  readonly released: DeploymentRef[] = [];
  startFailures = 0;
  constructor(readonly probes: DeploymentProbe[]) {}
  async start(spec: DeploymentSpec) {
    if (this.startFailures > 0) {
      this.startFailures -= 1;
      throw new Error("ThrottlingException");
    }
    // Idempotent: a second start of the same deployment creates nothing.
    if (!this.started.some((s) => s.deploymentId === spec.deploymentId)) this.started.push(spec);
  }
  async probe(): Promise<DeploymentProbe> {
    return this.probes.length > 1 ? this.probes.shift()! : this.probes[0]!;
  }
  async release(ref: DeploymentRef) {
    this.released.push(ref);
  }
}

function setup(probes: DeploymentProbe[], deployment: Partial<DeploymentRecord> = {}) {
  const models = new Map<string, ModelRecord>();
  const record: ModelRecord = {
    modelCode: CODE,
    tenantId: "tn_a",
    jobId: "ftjob-1",
    baseModel: "qwen2.5-7b-instruct",
    method: "full",
    status: "ready",
    createdAt: 1,
    artifactUri: "s3://artifacts/tenants/tn_a/jobs/ftjob-1/model/",
    deployment: {
      id: "dep-1",
      status: "deploying",
      tensorParallelSize: 2,
      instanceType: "g6e.12xlarge",
      requestedAt: NOW_S,
      deployedAt: null,
      deadline: NOW_S + 600,
      ...deployment,
    },
  };
  models.set(CODE, record);
  const runtime = new FakeRuntime(probes);
  const queue = new FakeDeploymentQueue();
  let now = NOW_S * 1000;
  const deps: DeployerDependencies = {
    store: new InMemoryDeployments(models),
    runtime,
    queue,
    catalog: DEFAULT_CATALOG,
    checkDelaySeconds: 30,
    now: () => now,
  };
  const advance = (seconds: number) => {
    now += seconds * 1000;
  };
  return { models, runtime, queue, deps, advance };
}

const deploy = { action: "deploy" as const, modelCode: CODE, deploymentId: "dep-1" };
const check = { ...deploy, action: "check" as const };

describe("the deployer", () => {
  it("starts the server with the model's weights, family and GPUs, then checks its health until it passes", async () => {
    const { models, runtime, queue, deps, advance } = setup([
      { state: "starting", detail: "waiting for capacity" },
      { state: "starting" },
      { state: "healthy", endpoint: "http://ftm-dep-1.ft.internal:8080/v1" },
    ]);
    await handleDeployerMessage(deploy, deps);
    expect(runtime.started).toEqual([
      {
        modelCode: CODE,
        deploymentId: "dep-1",
        tenantId: "tn_a",
        baseModel: "qwen2.5-7b-instruct",
        family: "chatml",
        artifactUri: "s3://artifacts/tenants/tn_a/jobs/ftjob-1/model/",
        tensorParallelSize: 2,
        instanceType: "g6e.12xlarge",
        gpus: 2,
      },
    ]);
    expect(queue.sent).toEqual([{ message: check, delaySeconds: 30 }]);
    expect(models.get(CODE)?.deployment?.status).toBe("deploying");

    advance(30);
    await handleDeployerMessage(check, deps);
    expect(queue.sent).toHaveLength(2);
    advance(30);
    await handleDeployerMessage(check, deps);
    expect(models.get(CODE)?.deployment).toMatchObject({
      status: "deployed",
      deployedAt: NOW_S + 60,
      endpoint: "http://ftm-dep-1.ft.internal:8080/v1",
    });
    expect(queue.sent).toHaveLength(2);
    expect(runtime.started).toHaveLength(1);
    expect(runtime.released).toEqual([]);

    // A redelivered check of a deployed deployment changes nothing.
    await handleDeployerMessage(check, deps);
    expect(models.get(CODE)?.deployment?.status).toBe("deployed");
    expect(runtime.released).toEqual([]);
  });

  it("fails a server that reports failure, releasing its resources first, with a tenant-safe reason", async () => {
    const { models, runtime, deps } = setup([
      { state: "failed", reason: "its container exited during start" },
    ]);
    await handleDeployerMessage(deploy, deps);
    expect(runtime.released).toEqual([{ modelCode: CODE, deploymentId: "dep-1" }]);
    expect(models.get(CODE)?.deployment).toMatchObject({
      status: "failed",
      reason: "The deployment failed: its container exited during start.",
    });
  });

  it("fails a server that never becomes healthy by the deadline, and releases it", async () => {
    const { models, runtime, queue, deps, advance } = setup([{ state: "starting" }]);
    await handleDeployerMessage(deploy, deps);
    advance(601);
    await handleDeployerMessage(check, deps);
    expect(runtime.released).toHaveLength(1);
    expect(models.get(CODE)?.deployment).toMatchObject({
      status: "failed",
      reason: "The deployment failed: its server did not pass its health check within 10 minutes.",
    });
    expect(queue.sent).toHaveLength(1);
  });

  it("retries a start that failed at the next check, without failing the deployment", async () => {
    const { models, runtime, queue, deps } = setup([{ state: "healthy", endpoint: "http://h/v1" }]);
    runtime.startFailures = 1;
    await handleDeployerMessage(deploy, deps);
    expect(runtime.started).toEqual([]);
    expect(queue.sent).toEqual([{ message: check, delaySeconds: 30 }]);
    await handleDeployerMessage(check, deps);
    expect(runtime.started).toHaveLength(1);
    expect(models.get(CODE)?.deployment?.status).toBe("deployed");
  });

  it("is idempotent: a redelivered deploy starts nothing twice", async () => {
    const { runtime, deps } = setup([{ state: "starting" }]);
    await handleDeployerMessage(deploy, deps);
    await handleDeployerMessage(deploy, deps);
    expect(runtime.started).toHaveLength(1);
  });

  it("releases instead of recording when the model was undeployed while its server started", async () => {
    const { models, runtime, deps } = setup([{ state: "healthy", endpoint: "http://h/v1" }], {
      status: "undeployed",
    });
    await handleDeployerMessage(check, deps);
    expect(runtime.started).toEqual([]);
    expect(runtime.released).toEqual([{ modelCode: CODE, deploymentId: "dep-1" }]);
    expect(models.get(CODE)?.deployment?.status).toBe("undeployed");
  });

  it("releases a superseded deployment's server and leaves the newer deployment alone", async () => {
    const { models, runtime, deps } = setup([{ state: "healthy", endpoint: "http://h/v1" }], { id: "dep-2" });
    await handleDeployerMessage(check, deps);
    expect(runtime.released).toEqual([{ modelCode: CODE, deploymentId: "dep-1" }]);
    expect(models.get(CODE)?.deployment).toMatchObject({ id: "dep-2", status: "deploying" });
  });

  it("releases on a release message, and for a model deleted meanwhile", async () => {
    const { models, runtime, deps } = setup([{ state: "starting" }]);
    await handleDeployerMessage({ ...deploy, action: "release" }, deps);
    models.delete(CODE);
    await handleDeployerMessage(check, deps);
    expect(runtime.released).toHaveLength(2);
  });
});
