import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantSettingsRepository } from "../../lambdas/aws/tenant-settings-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { localClients, uniquePrefix } from "./aws.ts";

const STAND_IN = fileURLToPath(new URL("./fixtures/stand-in-trainer.ts", import.meta.url));
const DATASET = readFileSync(new URL("../fixtures/datasets/valid-messages.jsonl", import.meta.url));
/** Other bytes of the same size: what a second PUT to a used URL would swap in. */
const SWAPPED = Buffer.concat([Buffer.from(" ".repeat(16)), DATASET.subarray(16)]);
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

// biome-ignore lint/suspicious/noExplicitAny: wire objects, read field by field in assertions
type Json = Record<string, any>;

/**
 * Integrity of training data on the local platform against LocalStack (which checks presigned
 * signatures and S3 conditional writes as AWS does): a presigned upload URL is good for one PUT, a job
 * trains the exact object that was validated, and a file delete racing a job create never leaves a job
 * without its file.
 */
describe("integrity of training data", () => {
  let platform: LocalPlatform;
  let key: string;
  let tenantId: string;
  const { s3, documents } = localClients();

  const api = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
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

  async function until<T>(what: string, read: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const value = await read();
      if (value !== undefined) return value;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${what} did not happen within ${timeoutMs} ms`);
  }

  const processed = (fileId: string) =>
    until(`file ${fileId} validated`, async () => {
      const file = await api(`/files/${fileId}`);
      if (file.body.status === "error") throw new Error(JSON.stringify(file.body));
      return file.body.status === "processed" ? file.body : undefined;
    });

  const finished = (jobId: string) =>
    until(`job ${jobId} finished`, async () => {
      const job = await api(`/fine_tuning/jobs/${jobId}`);
      return ["succeeded", "failed", "cancelled"].includes(job.body.status) ? job.body : undefined;
    });

  async function multipartUpload(content: Buffer): Promise<string> {
    const form = new FormData();
    form.set("purpose", "fine-tune");
    form.set("file", new Blob([content], { type: "application/jsonl" }), "train.jsonl");
    const created = await api("/files", { method: "POST", body: form });
    expect(created.status).toBe(200);
    return created.body.id as string;
  }

  const createJob = (trainingFile: string, code: string) =>
    api("/fine_tuning/jobs", {
      json: {
        model: "tiny-chat",
        training_file: trainingFile,
        method: { type: "lora", hyperparameters: { n_epochs: 1 } },
        model_code: code,
      },
    });

  const datasetKey = (fileId: string) => `tenants/${tenantId}/files/${fileId}.jsonl`;
  const fileRecord = async (fileId: string) =>
    (
      await documents.send(
        new GetCommand({ TableName: platform.resources.tables.files, Key: { tenantId, fileId } }),
      )
    ).Item;
  const objectExists = (fileId: string) =>
    s3
      .send(new HeadObjectCommand({ Bucket: platform.resources.buckets.datasets, Key: datasetKey(fileId) }))
      .then(
        () => true,
        () => false,
      );

  beforeAll(async () => {
    platform = await startPlatform({
      prefix: uniquePrefix("integrity"),
      port: 0,
      trainerCommand: [process.execPath, "--import", "tsx", STAND_IN],
      trainingConcurrency: 2,
    });
    const admin = new TenantAdmin(
      new ApiKeysRepository(documents, platform.resources.tables["api-keys"]),
      undefined,
      new TenantSettingsRepository(documents, platform.resources.tables.tenants),
    );
    ({ apiKey: key, tenantId } = await admin.createTenant("integrity"));
    // The race below creates 20 jobs at once: not a test of the concurrent-jobs quota (5 by default),
    // which counts at request time and would refuse some of them depending on timing.
    await admin.setQuota(tenantId, { concurrentJobs: "100", files: "100" });
  });

  afterAll(async () => {
    await platform?.stop();
  });

  it("uses a presigned upload URL once, refuses a tampered one, and trains the validated bytes", async () => {
    // Prepare: an upload URL for the dataset.
    const upload = await api("/files/uploads", {
      json: { filename: "train.jsonl", purpose: "fine-tune", bytes: DATASET.length },
    });
    expect(upload.status).toBe(200);
    expect(upload.body.upload_headers).toEqual({
      "content-type": "application/jsonl",
      "content-length": String(DATASET.length),
      "if-none-match": "*",
    });
    const { "content-length": _length, ...headers } = upload.body.upload_headers as Record<string, string>;
    const put = (body: Buffer, sent: Record<string, string>) =>
      fetch(upload.body.upload_url as string, { method: "PUT", body, headers: sent });

    // A changed size or a missing If-None-Match breaks the signature, as in AWS.
    const { "if-none-match": _condition, ...unconditional } = headers;
    expect((await put(Buffer.concat([DATASET, Buffer.from("\n")]), headers)).status).toBe(403);
    expect((await put(DATASET, unconditional)).status).toBe(403);

    // Act: the upload, then a second PUT of other bytes of the same size to the same URL.
    expect((await put(DATASET, headers)).status).toBe(200);
    const fileId = upload.body.id as string;
    await processed(fileId);
    const second = await put(SWAPPED, headers);
    const secondBody = await second.text();

    // Assess: 412, and the validated object is the one stored and trained on.
    expect(second.status).toBe(412);
    expect(secondBody).toContain("PreconditionFailed");
    const object = await s3.send(
      new GetObjectCommand({ Bucket: platform.resources.buckets.datasets, Key: datasetKey(fileId) }),
    );
    expect(Buffer.from(await object.Body!.transformToByteArray()).equals(DATASET)).toBe(true);
    expect((await fileRecord(fileId))?.validatedETag).toBe(object.ETag);

    const created = await createJob(fileId, "integrity-validated");
    expect(created.status).toBe(200);
    const job = await finished(created.body.id);
    expect(job.status).toBe("succeeded");
    const stored = await documents.send(
      new GetCommand({ TableName: platform.resources.tables.jobs, Key: { tenantId, jobId: job.id } }),
    );
    expect(stored.Item?.trainingFileETag).toBe(object.ETag);
    const events = await api(`/fine_tuning/jobs/${job.id}/events?limit=100`);
    const started = (events.body.data as Json[]).find((e) =>
      e.message.startsWith("stand-in trainer started"),
    );
    expect(started?.data).toEqual({ training_sha256: sha256(DATASET) });

    // The job has ended: the file may go now (its users, read by key, have all finished).
    expect((await fileRecord(fileId))?.usedByJobs).toEqual(new Set([job.id]));
    const removed = await api(`/files/${fileId}`, { method: "DELETE" });
    expect(removed).toMatchObject({ status: 200, body: { id: fileId, deleted: true } });
    expect(await objectExists(fileId)).toBe(false);
  });

  it("fails a job as invalid input when its training file changed after it was validated", async () => {
    // Prepare: a validated file whose object is then replaced under the same key (not through the
    // API: by whoever can write the bucket).
    const fileId = await multipartUpload(DATASET);
    await processed(fileId);
    await s3.send(
      new PutObjectCommand({
        Bucket: platform.resources.buckets.datasets,
        Key: datasetKey(fileId),
        Body: SWAPPED,
      }),
    );

    // Act
    const created = await createJob(fileId, "integrity-changed");
    expect(created.status).toBe(200);
    const job = await finished(created.body.id);

    // Assess: failed as the tenant's input, with a message that says what to do.
    expect(job.status).toBe("failed");
    expect(job.error).toMatchObject({
      code: "invalid_training_input",
      message: expect.stringContaining("the training file changed after it was validated"),
    });
  });

  it("never leaves a job without its file when 20 deletes race 20 creates", async () => {
    // Prepare: 20 validated files.
    const files = await Promise.all(Array.from({ length: 20 }, () => multipartUpload(DATASET)));
    await Promise.all(files.map(processed));

    // Act: for each file, a create and a delete at once, all 40 requests together.
    const outcomes = await Promise.all(
      files.map(async (fileId, i) => {
        const [create, remove] = await Promise.all([
          createJob(fileId, `integrity-race-${i}`),
          api(`/files/${fileId}`, { method: "DELETE" }),
        ]);
        return { fileId, create, remove };
      }),
    );

    // Assess: either the job holds its file (and the delete was a 409 file_in_use), or the file is gone
    // (record and object) and the create was a 400.
    const kinds = { jobKeptFile: 0, fileDeleted: 0 };
    for (const { fileId, create, remove } of outcomes) {
      const shown = await api(`/files/${fileId}`);
      if (create.status === 200) {
        expect(remove, fileId).toMatchObject({ status: 409, body: { error: { code: "file_in_use" } } });
        expect(shown.status, fileId).toBe(200);
        expect(await objectExists(fileId), fileId).toBe(true);
        const job = await api(`/fine_tuning/jobs/${create.body.id}`);
        expect(job.body.training_file).toBe(fileId);
        kinds.jobKeptFile++;
      } else {
        expect(create.status, JSON.stringify(create.body)).toBe(400);
        expect(remove, fileId).toMatchObject({ status: 200, body: { id: fileId, deleted: true } });
        expect(shown.status, fileId).toBe(404);
        expect(await objectExists(fileId), fileId).toBe(false);
        kinds.fileDeleted++;
      }
    }
    expect(kinds.jobKeptFile + kinds.fileDeleted).toBe(20);
    console.info(`[integrity] create/delete race: ${JSON.stringify(kinds)}`);
  });
});
