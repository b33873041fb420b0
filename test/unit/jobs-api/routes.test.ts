import type { APIGatewayProxyEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { handleApiEvent } from "../../../lambdas/core/http/api-gateway.ts";
import { Router } from "../../../lambdas/core/http/router.ts";
import { JOBS_ROUTES, jobsRoutes } from "../../../lambdas/jobs-api/routes.ts";
import { fakeDependencies, OTHER_TENANT, storedJob, TENANT } from "./fakes.ts";

/** The handler as API Gateway calls it, over the fakes. */
function api(fakes: ReturnType<typeof fakeDependencies>) {
  const router = new Router(jobsRoutes(fakes.deps));
  return async (
    method: string,
    path: string,
    init: {
      body?: string;
      headers?: Record<string, string>;
      query?: Record<string, string>;
      tenantId?: string;
    } = {},
  ) => {
    const event = {
      httpMethod: method,
      path,
      // As the SDKs send every request (a JSON body without it is a 415).
      headers: init.headers ?? { "content-type": "application/json" },
      queryStringParameters: init.query ?? null,
      body: init.body ?? null,
      isBase64Encoded: false,
      requestContext: { requestId: "req-1", authorizer: { tenantId: init.tenantId ?? TENANT } },
    } as unknown as APIGatewayProxyEvent;
    const response = await handleApiEvent(router, event, () => {});
    return { status: response.statusCode, headers: response.headers, body: JSON.parse(response.body) };
  };
}

describe("the jobs API's route table", () => {
  it("has the routes API Gateway has for the jobs function", () => {
    expect(JOBS_ROUTES.map((route) => `${route.method} ${route.pattern}`)).toEqual([
      "POST /v4/fine_tuning/jobs",
      "GET /v4/fine_tuning/jobs",
      "GET /v4/fine_tuning/jobs/{job_id}",
      "DELETE /v4/fine_tuning/jobs/{job_id}",
      "POST /v4/fine_tuning/jobs/{job_id}/cancel",
      "POST /v4/fine_tuning/jobs/{job_id}/pause",
      "POST /v4/fine_tuning/jobs/{job_id}/resume",
      "GET /v4/fine_tuning/jobs/{job_id}/events",
      "GET /v4/fine_tuning/jobs/{job_id}/checkpoints",
      "GET /v4/models",
      "GET /v4/models/{model}",
      "DELETE /v4/models/{model}",
      "POST /v4/models/{model}/deploy",
      "DELETE /v4/models/{model}/deploy",
      "POST /v4/models/{model}",
      "DELETE /v4/fine_tuning/fine_tuned_models/{model}",
    ]);
  });

  it("awaits the catalog's check before every route", async () => {
    const fakes = fakeDependencies();
    let checks = 0;
    const call = api({ ...fakes, deps: { ...fakes.deps, ready: async () => void checks++ } });
    await call("GET", "/v4/models");
    await call("GET", "/v4/fine_tuning/jobs");
    expect(checks).toBe(2);
  });

  it("creates a job: 200 with the fine_tuning.job object and the request id", async () => {
    const fakes = fakeDependencies();
    const fileId = fakes.files.add(TENANT);
    const response = await api(fakes)("POST", "/v4/fine_tuning/jobs", {
      body: JSON.stringify({ model: "tiny-chat", training_file: fileId, model_code: "acme-bot" }),
      headers: { "Idempotency-Key": "k1", "content-type": "application/json" },
    });
    expect(response.status).toBe(200);
    expect(response.headers).toEqual({ "content-type": "application/json", "x-request-id": "req-1" });
    expect(response.body).toMatchObject({
      object: "fine_tuning.job",
      status: "queued",
      model_code: "acme-bot",
    });
    expect(fakes.jobs.keys.has(`${TENANT}#k1`)).toBe(true);
  });

  it("answers a dry run with the estimate object", async () => {
    const fakes = fakeDependencies();
    const fileId = fakes.files.add(TENANT);
    const response = await api(fakes)("POST", "/v4/fine_tuning/jobs", {
      body: JSON.stringify({ model: "tiny-chat", training_file: fileId, dry_run: true }),
    });
    expect(response.body).toMatchObject({
      object: "fine_tuning.job.estimate",
      model_code: expect.any(String),
    });
  });

  it("answers errors in the OpenAI envelope with the request id", async () => {
    const fakes = fakeDependencies();
    const response = await api(fakes)("POST", "/v4/fine_tuning/jobs", { body: "{" });
    expect(response).toMatchObject({
      status: 400,
      body: {
        error: { code: "invalid_json", type: "invalid_request_error", param: null, request_id: "req-1" },
      },
    });
  });

  it("checks the job before the list parameters: another tenant's job is a 404 whatever the query", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes);
    const call = api(fakes);
    for (const list of ["events", "checkpoints"]) {
      const path = `/v4/fine_tuning/jobs/${job.jobId}/${list}`;
      expect((await call("GET", path, { query: { limit: "0" }, tenantId: OTHER_TENANT })).status).toBe(404);
      expect((await call("GET", path, { query: { limit: "0" } })).body.error.param).toBe("limit");
      expect((await call("GET", path)).body).toMatchObject({ object: "list", has_more: false });
    }
  });

  it("lists, reads, cancels and deletes a job", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes);
    const call = api(fakes);
    expect((await call("GET", "/v4/fine_tuning/jobs", { query: { limit: "5" } })).body).toMatchObject({
      object: "list",
      data: [{ id: job.jobId }],
      has_more: false,
      first_id: job.jobId,
      last_id: job.jobId,
    });
    expect((await call("GET", `/v4/fine_tuning/jobs/${job.jobId}`)).body.id).toBe(job.jobId);
    expect((await call("POST", `/v4/fine_tuning/jobs/${job.jobId}/cancel`)).body.status).toBe("cancelled");
    expect((await call("DELETE", `/v4/fine_tuning/jobs/${job.jobId}`)).body).toMatchObject({
      id: job.jobId,
      object: "fine_tuning.job",
      status: "cancelled",
      deleted: true,
    });
  });

  it("pauses and resumes a job, answering the conflicts in the error envelope", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "running", batchJobId: "run-1" });
    const call = api(fakes);
    const paused = await call("POST", `/v4/fine_tuning/jobs/${job.jobId}/pause`);
    expect(paused).toMatchObject({
      status: 200,
      body: { id: job.jobId, object: "fine_tuning.job", status: "paused" },
    });
    expect(fakes.runner.terminated.map((t) => t.runId)).toEqual(["run-1"]);
    const resumed = await call("POST", `/v4/fine_tuning/jobs/${job.jobId}/resume`);
    expect(resumed).toMatchObject({ status: 200, body: { id: job.jobId, status: "queued" } });
    expect(fakes.queue.sent.at(-1)).toEqual({ tenantId: TENANT, jobId: job.jobId });
    expect(await call("POST", `/v4/fine_tuning/jobs/${job.jobId}/resume`)).toMatchObject({
      status: 409,
      body: { error: { code: "job_not_resumable", type: "conflict_error", request_id: "req-1" } },
    });
    await call("POST", `/v4/fine_tuning/jobs/${job.jobId}/cancel`);
    expect(await call("POST", `/v4/fine_tuning/jobs/${job.jobId}/pause`)).toMatchObject({
      status: 409,
      body: { error: { code: "job_not_pausable" } },
    });
    const theirs = await call("POST", `/v4/fine_tuning/jobs/${job.jobId}/pause`, { tenantId: OTHER_TENANT });
    expect(theirs).toMatchObject({ status: 404, body: { error: { code: "job_not_found" } } });
  });

  it("answers the models routes, and the zhipuai SDK's delete in its own shape", async () => {
    const fakes = fakeDependencies();
    const job = await storedJob(fakes, { status: "succeeded" });
    fakes.jobs.models.set(job.modelCode, { ...fakes.jobs.models.get(job.modelCode)!, status: "ready" });
    const call = api(fakes);
    const list = await call("GET", "/v4/models");
    expect(list.body.object).toBe("list");
    expect(list.body.data.map((m: { id: string }) => m.id)).toEqual(
      expect.arrayContaining(["tiny-chat", job.modelCode]),
    );
    expect((await call("GET", "/v4/models/tiny-chat")).body).toMatchObject({
      id: "tiny-chat",
      object: "model",
    });
    const renamed = await call("POST", `/v4/models/${job.modelCode}`, {
      body: JSON.stringify({ name: "Bot" }),
    });
    expect(renamed.body).toMatchObject({ id: job.modelCode, name: "Bot" });
    expect((await call("DELETE", `/v4/fine_tuning/fine_tuned_models/${job.modelCode}`)).body).toEqual({
      request_id: "req-1",
      model_name: job.modelCode,
      delete_status: "deleted",
      id: job.modelCode,
      object: "model",
      deleted: true,
    });
    expect((await call("DELETE", `/v4/models/${job.modelCode}`)).status).toBe(404);
  });

  it("refuses to rename a base model before reading the body", async () => {
    const fakes = fakeDependencies();
    const response = await api(fakes)("POST", "/v4/models/tiny-chat", { body: "not json" });
    expect(response).toMatchObject({
      status: 400,
      body: { error: { code: "model_not_editable", param: "model" } },
    });
  });
});
