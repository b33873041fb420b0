import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { UsageRepository } from "../../lambdas/aws/usage-repository.ts";
import { CHAT_COMPLETIONS_PATH } from "../../lambdas/chat/local.ts";
import { FILE_ID_PREFIX } from "../../lambdas/core/files/file-record.ts";
import { newId } from "../../lambdas/core/ids.ts";
import { newJobId } from "../../lambdas/core/jobs/ids.ts";
import type { ModelRecord } from "../../lambdas/core/jobs/wire.ts";
import { filesRoutes } from "../../lambdas/files-api/routes.ts";
import { JOBS_ROUTES } from "../../lambdas/jobs-api/routes.ts";
import { usageRoutes } from "../../lambdas/usage-api/routes.ts";
import { webhooksRoutes } from "../../lambdas/webhooks-api/routes.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { localClients, uniquePrefix } from "./aws.ts";

const STAND_IN = fileURLToPath(new URL("./fixtures/stand-in-trainer.ts", import.meta.url));
const DATASET = readFileSync(new URL("../fixtures/datasets/valid-messages.jsonl", import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: wire objects, read field by field in assertions
type Json = Record<string, any>;

/** Every route of the functions' routers, as `METHOD /pattern` (as test/infra/chat.test.ts lists them). */
function routerRoutes(): string[] {
  // Only the patterns are read: the routers' dependencies are never called.
  const unused = {} as never;
  return [
    ...filesRoutes(unused),
    ...JOBS_ROUTES,
    ...usageRoutes(unused),
    ...webhooksRoutes(unused),
    { method: "POST", pattern: CHAT_COMPLETIONS_PATH },
  ].map((route) => `${route.method} ${route.pattern}`);
}

/** One call of the matrix: the path under /v4 (and a JSON or form body). */
interface Call {
  readonly method: string;
  readonly path: string;
  readonly json?: unknown;
  readonly form?: () => FormData;
}

/** The expected outcome of a call: a status (and an error code), or `list` (200 without A's ids). */
interface Outcome {
  readonly status: number;
  readonly code?: string;
}

/**
 * A row: how to call the route as A on A's object (`own`), as B on A's object (`foreign`), and as A
 * on an id that never existed (`missing`, absent for routes that name no object). Rows run in order:
 * each destructive route's foreign and missing calls run before A's own, and A's own on a disposable
 * object.
 */
interface Row {
  readonly route: string;
  readonly own: () => Call;
  readonly ownExpect: Outcome;
  /** Checks of A's own answer beyond its status. */
  readonly ownCheck?: (body: Json, text: string) => void;
  readonly foreign: () => Call;
  readonly foreignExpect: Outcome;
  readonly missing?: () => Call;
  readonly missingExpect?: Outcome;
}

const NOT_FOUND: Outcome = { status: 404 };

/**
 * Authorization on every route of the API: tenant A owns one object of every kind; tenant B calls
 * every route on A's objects and never sees them (404 with the error envelope, or lists without them),
 * and no answer to B carries an id of A's it did not send itself.
 */
describe("authorization matrix: every route, as the owner, another tenant, and on a missing id", () => {
  let platform: LocalPlatform;
  let keyA: string;
  let keyB: string;
  let tenantA: string;
  let fileA: string;
  let fileDisposable: string;
  let jobA: string;
  let jobDisposable: string;
  const modelA = "authz-main";
  const modelJobDisposable = "authz-cancel";
  const modelFull = "authz-full";
  const modelDelete = "authz-del-1";
  const modelDeleteZhipu = "authz-del-2";
  const missingFile = newId(FILE_ID_PREFIX);
  const missingJob = newJobId();
  const missingModel = "authz-no-such-model";
  const missingWebhook = "we_authznosuchendpoint0000";
  let webhookA: string;
  let webhookDisposable: string;
  let webhookSecretA: string;
  const USAGE_DAY = "2026-03-10";
  const prefix = uniquePrefix("authz");
  const { documents } = localClients();

  const request = async (key: string, call: Call) => {
    const body = call.form ? call.form() : call.json !== undefined ? JSON.stringify(call.json) : undefined;
    const response = await fetch(`${platform.baseUrl}${call.path}`, {
      method: call.method,
      redirect: "manual",
      ...(body !== undefined ? { body } : {}),
      headers: {
        authorization: `Bearer ${key}`,
        ...(call.json !== undefined ? { "content-type": "application/json" } : {}),
      },
    });
    const text = await response.text();
    let json: Json = {};
    try {
      json = JSON.parse(text) as Json;
    } catch {
      // A raw answer (file content): checked as text.
    }
    return { status: response.status, text, body: json };
  };
  const api = (key: string, path: string, init: Omit<Call, "path"> = { method: "GET" }) =>
    request(key, { ...init, path });

  async function upload(key: string): Promise<string> {
    const created = await api(key, "/files", { method: "POST", form: datasetForm });
    expect(created.status).toBe(200);
    for (let i = 0; i < 120; i++) {
      const file = await api(key, `/files/${created.body.id}`);
      if (file.body.status === "processed") return created.body.id as string;
      if (file.body.status === "error") throw new Error(file.text);
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error("file not processed in time");
  }

  async function waitFor(jobId: string, statuses: string[], timeoutMs = 45_000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const job = await api(keyA, `/fine_tuning/jobs/${jobId}`);
      if (statuses.includes(job.body.status)) return job.body;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`job ${jobId} did not reach ${statuses.join("|")} in ${timeoutMs} ms`);
  }

  function datasetForm(): FormData {
    const form = new FormData();
    form.set("purpose", "fine-tune");
    form.set("file", new Blob([DATASET], { type: "application/jsonl" }), "train.jsonl");
    return form;
  }

  const jobBody = (code: string, seed: number) => ({
    model: "tiny-chat",
    training_file: fileA,
    method: { type: "lora", hyperparameters: { n_epochs: 1 } },
    model_code: code,
    seed,
  });

  const modelRecord = (modelCode: string, method: "full" | "lora"): ModelRecord => ({
    modelCode,
    tenantId: tenantA,
    jobId: `ftjob-${modelCode}`,
    baseModel: "tiny-chat",
    method,
    status: "ready",
    createdAt: Math.floor(Date.now() / 1000),
    artifactUri: `s3://artifacts/tenants/${tenantA}/jobs/ftjob-${modelCode}/${method === "full" ? "model" : "adapter"}/`,
  });

  beforeAll(async () => {
    platform = await startPlatform({
      prefix,
      port: 0,
      trainerCommand: [process.execPath, "--import", "tsx", STAND_IN],
      trainingConcurrency: 2,
    });
    const admin = new TenantAdmin(new ApiKeysRepository(documents, platform.resources.tables["api-keys"]));
    const a = await admin.createTenant("authz a");
    keyA = a.apiKey;
    tenantA = a.tenantId;
    keyB = (await admin.createTenant("authz b")).apiKey;
    // B owns a file too, so its lists are not trivially empty.
    [fileA, fileDisposable] = await Promise.all([upload(keyA), upload(keyA), upload(keyB)]);

    // A finished job with events and a checkpoint (the stand-in trainer succeeds for seed 7), and a
    // job that runs until terminated (seed 2), to be cancelled and then deleted.
    const finished = await api(keyA, "/fine_tuning/jobs", { method: "POST", json: jobBody(modelA, 7) });
    expect(finished.status).toBe(200);
    jobA = finished.body.id;
    const running = await api(keyA, "/fine_tuning/jobs", {
      method: "POST",
      json: jobBody(modelJobDisposable, 2),
    });
    expect(running.status).toBe(200);
    jobDisposable = running.body.id;
    await waitFor(jobA, ["succeeded"]);

    const models = platform.resources.tables.models;
    for (const record of [
      modelRecord(modelFull, "full"),
      modelRecord(modelDelete, "lora"),
      modelRecord(modelDeleteZhipu, "lora"),
    ]) {
      await documents.send(new PutCommand({ TableName: models, Item: record }));
    }
    // Two webhook endpoints of A's (the local rules allow http to a loopback port nobody listens on).
    const hooks: Json[] = [];
    for (const _ of [1, 2]) {
      const hook = await api(keyA, "/webhooks", {
        method: "POST",
        json: { url: "http://127.0.0.1:9/hooks", events: ["file.processed"] },
      });
      expect(hook.status, hook.text).toBe(200);
      hooks.push(hook.body);
    }
    webhookA = hooks[0]!.id;
    webhookDisposable = hooks[1]!.id;
    webhookSecretA = hooks[0]!.secret;
    await new UsageRepository(documents, platform.resources.tables.usage).record({
      tenantId: tenantA,
      model: modelA,
      promptTokens: 11,
      completionTokens: 7,
      at: Date.parse(`${USAGE_DAY}T12:00:00Z`),
    });
  });

  afterAll(async () => {
    await platform?.stop();
  });

  /** A's ids and codes: none may appear in an answer to B unless B sent it itself. */
  const secretsOfA = () => [
    tenantA,
    keyA,
    fileA,
    fileDisposable,
    jobA,
    jobDisposable,
    modelA,
    modelJobDisposable,
    modelFull,
    modelDelete,
    modelDeleteZhipu,
    webhookA,
    webhookDisposable,
    webhookSecretA,
  ];

  const get = (path: string) => (): Call => ({ method: "GET", path });
  const usagePath = `/usage?start=${USAGE_DAY}&end=${USAGE_DAY}`;
  const chat = (model: string) => (): Call => ({
    method: "POST",
    path: "/chat/completions",
    json: { model, messages: [{ role: "user", content: "hi" }] },
  });

  const MATRIX: Row[] = [
    // Files.
    {
      route: "POST /v4/files",
      own: () => ({ method: "POST", path: "/files", form: datasetForm }),
      ownExpect: { status: 200 },
      // A create names no object: B's own new file, with none of A's ids.
      foreign: () => ({ method: "POST", path: "/files", form: datasetForm }),
      foreignExpect: { status: 200 },
    },
    {
      route: "POST /v4/files/uploads",
      own: () => ({
        method: "POST",
        path: "/files/uploads",
        json: { filename: "a.jsonl", purpose: "fine-tune", bytes: DATASET.length },
      }),
      ownExpect: { status: 200 },
      foreign: () => ({
        method: "POST",
        path: "/files/uploads",
        json: { filename: "b.jsonl", purpose: "fine-tune", bytes: DATASET.length },
      }),
      foreignExpect: { status: 200 },
    },
    {
      route: "GET /v4/files",
      own: get("/files?limit=100"),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body.data.map((f: Json) => f.id)).toContain(fileA),
      foreign: get("/files?limit=100"),
      foreignExpect: { status: 200 },
    },
    {
      route: "GET /v4/files/{file_id}",
      own: () => get(`/files/${fileA}`)(),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toMatchObject({ id: fileA, status: "processed" }),
      foreign: () => get(`/files/${fileA}`)(),
      foreignExpect: NOT_FOUND,
      missing: () => get(`/files/${missingFile}`)(),
      missingExpect: NOT_FOUND,
    },
    {
      route: "GET /v4/files/{file_id}/content",
      own: () => get(`/files/${fileA}/content`)(),
      ownExpect: { status: 200 },
      ownCheck: (_body, text) => expect(text).toBe(DATASET.toString("utf8")),
      foreign: () => get(`/files/${fileA}/content`)(),
      foreignExpect: NOT_FOUND,
      missing: () => get(`/files/${missingFile}/content`)(),
      missingExpect: NOT_FOUND,
    },
    {
      route: "DELETE /v4/files/{file_id}",
      own: () => ({ method: "DELETE", path: `/files/${fileDisposable}` }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toEqual({ id: fileDisposable, object: "file", deleted: true }),
      foreign: () => ({ method: "DELETE", path: `/files/${fileDisposable}` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "DELETE", path: `/files/${missingFile}` }),
      missingExpect: NOT_FOUND,
    },
    // Jobs.
    {
      // A dry run: the estimate, no job. A file reference is a parameter: 400 file_not_found, not 404.
      route: "POST /v4/fine_tuning/jobs",
      own: () => ({
        method: "POST",
        path: "/fine_tuning/jobs",
        json: { ...jobBody("authz-dry", 7), dry_run: true },
      }),
      ownExpect: { status: 200 },
      foreign: () => ({
        method: "POST",
        path: "/fine_tuning/jobs",
        json: { ...jobBody("authz-dry-b", 7), dry_run: true },
      }),
      foreignExpect: { status: 400, code: "file_not_found" },
      missing: () => ({
        method: "POST",
        path: "/fine_tuning/jobs",
        json: { ...jobBody("authz-dry-m", 7), training_file: missingFile, dry_run: true },
      }),
      missingExpect: { status: 400, code: "file_not_found" },
    },
    {
      route: "GET /v4/fine_tuning/jobs",
      own: get("/fine_tuning/jobs?limit=100"),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body.data.map((j: Json) => j.id)).toContain(jobA),
      foreign: get("/fine_tuning/jobs?limit=100"),
      foreignExpect: { status: 200 },
    },
    {
      route: "GET /v4/fine_tuning/jobs/{job_id}",
      own: () => get(`/fine_tuning/jobs/${jobA}`)(),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toMatchObject({ id: jobA, status: "succeeded" }),
      foreign: () => get(`/fine_tuning/jobs/${jobA}`)(),
      foreignExpect: NOT_FOUND,
      missing: () => get(`/fine_tuning/jobs/${missingJob}`)(),
      missingExpect: NOT_FOUND,
    },
    {
      route: "GET /v4/fine_tuning/jobs/{job_id}/events",
      own: () => get(`/fine_tuning/jobs/${jobA}/events?limit=100`)(),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body.data.length).toBeGreaterThan(0),
      foreign: () => get(`/fine_tuning/jobs/${jobA}/events?limit=100`)(),
      foreignExpect: NOT_FOUND,
      missing: () => get(`/fine_tuning/jobs/${missingJob}/events`)(),
      missingExpect: NOT_FOUND,
    },
    {
      route: "GET /v4/fine_tuning/jobs/{job_id}/checkpoints",
      own: () => get(`/fine_tuning/jobs/${jobA}/checkpoints`)(),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body.data.length).toBeGreaterThan(0),
      foreign: () => get(`/fine_tuning/jobs/${jobA}/checkpoints`)(),
      foreignExpect: NOT_FOUND,
      missing: () => get(`/fine_tuning/jobs/${missingJob}/checkpoints`)(),
      missingExpect: NOT_FOUND,
    },
    {
      // Paused, resumed, then cancelled (below): the disposable job runs until terminated.
      route: "POST /v4/fine_tuning/jobs/{job_id}/pause",
      own: () => ({ method: "POST", path: `/fine_tuning/jobs/${jobDisposable}/pause` }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toMatchObject({ id: jobDisposable, status: "paused" }),
      foreign: () => ({ method: "POST", path: `/fine_tuning/jobs/${jobDisposable}/pause` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "POST", path: `/fine_tuning/jobs/${missingJob}/pause` }),
      missingExpect: NOT_FOUND,
    },
    {
      route: "POST /v4/fine_tuning/jobs/{job_id}/resume",
      own: () => ({ method: "POST", path: `/fine_tuning/jobs/${jobDisposable}/resume` }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toMatchObject({ id: jobDisposable, status: "queued" }),
      foreign: () => ({ method: "POST", path: `/fine_tuning/jobs/${jobDisposable}/resume` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "POST", path: `/fine_tuning/jobs/${missingJob}/resume` }),
      missingExpect: NOT_FOUND,
    },
    {
      // Before the delete below: the disposable job is cancelled here, which ends it.
      route: "POST /v4/fine_tuning/jobs/{job_id}/cancel",
      own: () => ({ method: "POST", path: `/fine_tuning/jobs/${jobDisposable}/cancel` }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toMatchObject({ id: jobDisposable, status: "cancelled" }),
      foreign: () => ({ method: "POST", path: `/fine_tuning/jobs/${jobDisposable}/cancel` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "POST", path: `/fine_tuning/jobs/${missingJob}/cancel` }),
      missingExpect: NOT_FOUND,
    },
    {
      route: "DELETE /v4/fine_tuning/jobs/{job_id}",
      own: () => ({ method: "DELETE", path: `/fine_tuning/jobs/${jobDisposable}` }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toMatchObject({ id: jobDisposable, deleted: true }),
      foreign: () => ({ method: "DELETE", path: `/fine_tuning/jobs/${jobDisposable}` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "DELETE", path: `/fine_tuning/jobs/${missingJob}` }),
      missingExpect: NOT_FOUND,
    },
    // Models.
    {
      route: "GET /v4/models",
      own: get("/models"),
      ownExpect: { status: 200 },
      ownCheck: (body) =>
        expect(body.data.map((m: Json) => m.id)).toEqual(expect.arrayContaining([modelA, modelFull])),
      foreign: get("/models"),
      foreignExpect: { status: 200 },
    },
    {
      route: "GET /v4/models/{model}",
      own: () => get(`/models/${modelA}`)(),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toMatchObject({ id: modelA, status: "ready" }),
      foreign: () => get(`/models/${modelA}`)(),
      foreignExpect: NOT_FOUND,
      missing: () => get(`/models/${missingModel}`)(),
      missingExpect: NOT_FOUND,
    },
    {
      route: "POST /v4/models/{model}",
      own: () => ({ method: "POST", path: `/models/${modelA}`, json: { name: "renamed by a" } }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body.id).toBe(modelA),
      foreign: () => ({ method: "POST", path: `/models/${modelA}`, json: { name: "renamed by b" } }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "POST", path: `/models/${missingModel}`, json: { name: "x" } }),
      missingExpect: NOT_FOUND,
    },
    {
      // Before the deploy routes: the full model is not deployed, a 409 that says so (no inference server).
      route: `POST ${CHAT_COMPLETIONS_PATH}`,
      own: chat(modelFull),
      ownExpect: { status: 409, code: "model_not_deployed" },
      foreign: chat(modelFull),
      foreignExpect: NOT_FOUND,
      missing: chat(missingModel),
      missingExpect: NOT_FOUND,
    },
    {
      route: "POST /v4/models/{model}/deploy",
      own: () => ({ method: "POST", path: `/models/${modelFull}/deploy` }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body.deployment).toBeTruthy(),
      foreign: () => ({ method: "POST", path: `/models/${modelFull}/deploy` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "POST", path: `/models/${missingModel}/deploy` }),
      missingExpect: NOT_FOUND,
    },
    {
      route: "DELETE /v4/models/{model}/deploy",
      own: () => ({ method: "DELETE", path: `/models/${modelFull}/deploy` }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body.id).toBe(modelFull),
      foreign: () => ({ method: "DELETE", path: `/models/${modelFull}/deploy` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "DELETE", path: `/models/${missingModel}/deploy` }),
      missingExpect: NOT_FOUND,
    },
    {
      route: "DELETE /v4/models/{model}",
      own: () => ({ method: "DELETE", path: `/models/${modelDelete}` }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toEqual({ id: modelDelete, object: "model", deleted: true }),
      foreign: () => ({ method: "DELETE", path: `/models/${modelDelete}` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "DELETE", path: `/models/${missingModel}` }),
      missingExpect: NOT_FOUND,
    },
    {
      route: "DELETE /v4/fine_tuning/fine_tuned_models/{model}",
      own: () => ({ method: "DELETE", path: `/fine_tuning/fine_tuned_models/${modelDeleteZhipu}` }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toMatchObject({ id: modelDeleteZhipu, delete_status: "deleted" }),
      foreign: () => ({ method: "DELETE", path: `/fine_tuning/fine_tuned_models/${modelDeleteZhipu}` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "DELETE", path: `/fine_tuning/fine_tuned_models/${missingModel}` }),
      missingExpect: NOT_FOUND,
    },
    // Webhooks.
    {
      route: "POST /v4/webhooks",
      own: () => ({
        method: "POST",
        path: "/webhooks",
        json: { url: "http://127.0.0.1:9/own", events: ["file.error"] },
      }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body.secret).toMatch(/^whsec_/),
      foreign: () => ({
        method: "POST",
        path: "/webhooks",
        json: { url: "http://127.0.0.1:9/foreign", events: ["file.error"] },
      }),
      foreignExpect: { status: 200 },
    },
    {
      route: "GET /v4/webhooks",
      own: get("/webhooks"),
      ownExpect: { status: 200 },
      ownCheck: (body, text) => {
        expect(body.data.map((w: Json) => w.id)).toContain(webhookA);
        expect(text).not.toContain(webhookSecretA); // a secret is shown once, at create
      },
      foreign: get("/webhooks"),
      foreignExpect: { status: 200 },
    },
    {
      route: "GET /v4/webhooks/{webhook_id}",
      own: () => get(`/webhooks/${webhookA}`)(),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toMatchObject({ id: webhookA, recent_deliveries: expect.any(Array) }),
      foreign: () => get(`/webhooks/${webhookA}`)(),
      foreignExpect: NOT_FOUND,
      missing: () => get(`/webhooks/${missingWebhook}`)(),
      missingExpect: NOT_FOUND,
    },
    {
      route: "GET /v4/webhooks/{webhook_id}/deliveries",
      own: () => get(`/webhooks/${webhookA}/deliveries`)(),
      ownExpect: { status: 200 },
      foreign: () => get(`/webhooks/${webhookA}/deliveries`)(),
      foreignExpect: NOT_FOUND,
      missing: () => get(`/webhooks/${missingWebhook}/deliveries`)(),
      missingExpect: NOT_FOUND,
    },
    {
      route: "POST /v4/webhooks/{webhook_id}/test",
      own: () => ({ method: "POST", path: `/webhooks/${webhookA}/test` }),
      ownExpect: { status: 202 },
      foreign: () => ({ method: "POST", path: `/webhooks/${webhookA}/test` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "POST", path: `/webhooks/${missingWebhook}/test` }),
      missingExpect: NOT_FOUND,
    },
    {
      route: "DELETE /v4/webhooks/{webhook_id}",
      own: () => ({ method: "DELETE", path: `/webhooks/${webhookDisposable}` }),
      ownExpect: { status: 200 },
      ownCheck: (body) => expect(body).toMatchObject({ id: webhookDisposable, deleted: true }),
      foreign: () => ({ method: "DELETE", path: `/webhooks/${webhookDisposable}` }),
      foreignExpect: NOT_FOUND,
      missing: () => ({ method: "DELETE", path: `/webhooks/${missingWebhook}` }),
      missingExpect: NOT_FOUND,
    },
    // Usage: the tenant's own, whatever it asks.
    {
      route: "GET /v4/usage",
      own: get(usagePath),
      ownExpect: { status: 200 },
      ownCheck: (body) =>
        expect(body.data).toEqual([expect.objectContaining({ date: USAGE_DAY, model: modelA, requests: 1 })]),
      foreign: get(usagePath),
      foreignExpect: { status: 200 },
    },
  ];

  it("covers exactly the routers' routes, each once", () => {
    const covered = MATRIX.map((row) => row.route);
    expect(new Set(covered).size).toBe(covered.length);
    expect([...covered].sort()).toEqual([...new Set(routerRoutes())].sort());
  });

  const expectOutcome = (
    who: string,
    answer: { status: number; text: string; body: Json },
    outcome: Outcome,
  ) => {
    expect(answer.status, `${who}: ${answer.text}`).toBe(outcome.status);
    if (outcome.status >= 400) {
      // The error envelope, and for a 404 the not-found type, whatever the kind of object.
      expect(answer.body.error, `${who}: ${answer.text}`).toMatchObject({
        message: expect.any(String),
        type: expect.any(String),
        code: outcome.code ?? expect.any(String),
      });
      if (outcome.status === 404) expect(answer.body.error.type).toBe("not_found_error");
    }
  };

  /** No id or code of A's in B's answer, beyond those B sent in its own request. */
  const expectNoLeak = (who: string, call: Call, text: string) => {
    const sent = `${call.path} ${call.json !== undefined ? JSON.stringify(call.json) : ""}`;
    const leaked = secretsOfA().filter((secret) => !sent.includes(secret) && text.includes(secret));
    expect(leaked, `${who} leaks: ${text}`).toEqual([]);
  };

  for (const row of MATRIX) {
    it(row.route, async () => {
      // B (and the missing id) first: a destructive route must still find A's object for A's own call.
      const foreignCall = row.foreign();
      const foreign = await request(keyB, foreignCall);
      expectOutcome(`B on A's (${row.route})`, foreign, row.foreignExpect);
      expectNoLeak(`B on A's (${row.route})`, foreignCall, foreign.text);
      if (row.missing) {
        const missing = await request(keyA, row.missing());
        expectOutcome(`A on missing (${row.route})`, missing, row.missingExpect ?? NOT_FOUND);
      }
      const own = await request(keyA, row.own());
      expectOutcome(`A on A's (${row.route})`, own, row.ownExpect);
      row.ownCheck?.(own.body, own.text);
    });
  }

  it("left A's objects whole after B's calls, and B's lists hold none of A's ids", async () => {
    expect((await api(keyA, `/files/${fileA}`)).body.status).toBe("processed");
    expect((await api(keyA, `/fine_tuning/jobs/${jobA}`)).body.status).toBe("succeeded");
    const renamed = await api(keyA, `/models/${modelA}`);
    expect(renamed.status).toBe(200);
    expect(renamed.text).not.toContain("renamed by b");
    for (const path of ["/files?limit=100", "/fine_tuning/jobs?limit=100", "/models", usagePath]) {
      const list = await api(keyB, path);
      expect(list.status).toBe(200);
      expectNoLeak(`B's ${path}`, { method: "GET", path }, list.text);
    }
  });
});
