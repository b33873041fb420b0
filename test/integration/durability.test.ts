import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, PurgeQueueCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { documentClient, s3Client, sqsClient } from "../../lambdas/aws/clients.ts";
import { JobsRepository } from "../../lambdas/aws/jobs-repository.ts";
import { jobArtifactKeys } from "../../lambdas/core/contract.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { ensureLocalStack, type LocalStackHandle } from "../../local/localstack/harness.ts";
import { localStateDirs, resetLocalState } from "../../local/platform/local-state.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { uniquePrefix } from "./aws.ts";

const STAND_IN = fileURLToPath(new URL("./fixtures/stand-in-trainer.ts", import.meta.url));
const DATASET = readFileSync(new URL("../fixtures/datasets/valid-messages.jsonl", import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: wire objects, read field by field in assertions
type Json = Record<string, any>;

/**
 * The local platform as `npm start` runs it, with its state kept (local/platform/object-mirror.ts,
 * resume.ts, the harness's stateDir): stopped and started again on the same LocalStack, then on a fresh
 * LocalStack process over the same persisted directory, so nothing survives in memory. A stand-in
 * trainer (seed 3: checkpoint, then wait to be stopped; finish when resumed) and a stand-in inference
 * server (the local server's admin endpoints; it forgets its models when "restarted") keep it fast.
 */
describe("a durable local platform", () => {
  const prefix = uniquePrefix("durable");
  const dir = mkdtempSync(join(tmpdir(), "ft-durable-"));
  const state = localStateDirs(dir, prefix);
  const globalEndpoint = process.env.AWS_ENDPOINT_URL;
  const inference = fakeInferenceServer();
  let localstack: LocalStackHandle | undefined;
  let port = 0;
  let platform: LocalPlatform | undefined;
  let key = "";
  let tenantId = "";
  /** What the tests make, by role: files, jobs. */
  const ids = { file: "", late: "", lora: "", full: "", interrupted: "", second: "" };

  async function startLocalStack() {
    // Its own LocalStack (not the suite's): one this test may stop and start again on its directory.
    delete process.env.AWS_ENDPOINT_URL;
    localstack = await ensureLocalStack({
      port,
      stateDir: state.localstack,
      handleSignals: false,
      log: () => {},
    });
    port = Number(new URL(localstack.endpoint).port);
    process.env.AWS_ENDPOINT_URL = localstack.endpoint;
  }

  async function start() {
    platform = await startPlatform({
      prefix,
      port: 0,
      trainerCommand: [process.execPath, "--import", "tsx", STAND_IN],
      workDir: state.batch,
      stateDir: state.objects,
      inferenceUrl: inference.url(),
    });
  }

  async function stop() {
    await platform?.stop();
    platform = undefined;
  }

  const api = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const response = await fetch(`${platform!.baseUrl}${path}`, {
      ...rest,
      ...(json !== undefined ? { method: rest.method ?? "POST", body: JSON.stringify(json) } : {}),
      headers: {
        authorization: `Bearer ${key}`,
        ...(json !== undefined ? { "content-type": "application/json" } : {}),
        ...rest.headers,
      },
    });
    const isJson = /^application\/json(;|$)/.test(response.headers.get("content-type") ?? "");
    return {
      status: response.status,
      body: (isJson ? await response.json() : await response.text()) as Json,
    };
  };

  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 40_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const value = await probe();
      if (value !== undefined) return value;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  const jobIn = (jobId: string, statuses: string[]) =>
    until(`${jobId} ${statuses.join("|")}`, async () => {
      const job = await api(`/fine_tuning/jobs/${jobId}`);
      return statuses.includes(job.body.status) ? job.body : undefined;
    });

  const fileIn = (fileId: string, status: string) =>
    until(`${fileId} ${status}`, async () => {
      const file = await api(`/files/${fileId}`);
      return file.body.status === status ? file.body : undefined;
    });

  const deployment = (code: string, status: string) =>
    until(`${code} ${status}`, async () => {
      const model = await api(`/models/${code}`);
      return model.body.deployment?.status === status ? model.body.deployment : undefined;
    });

  const createJob = async (code: string, method: "lora" | "full", seed: number) => {
    const created = await api("/fine_tuning/jobs", {
      json: {
        model: "tiny-chat",
        training_file: ids.file,
        method: { type: method, hyperparameters: { n_epochs: 1 } },
        model_code: code,
        seed,
      },
    });
    expect(created.status).toBe(200);
    return created.body.id as string;
  };

  /** A seed-3 job that has written its checkpoint and waits to be stopped. */
  async function checkpointedJob(code: string): Promise<string> {
    const jobId = await createJob(code, "lora", 3);
    const manifest = `${jobArtifactKeys(tenantId, jobId, "lora").checkpoints}step-1/checkpoint.json`;
    await until(`${jobId}'s checkpoint`, () =>
      s3Client()
        .send(new HeadObjectCommand({ Bucket: platform!.resources.buckets.artifacts, Key: manifest }))
        .then(
          () => true,
          () => undefined,
        ),
    );
    return jobId;
  }

  const messages = async (jobId: string) =>
    ((await api(`/fine_tuning/jobs/${jobId}/events?limit=100`)).body.data as Json[]).map(
      (e) => e.message as string,
    );

  beforeAll(async () => {
    await inference.start();
    await startLocalStack();
    await start();
    const admin = new TenantAdmin(
      new ApiKeysRepository(documentClient(), platform!.resources.tables["api-keys"]),
    );
    ({ apiKey: key, tenantId } = await admin.createTenant("durable"));
  });

  afterAll(async () => {
    await stop().catch(() => {});
    await localstack?.stop();
    await inference.stop();
    process.env.AWS_ENDPOINT_URL = globalEndpoint;
    rmSync(dir, { recursive: true, force: true });
  });

  it("picks up after a stop: a running job resumes, an upload made meanwhile is validated, deployments load again", async () => {
    const form = new FormData();
    form.set("purpose", "fine-tune");
    form.set("file", new Blob([DATASET], { type: "application/jsonl" }), "train.jsonl");
    ids.file = (await api("/files", { method: "POST", body: form })).body.id;
    await fileIn(ids.file, "processed");

    ids.lora = await createJob("durable-lora", "lora", 7);
    ids.full = await createJob("durable-full", "full", 7);
    await jobIn(ids.lora, ["succeeded"]);
    await jobIn(ids.full, ["succeeded"]);
    expect((await api("/models/durable-full/deploy", { method: "POST" })).status).toBe(200);
    await deployment("durable-full", "deployed");
    ids.interrupted = await checkpointedJob("durable-resumed");
    const upload = await api("/files/uploads", {
      json: { filename: "late.jsonl", purpose: "fine-tune", bytes: DATASET.length },
    });
    expect(upload.body.status).toBe("pending_upload");
    ids.late = upload.body.id;

    await stop();
    const jobs = new JobsRepository(documentClient(), {
      jobs: `${prefix}-jobs`,
      events: `${prefix}-job-events`,
      models: `${prefix}-models`,
    });
    // Stopping is not failing: the job is still running, to be resumed.
    expect((await jobs.get(tenantId, ids.interrupted))?.status).toBe("running");
    // The upload arrives while nothing runs, and its S3 event is lost.
    const put = await fetch(upload.body.upload_url, {
      method: "PUT",
      body: DATASET,
      headers: upload.body.upload_headers,
    });
    expect(put.status).toBe(200);
    const validationQueue = `${localstack!.endpoint}/queue/us-east-1/000000000000/${prefix}-validation`;
    await until("the upload's S3 event", async () => {
      const { Attributes } = await sqsClient().send(
        new GetQueueAttributesCommand({
          QueueUrl: validationQueue,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        }),
      );
      // Not visible: a receive the stopped poller had in flight may have taken it.
      const waiting =
        Number(Attributes?.ApproximateNumberOfMessages) +
        Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
      return waiting > 0 ? true : undefined;
    });
    await sqsClient().send(new PurgeQueueCommand({ QueueUrl: validationQueue }));
    inference.restart();

    await start();
    await fileIn(ids.late, "processed");
    expect(await jobIn(ids.interrupted, ["succeeded", "failed"])).toMatchObject({ status: "succeeded" });
    const log = await messages(ids.interrupted);
    expect(log).toContain("Resumed from checkpoint step 1");
    expect(log).toContain("Training interrupted; waiting for capacity to resume from the newest checkpoint.");
    await deployment("durable-full", "deployed");
    expect(inference.loads("durable-full")).toBe(2);
  });

  it("keeps keys, files, jobs, models and artifacts across a restart of LocalStack itself", async () => {
    ids.second = await checkpointedJob("durable-second");
    await stop();
    await localstack!.stop();
    inference.restart();
    await startLocalStack();
    await start();

    const files = await api("/files");
    expect(files.status).toBe(200);
    expect((files.body.data as Json[]).map((f) => f.id)).toEqual(
      expect.arrayContaining([ids.file, ids.late]),
    );
    const content = await api(`/files/${ids.file}/content`);
    expect(content.status).toBe(200);
    expect(content.body).toBe(DATASET.toString("utf8"));

    const jobs = await api("/fine_tuning/jobs?limit=20");
    expect((jobs.body.data as Json[]).map((j) => j.id)).toEqual(
      expect.arrayContaining([ids.lora, ids.full, ids.interrupted, ids.second]),
    );
    // The resumed run and a new job read the restored training file with If-Match on the ETag that was
    // validated: restored by a single PUT, the object keeps it.
    expect(await jobIn(ids.second, ["succeeded", "failed"])).toMatchObject({ status: "succeeded" });
    expect(await messages(ids.second)).toContain("Resumed from checkpoint step 1");
    const after = await createJob("durable-after", "lora", 7);
    expect(await jobIn(after, ["succeeded", "failed"])).toMatchObject({ status: "succeeded" });
    expect((await messages(ids.lora)).at(-1)).toMatch(/^Created fine-tuning job/);
    expect((await api(`/fine_tuning/jobs/${ids.lora}/checkpoints`)).body.data).toHaveLength(1);

    expect((await api("/models/durable-lora")).body).toMatchObject({ id: "durable-lora", status: "ready" });
    const adapter = await s3Client().send(
      new GetObjectCommand({
        Bucket: platform!.resources.buckets.artifacts,
        Key: `${jobArtifactKeys(tenantId, ids.lora, "lora").result}adapter_config.json`,
      }),
    );
    expect(await adapter.Body!.transformToString()).toBe("{}");
    await deployment("durable-full", "deployed");
    expect(inference.loads("durable-full")).toBe(3);
  });

  it("--reset deletes the kept state, and is refused while a LocalStack uses it", async () => {
    expect(() => resetLocalState(state)).toThrow(/still uses/);
    await stop();
    await localstack!.stop();
    localstack = undefined;
    resetLocalState(state);
    expect(existsSync(state.root)).toBe(false);
    expect(existsSync(state.batch)).toBe(false);
  });
});

/** The local inference server's admin endpoints (local-deployments.ts): every PUT loads, a restart forgets. */
function fakeInferenceServer() {
  let server: Server | undefined;
  const loaded = new Set<string>();
  const loads = new Map<string, number>();
  return {
    async start() {
      server = createServer((request, response) => {
        const code = decodeURIComponent(/^\/admin\/deployments\/([^/?]+)/.exec(request.url ?? "")?.[1] ?? "");
        request.resume();
        if (!code) return response.writeHead(404).end();
        if (request.method === "PUT") {
          loaded.add(code);
          loads.set(code, (loads.get(code) ?? 0) + 1);
        }
        if (request.method === "DELETE") loaded.delete(code);
        if (request.method === "GET" && !loaded.has(code)) return response.writeHead(404).end();
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ status: "ready" }));
      });
      await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    },
    url: () => `http://127.0.0.1:${(server!.address() as AddressInfo).port}/v1`,
    restart: () => loaded.clear(),
    loads: (code: string) => loads.get(code) ?? 0,
    stop: () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
  };
}
