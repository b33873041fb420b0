import { describe, expect, it } from "vitest";
import { cancelJob } from "../../../lambdas/jobs-api/cancel-job.ts";
import { createJob } from "../../../lambdas/jobs-api/create-job.ts";
import type { JobsMetricsHooks } from "../../../lambdas/jobs-api/dependencies.ts";
import { fakeDependencies, storedJob, TENANT } from "./fakes.ts";

/** The jobs API's metrics hooks (EMF in AWS, lambdas/jobs-api/index.ts): one count per real change. */
function recorded() {
  const calls: { kind: string; method: string; baseModel?: string }[] = [];
  const record: JobsMetricsHooks = {
    created: (job) => calls.push({ kind: "created", ...job }),
    cancelled: (job) => calls.push({ kind: "cancelled", ...job }),
  };
  return { calls, record };
}

describe("the jobs API's metrics", () => {
  it("counts a created job once, not its replay nor a dry run", async () => {
    const fakes = fakeDependencies();
    const fileId = fakes.files.add(TENANT);
    const { calls, record } = recorded();
    const deps = { ...fakes.deps, record };
    const body = { model: "tiny-chat", training_file: fileId, model_code: "acme-bot" };
    await createJob(deps, { tenantId: TENANT, body, idempotencyKey: "k-1" });
    await createJob(deps, { tenantId: TENANT, body, idempotencyKey: "k-1" });
    await createJob(deps, { tenantId: TENANT, body: { ...body, model_code: "other", dry_run: true } });
    expect(calls).toEqual([{ kind: "created", method: "lora", baseModel: "tiny-chat" }]);
  });

  it("counts a cancel once, not a repeated cancel", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running", batchJobId: "run-1" });
    const { calls, record } = recorded();
    await cancelJob({ ...fakes.deps, record }, TENANT, job.jobId);
    await cancelJob({ ...fakes.deps, record }, TENANT, job.jobId);
    expect(calls).toEqual([{ kind: "cancelled", method: job.method }]);
  });
});
