import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { JobsRepository } from "../../lambdas/aws/jobs-repository.ts";
import type { TrainingRunner } from "../../lambdas/aws/training-runner.ts";
import { CATALOG_OVERRIDE_ENV, DEFAULT_CATALOG } from "../../lambdas/core/catalog/base-models.ts";
import type { TrainingSubmission } from "../../lambdas/core/jobs/dispatch.ts";
import { newJobId } from "../../lambdas/core/jobs/ids.ts";
import type { JobRecord } from "../../lambdas/core/jobs/wire.ts";
import { dispatchJob } from "../../lambdas/dispatcher/dispatch.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { LLAMA_OVERRIDE } from "../fixtures/catalog.ts";
import { localClients, uniquePrefix } from "./aws.ts";

const STAND_IN = fileURLToPath(new URL("./fixtures/stand-in-trainer.ts", import.meta.url));
const DATASET = readFileSync(new URL("../fixtures/datasets/valid-messages.jsonl", import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: wire objects, read field by field in assertions
type Json = Record<string, any>;

/**
 * Jobs end to end on the local platform against LocalStack: API → DynamoDB transaction → training
 * queue → dispatcher → local Batch (a stand-in trainer process) → state changes → job-status handler.
 */
describe("fine-tuning jobs pipeline", () => {
  let platform: LocalPlatform;
  let keyA: string;
  let keyB: string;
  let tenantA: string;
  let fileA: string;
  let fileB: string;
  const prefix = uniquePrefix("jobs");

  const api = async (key: string, path: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const response = await fetch(`${platform.baseUrl}${path}`, {
      ...rest,
      ...(json !== undefined ? { method: rest.method ?? "POST", body: JSON.stringify(json) } : {}),
      headers: {
        authorization: `Bearer ${key}`,
        ...(json !== undefined ? { "content-type": "application/json" } : {}),
        ...rest.headers,
      },
    });
    return { status: response.status, body: (await response.json()) as Json };
  };

  async function upload(key: string): Promise<string> {
    const form = new FormData();
    form.set("purpose", "fine-tune");
    form.set("file", new Blob([DATASET], { type: "application/jsonl" }), "train.jsonl");
    const created = await api(key, "/files", { method: "POST", body: form });
    expect(created.status).toBe(200);
    for (let i = 0; i < 120; i++) {
      const file = await api(key, `/files/${created.body.id}`);
      if (file.body.status === "processed") return created.body.id as string;
      if (file.body.status === "error") throw new Error(JSON.stringify(file.body));
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error("file not processed in time");
  }

  async function waitFor(key: string, jobId: string, statuses: string[], timeoutMs = 60_000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const job = await api(key, `/fine_tuning/jobs/${jobId}`);
      if (statuses.includes(job.body.status)) return job.body;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`job ${jobId} did not reach ${statuses.join("|")} in ${timeoutMs} ms`);
  }

  const createJob = (key: string, body: Json, headers: Record<string, string> = {}) =>
    api(key, "/fine_tuning/jobs", { json: body, headers });

  const jobBody = (code: string, seed = 7) => ({
    model: "tiny-chat",
    training_file: fileA,
    method: { type: "lora", hyperparameters: { n_epochs: 1 } },
    model_code: code,
    seed,
  });

  beforeAll(async () => {
    const { documents } = localClients();
    platform = await startPlatform({
      prefix,
      port: 0,
      trainerCommand: [process.execPath, "--import", "tsx", STAND_IN],
      trainingConcurrency: 4,
    });
    const admin = new TenantAdmin(new ApiKeysRepository(documents, platform.resources.tables["api-keys"]));
    const a = await admin.createTenant("tenant a");
    keyA = a.apiKey;
    tenantA = a.tenantId;
    keyB = (await admin.createTenant("tenant b")).apiKey;
    [fileA, fileB] = await Promise.all([upload(keyA), upload(keyB)]);
  });

  afterAll(async () => {
    await platform?.stop();
  });

  it("trains a job to succeeded: queued → running → succeeded, model ready with its artifact", async () => {
    const created = await createJob(keyA, jobBody("it-success"));
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      object: "fine_tuning.job",
      status: "queued",
      model: "tiny-chat",
      model_code: "it-success",
      fine_tuned_model: null,
      training_file: fileA,
    });
    const done = await waitFor(keyA, created.body.id, ["succeeded", "failed"]);
    expect(done).toMatchObject({ status: "succeeded", fine_tuned_model: "it-success", trained_tokens: 1234 });
    expect(done.finished_at).toBeGreaterThanOrEqual(done.created_at);

    const model = await api(keyA, "/models/it-success");
    expect(model.body).toMatchObject({
      id: "it-success",
      object: "model",
      status: "ready",
      root: "tiny-chat",
    });
    const stored = await new JobsRepository(localClients().documents, {
      jobs: platform.resources.tables.jobs,
      events: platform.resources.tables["job-events"],
      models: platform.resources.tables.models,
    }).getModel("it-success");
    expect(stored?.artifactUri).toBe(
      `s3://${platform.resources.buckets.artifacts}/tenants/${tenantA}/jobs/${created.body.id}/adapter/`,
    );

    const events = await api(keyA, `/fine_tuning/jobs/${created.body.id}/events?limit=100`);
    const messages = (events.body.data as Json[]).map((e) => e.message as string);
    expect(messages.at(-1)).toMatch(/^Created fine-tuning job/);
    expect(messages[0]).toBe("The job has successfully completed.");
    // "Job submitted…" may be missing: the local runner's first state change can store the run id first.
    expect(messages).toContain("Training container starting.");
    expect(messages.some((m) => m.startsWith("stand-in trainer started"))).toBe(true);
    const metrics = (events.body.data as Json[]).find((e) => e.type === "metrics");
    expect(metrics).toMatchObject({ object: "fine_tuning.job.event", data: { step: 1, train_loss: 0.5 } });

    const page = await api(keyA, `/fine_tuning/jobs/${created.body.id}/events?limit=2`);
    expect(page.body.has_more).toBe(true);
    const next = await api(
      keyA,
      `/fine_tuning/jobs/${created.body.id}/events?limit=2&after=${page.body.last_id}`,
    );
    expect(next.body.data[0].id).toBe(events.body.data[2].id);

    const checkpoints = await api(keyA, `/fine_tuning/jobs/${created.body.id}/checkpoints`);
    expect(checkpoints.body.data).toEqual([
      expect.objectContaining({
        object: "fine_tuning.job.checkpoint",
        step_number: 1,
        fine_tuned_model_checkpoint: "it-success:step-1",
        metrics: { step: 1, train_loss: 0.5 },
      }),
    ]);
    const list = await api(keyA, "/models");
    expect((list.body.data as Json[]).map((m) => m.id)).toEqual(
      expect.arrayContaining(["tiny-chat", "it-success"]),
    );
  });

  it("fails a job whose trainer rejects its input, with the trainer's message and exit code", async () => {
    const created = await createJob(keyA, jobBody("it-failure", 1));
    const done = await waitFor(keyA, created.body.id, ["succeeded", "failed"]);
    expect(done.status).toBe("failed");
    expect(done.error).toEqual({
      code: "invalid_training_input",
      message: "Bad input: line 3 of the training file has no assistant turn",
      param: null,
    });
    expect((await api(keyA, "/models/it-failure")).body.status).toBe("failed");
  });

  it("cancels a running job: the run is terminated and late Batch events do not undo it", async () => {
    const created = await createJob(keyA, jobBody("it-cancel", 2));
    await waitFor(keyA, created.body.id, ["running"]);
    const cancelled = await api(keyA, `/fine_tuning/jobs/${created.body.id}/cancel`, { method: "POST" });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe("cancelled");
    await platform.batch.settled();
    await new Promise((r) => setTimeout(r, 500));
    await platform.batch.settled();
    const after = await api(keyA, `/fine_tuning/jobs/${created.body.id}`);
    expect(after.body.status).toBe("cancelled");
    const again = await api(keyA, `/fine_tuning/jobs/${created.body.id}/cancel`, { method: "POST" });
    expect(again.body.status).toBe("cancelled");
    expect((await api(keyA, "/models/it-cancel")).body.status).toBe("failed");
    const done = await createJob(keyA, jobBody("it-done"));
    await waitFor(keyA, done.body.id, ["succeeded"]);
    const late = await api(keyA, `/fine_tuning/jobs/${done.body.id}/cancel`, { method: "POST" });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("job_not_cancellable");
  });

  it("submits one run for a job whose training message is delivered twice", async () => {
    const created = await createJob(keyA, jobBody("it-duplicate"));
    await waitFor(keyA, created.body.id, ["succeeded"]);
    const submit = vi.spyOn(platform.batch, "submit");
    const { sqs } = localClients();
    const body = JSON.stringify({ tenantId: tenantA, jobId: created.body.id });
    await sqs.send(
      new SendMessageCommand({ QueueUrl: platform.resources.queueUrls.training, MessageBody: body }),
    );
    await new Promise((r) => setTimeout(r, 3000));
    // The redelivery found the stored run and never reached the runner.
    expect(submit).not.toHaveBeenCalled();
    submit.mockRestore();
    const events = await api(keyA, `/fine_tuning/jobs/${created.body.id}/events?limit=100`);
    const starts = (events.body.data as Json[]).filter((e) => e.message === "Training container starting.");
    expect(starts).toHaveLength(1);
    expect((await api(keyA, `/fine_tuning/jobs/${created.body.id}`)).body.status).toBe("succeeded");
  });

  /**
   * A queued job with no message on the training queue, stored directly, so that only the dispatches a
   * test makes itself touch it; and the dispatcher's dependencies with the given runner.
   */
  async function queuedJobWithoutMessage(modelCode: string, runner: TrainingRunner) {
    const { documents } = localClients();
    const tables = platform.resources.tables;
    const jobs = new JobsRepository(documents, {
      jobs: tables.jobs,
      events: tables["job-events"],
      models: tables.models,
      files: tables.files,
      idempotency: tables.idempotency,
    });
    const jobId = newJobId();
    const created = await createJob(keyA, { ...jobBody(`${modelCode}-template`), dry_run: true });
    expect(created.status).toBe(200);
    const template = (await api(keyA, `/fine_tuning/jobs?limit=1`)).body.data[0] as Json;
    // Without the template's run id and dispatch claim: a job just created.
    const {
      dispatchClaim: _c,
      dispatchClaimExpires: _e,
      ...stored
    } = (await jobs.get(tenantA, template.id)) as Json;
    await jobs.create({
      job: {
        ...(stored as JobRecord),
        jobId,
        modelCode,
        status: "queued",
        batchJobId: null,
        finishedAt: null,
      },
      model: {
        modelCode,
        tenantId: tenantA,
        jobId,
        baseModel: "tiny-chat",
        method: "lora",
        status: "pending",
        createdAt: 1,
        artifactUri: null,
      },
      events: [],
    });
    const deps = {
      jobs,
      runner,
      catalog: DEFAULT_CATALOG,
      locations: {
        datasetsBucket: "d",
        artifactsBucket: "a",
        jobsTable: tables.jobs,
        eventsTable: tables["job-events"],
      },
      log: () => {},
    };
    return { jobs, jobId, deps, message: { tenantId: tenantA, jobId } };
  }

  it("submits once when two deliveries of the same message are dispatched at the same time", async () => {
    const submissions: TrainingSubmission[] = [];
    const { jobs, jobId, deps, message } = await queuedJobWithoutMessage("it-race", {
      submit: async (s) => {
        submissions.push(s);
        await new Promise((r) => setTimeout(r, 200));
        return "run-1";
      },
      terminate: async () => {},
    });
    const outcomes = await Promise.allSettled([dispatchJob(message, deps), dispatchJob(message, deps)]);
    expect(submissions).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === "fulfilled" && o.value === "submitted")).toHaveLength(1);
    expect((await jobs.get(tenantA, jobId))?.batchJobId).toBe("run-1");
    // A later redelivery finds the stored run and submits nothing.
    expect(await dispatchJob(message, deps)).toBe("already_submitted");
    expect(submissions).toHaveLength(1);
  });

  it("fails a job whose run the runner refuses on every delivery, on the last one, and its model", async () => {
    const refusal = Object.assign(
      new Error("Job definition arn:aws:batch:…:job-definition/ft-lora does not exist"),
      {
        name: "ClientException",
      },
    );
    const { jobId, deps, message } = await queuedJobWithoutMessage("it-refused", {
      submit: async () => {
        throw refusal;
      },
      terminate: async () => {},
    });
    // Earlier deliveries throw, so SQS redelivers the message; the job stays queued meanwhile.
    await expect(dispatchJob(message, deps, { last: false })).rejects.toBe(refusal);
    // The claim of the failed delivery would hold off the next one for minutes: let it lapse.
    const later = { ...deps, now: () => Date.now() + 600_000 };
    expect((await api(keyA, `/fine_tuning/jobs/${jobId}`)).body.status).toBe("queued");
    expect(await dispatchJob(message, later, { last: true })).toBe("failed");

    const job = (await api(keyA, `/fine_tuning/jobs/${jobId}`)).body;
    expect(job.status).toBe("failed");
    expect(job.error.code).toBe("dispatch_failed");
    expect(job.error.message).toMatch(/did not accept the job after 5 attempts/);
    // The tenant sees no internal names from the runner's error.
    expect(JSON.stringify(job)).not.toContain("arn:aws");
    const events = (await api(keyA, `/fine_tuning/jobs/${jobId}/events`)).body.data as Json[];
    expect(events.some((e) => e.level === "error" && /could not be submitted/.test(e.message))).toBe(true);
    expect((await api(keyA, "/models/it-refused")).body.status).toBe("failed");
    // Failed for good: a redelivery changes nothing.
    expect(await dispatchJob(message, later, { last: true })).toBe("not_queued");
  });

  it("lets exactly one of 20 parallel creates reserve a model code", async () => {
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        createJob(i % 2 ? keyA : keyB, { ...jobBody("it-contested"), training_file: i % 2 ? fileA : fileB }),
      ),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    const conflict = responses.find((r) => r.status === 409)!;
    expect(conflict.body.error).toMatchObject({ code: "model_code_taken", param: "model_code" });
  });

  it("replays the same Idempotency-Key and body, and refuses the key with another body (422)", async () => {
    const headers = { "idempotency-key": `key-${Date.now()}` };
    const first = await createJob(keyA, jobBody("it-idempotent"), headers);
    const second = await createJob(keyA, jobBody("it-idempotent"), headers);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    const other = await createJob(keyA, jobBody("it-idempotent-2"), headers);
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe("idempotency_key_reused");
    // Keys are per tenant: tenant B may use the same one.
    const b = await createJob(keyB, { ...jobBody("it-idempotent-b"), training_file: fileB }, headers);
    expect(b.status).toBe(200);
  });

  it("answers a dry run with an estimate and creates nothing", async () => {
    const before = (await api(keyA, "/fine_tuning/jobs?limit=100")).body.data.length;
    const dry = await createJob(keyA, { ...jobBody("it-dry"), dry_run: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({
      object: "fine_tuning.job.estimate",
      model: "tiny-chat",
      method: "lora",
    });
    expect(dry.body.trained_tokens).toBeGreaterThan(0);
    expect(dry.body.queue_position).toBeGreaterThanOrEqual(1);
    expect((await api(keyA, "/fine_tuning/jobs?limit=100")).body.data.length).toBe(before);
    expect((await api(keyA, "/models/it-dry")).status).toBe(404);
  });

  it("rejects bad creates with a 400 naming the parameter", async () => {
    const foreign = await createJob(keyA, { ...jobBody("it-bad"), training_file: fileB });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error).toMatchObject({ param: "training_file", code: "file_not_found" });
    const base = await createJob(keyA, { ...jobBody("x"), model_code: "tiny-chat" });
    expect(base.status).toBe(400);
    expect(base.body.error.param).toBe("model_code");
    const unknown = await createJob(keyA, { ...jobBody("it-bad"), model: "gpt-9" });
    expect(unknown.body.error).toMatchObject({ param: "model", code: "model_not_found" });
  });

  it("answers 404 to another tenant on every job and model endpoint", async () => {
    const created = await createJob(keyA, jobBody("it-private"));
    const id = created.body.id as string;
    await waitFor(keyA, id, ["succeeded"]);
    for (const [method, path] of [
      ["GET", `/fine_tuning/jobs/${id}`],
      ["POST", `/fine_tuning/jobs/${id}/cancel`],
      ["GET", `/fine_tuning/jobs/${id}/events`],
      ["GET", `/fine_tuning/jobs/${id}/checkpoints`],
      ["DELETE", `/fine_tuning/jobs/${id}`],
      ["GET", "/models/it-private"],
      ["POST", "/models/it-private"],
      ["DELETE", "/models/it-private"],
      ["DELETE", "/fine_tuning/fine_tuned_models/it-private"],
    ] as const) {
      const response = await api(
        keyB,
        path,
        method === "POST" && path.startsWith("/models") ? { json: { name: "x" } } : { method },
      );
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(response.body.error.type).toBe("not_found_error");
    }
    const listed = await api(keyB, "/fine_tuning/jobs?limit=100");
    expect((listed.body.data as Json[]).some((job) => job.id === id)).toBe(false);
    expect(((await api(keyB, "/models")).body.data as Json[]).some((m) => m.id === "it-private")).toBe(false);
    // The owner may delete it, which frees the code.
    expect((await api(keyA, "/models/it-private", { method: "DELETE" })).body).toEqual({
      id: "it-private",
      object: "model",
      deleted: true,
    });
    expect((await api(keyA, "/models/it-private")).status).toBe(404);
  });
  it("deletes a finished job with its events and keeps its model; refuses with 409 while it runs", async () => {
    const running = await createJob(keyA, { ...jobBody("it-del-running", 2) });
    await waitFor(keyA, running.body.id, ["running"]);
    const refused = await api(keyA, `/fine_tuning/jobs/${running.body.id}`, { method: "DELETE" });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: "job_not_finished", type: "conflict_error" });
    expect(refused.body.error.message).toContain("cancel it first");
    expect((await api(keyA, `/fine_tuning/jobs/${running.body.id}`)).body.status).toBe("running");
    await api(keyA, `/fine_tuning/jobs/${running.body.id}/cancel`, { method: "POST" });

    const created = await createJob(keyA, { ...jobBody("it-del-done"), name: "删除测试" });
    await waitFor(keyA, created.body.id, ["succeeded"]);
    const deleted = await api(keyA, `/fine_tuning/jobs/${created.body.id}`, { method: "DELETE" });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ id: created.body.id, object: "fine_tuning.job", deleted: true });
    expect((await api(keyA, `/fine_tuning/jobs/${created.body.id}`)).status).toBe(404);
    expect((await api(keyA, `/fine_tuning/jobs/${created.body.id}/events`)).status).toBe(404);
    const listed = await api(keyA, "/fine_tuning/jobs?limit=100");
    expect((listed.body.data as Json[]).some((job) => job.id === created.body.id)).toBe(false);
    const { documents } = localClients();
    const repository = new JobsRepository(documents, {
      jobs: platform.resources.tables.jobs,
      events: platform.resources.tables["job-events"],
      models: platform.resources.tables.models,
    });
    expect((await repository.listEvents(tenantA, created.body.id, 100)).items).toEqual([]);
    // The model stays: readable, with its name, and callable by its code.
    const model = await api(keyA, "/models/it-del-done");
    expect(model.body).toMatchObject({ id: "it-del-done", status: "ready", name: "删除测试" });
    expect((await api(keyA, `/fine_tuning/jobs/${created.body.id}`, { method: "DELETE" })).status).toBe(404);
  });

  it("renames a model: the name shows on the model and its job, null clears it, bad names are 400", async () => {
    const created = await createJob(keyA, { ...jobBody("it-named"), name: "Support bot" });
    expect(created.body.name).toBe("Support bot");
    const renamed = await api(keyA, "/models/it-named", { json: { name: "客服助手 v2" } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: "it-named", object: "model", name: "客服助手 v2" });
    expect((await api(keyA, "/models/it-named")).body.name).toBe("客服助手 v2");
    expect((await api(keyA, `/fine_tuning/jobs/${created.body.id}`)).body.name).toBe("客服助手 v2");
    const cleared = await api(keyA, "/models/it-named", { json: { name: null } });
    expect(cleared.body.name).toBeNull();
    const long = await api(keyA, "/models/it-named", { json: { name: "x".repeat(129) } });
    expect(long.status).toBe(400);
    expect(long.body.error.param).toBe("name");
    const extra = await api(keyA, "/models/it-named", { json: { name: "a", status: "ready" } });
    expect(extra.body.error).toMatchObject({ code: "unknown_parameter", param: "status" });
    const base = await api(keyA, "/models/tiny-chat", { json: { name: "mine" } });
    expect(base.status).toBe(400);
    expect(base.body.error.code).toBe("model_not_editable");
  });

  it("deletes a model through the zhipuai SDK's path, answering in Zhipu's shape", async () => {
    const created = await createJob(keyA, jobBody("chatglm3-6b-it01"));
    await waitFor(keyA, created.body.id, ["succeeded"]);
    const deleted = await api(keyA, "/fine_tuning/fine_tuned_models/chatglm3-6b-it01", { method: "DELETE" });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({
      request_id: expect.any(String),
      model_name: "chatglm3-6b-it01",
      delete_status: "deleted",
    });
    expect((await api(keyA, "/models/chatglm3-6b-it01")).status).toBe(404);
  });

  it("answers a method a path does not have with 405 and the path's methods in Allow, as in AWS (ANY)", async () => {
    const response = await fetch(`${platform.baseUrl}/fine_tuning/jobs`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${keyA}` },
    });
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET, POST");
    expect(((await response.json()) as Json).error.code).toBe("method_not_allowed");
  });

  it("refuses a job body not declared JSON with 415", async () => {
    const response = await api(keyA, "/fine_tuning/jobs", {
      method: "POST",
      body: JSON.stringify({ model: "tiny-chat", training_file: fileA }),
      headers: { "content-type": "text/plain" },
    });
    expect(response.status).toBe(415);
    expect(response.body.error.code).toBe("unsupported_media_type");
  });
  it("refuses to start with a catalog that names a model a tenant already holds as a code", async () => {
    const created = await createJob(keyA, jobBody("llama-3-8b"));
    expect(created.status).toBe(200);
    const before = process.env[CATALOG_OVERRIDE_ENV];
    process.env[CATALOG_OVERRIDE_ENV] = JSON.stringify(LLAMA_OVERRIDE);
    try {
      await expect(startPlatform({ prefix, port: 0 })).rejects.toThrow(
        /names 'llama-3-8b', already the model code of a tenant's fine-tuned model/,
      );
    } finally {
      if (before === undefined) delete process.env[CATALOG_OVERRIDE_ENV];
      else process.env[CATALOG_OVERRIDE_ENV] = before;
    }
  });
});
