import {
  GetBucketNotificationConfigurationCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { EventBridgeEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { FilesRepository } from "../../lambdas/aws/files-repository.ts";
import { resultsFileId } from "../../lambdas/core/files/file-record.ts";
import { newJobId } from "../../lambdas/core/jobs/ids.ts";
import type { ModelRecord } from "../../lambdas/core/jobs/wire.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { jobRecord } from "../fixtures/jobs.ts";
import { localClients, uniquePrefix } from "./aws.ts";

// biome-ignore lint/suspicious/noExplicitAny: wire objects, read field by field in assertions
type Json = Record<string, any>;

const CSV =
  "step,epoch,train_loss,train_mean_token_accuracy,valid_loss,valid_mean_token_accuracy,full_valid_loss," +
  "full_valid_mean_token_accuracy,learning_rate,trained_tokens\n" +
  "1,0.5,2.1,0.41,,,,,0.0001,512\n2,1,1.7,0.52,1.8,0.5,1.75,0.51,0.00005,1024\n";

/**
 * A succeeded job's results: result.json and results.csv in the artifacts bucket, a SUCCEEDED Batch
 * state change through the real job-status handler (the one the local platform wires, with the real
 * adapters), then the job and its results file through the jobs and files APIs, against LocalStack.
 */
describe("a succeeded job's results file and training summary", () => {
  let platform: LocalPlatform;
  let keyA: string;
  let keyB: string;
  let tenantA: string;
  let applyStateChange: (detail: Json) => Promise<string>;
  const { s3, documents } = localClients();

  const api = async (key: string, path: string, init: RequestInit = {}) => {
    const response = await fetch(`${platform.baseUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${key}`, ...init.headers },
    });
    return response;
  };
  const json = async (key: string, path: string, init: RequestInit = {}) => {
    const response = await api(key, path, init);
    return { status: response.status, body: (await response.json()) as Json };
  };

  beforeAll(async () => {
    platform = await startPlatform({ prefix: uniquePrefix("results"), port: 0 });
    const admin = new TenantAdmin(new ApiKeysRepository(documents, platform.resources.tables["api-keys"]));
    const a = await admin.createTenant("tenant a");
    keyA = a.apiKey;
    tenantA = a.tenantId;
    keyB = (await admin.createTenant("tenant b")).apiKey;
    // The module the platform imported: its handler, with the platform's environment.
    const jobStatus = await import("../../lambdas/job-status/index.ts");
    applyStateChange = (detail) =>
      jobStatus.handler({
        source: "aws.batch",
        "detail-type": "Batch Job State Change",
        detail,
      } as unknown as EventBridgeEvent<"Batch Job State Change", unknown>);
  });

  afterAll(async () => {
    await platform?.stop();
  });

  /** A running job of tenant A (with its pending model), as the dispatcher leaves it. */
  async function runningJob(code: string): Promise<string> {
    const jobId = newJobId();
    const job = jobRecord({
      tenantId: tenantA,
      jobId,
      modelCode: code,
      status: "running",
      batchJobId: `batch-${jobId}`,
    });
    const model: ModelRecord = {
      modelCode: code,
      tenantId: tenantA,
      jobId,
      baseModel: job.model,
      method: job.method,
      status: "pending",
      createdAt: job.createdAt,
      artifactUri: null,
    };
    const { tables } = platform.resources;
    await documents.send(new PutCommand({ TableName: tables.jobs, Item: job }));
    await documents.send(new PutCommand({ TableName: tables.models, Item: model }));
    return jobId;
  }

  const putArtifact = (jobId: string, name: string, body: string) =>
    s3.send(
      new PutObjectCommand({
        Bucket: platform.resources.buckets.artifacts,
        Key: `tenants/${tenantA}/jobs/${jobId}/${name}`,
        Body: body,
      }),
    );

  const succeeded = (jobId: string) => ({
    jobId: `batch-${jobId}`,
    jobName: jobId,
    status: "SUCCEEDED",
    parameters: { tenantId: tenantA, jobId },
    container: { exitCode: 0 },
  });

  it("makes results.csv the tenant's fine-tune-results file and shows the summary on the job", async () => {
    const jobId = await runningJob("it-results");
    await putArtifact(jobId, "adapter/adapter_config.json", "{}");
    await putArtifact(jobId, "results.csv", CSV);
    await putArtifact(
      jobId,
      "result.json",
      JSON.stringify({
        objective: "supervised",
        steps: 2,
        trained_tokens: 1024,
        final_loss: 1.7,
        delivered_step: 2,
        best_step: 2,
        early_stopped: false,
        full_valid_loss: 1.75,
        full_valid_mean_token_accuracy: 0.51,
        validation_split: { fraction: 0.1, examples: 4 },
      }),
    );
    await expect(applyStateChange(succeeded(jobId))).resolves.toBe("applied");

    const fileId = resultsFileId(jobId);
    const job = await json(keyA, `/fine_tuning/jobs/${jobId}`);
    expect(job.body).toMatchObject({
      status: "succeeded",
      fine_tuned_model: "it-results",
      trained_tokens: 1024,
      result_files: [fileId],
      training_summary: {
        delivered_step: 2,
        best_step: 2,
        early_stopped: false,
        full_valid_loss: 1.75,
        full_valid_mean_token_accuracy: 0.51,
        validation_split: { fraction: 0.1, examples: 4 },
      },
    });

    const file = await json(keyA, `/files/${fileId}`);
    expect(file.body).toEqual({
      id: fileId,
      object: "file",
      bytes: Buffer.byteLength(CSV),
      created_at: expect.any(Number),
      filename: `${jobId}-results.csv`,
      purpose: "fine-tune-results",
      status: "processed",
      status_details: null,
      format: null,
      statistics: null,
      validation: null,
    });

    const content = await api(keyA, `/files/${fileId}/content`);
    expect(content.status).toBe(200);
    expect(content.headers.get("content-type")).toBe("text/csv");
    expect(await content.text()).toBe(CSV);

    // The object sits in the tenant's files layout, stored as CSV.
    const head = await s3.send(
      new HeadObjectCommand({
        Bucket: platform.resources.buckets.datasets,
        Key: `tenants/${tenantA}/files/${fileId}.csv`,
      }),
    );
    expect(head.ContentType).toBe("text/csv");

    // …which the validator is never sent: the datasets bucket notifies for `.jsonl` objects only.
    const notifications = await s3.send(
      new GetBucketNotificationConfigurationCommand({ Bucket: platform.resources.buckets.datasets }),
    );
    const rules = notifications.QueueConfigurations?.[0]?.Filter?.Key?.FilterRules ?? [];
    expect(rules.map((r) => `${r.Name?.toLowerCase()}=${r.Value}`).sort()).toEqual([
      "prefix=tenants/",
      "suffix=.jsonl",
    ]);

    const results = await json(keyA, "/files?purpose=fine-tune-results");
    expect(results.body.data.map((f: Json) => f.id)).toEqual([fileId]);
    const training = await json(keyA, "/files?purpose=fine-tune");
    expect(training.body.data.map((f: Json) => f.id)).not.toContain(fileId);
    const all = await json(keyA, "/files");
    expect(all.body.data.map((f: Json) => f.id)).toContain(fileId);
  });

  it("makes no second file when the success is delivered again", async () => {
    const jobId = await runningJob("it-redelivered");
    await putArtifact(jobId, "results.csv", CSV);
    await putArtifact(jobId, "result.json", JSON.stringify({ trained_tokens: 10, delivered_step: 1 }));
    await expect(applyStateChange(succeeded(jobId))).resolves.toBe("applied");
    const first = (await json(keyA, `/fine_tuning/jobs/${jobId}`)).body;
    await expect(applyStateChange(succeeded(jobId))).resolves.not.toBe("applied");
    const again = (await json(keyA, `/fine_tuning/jobs/${jobId}`)).body;
    expect(again.result_files).toEqual(first.result_files);
    const files = new FilesRepository(documents, platform.resources.tables.files);
    const listed = await files.list(tenantA, 100, undefined, "fine-tune-results");
    expect(listed.items.filter((f) => f.filename === `${jobId}-results.csv`)).toHaveLength(1);
  });

  it("succeeds with no result files when the trainer wrote no results.csv", async () => {
    const jobId = await runningJob("it-no-csv");
    await putArtifact(jobId, "result.json", JSON.stringify({ trained_tokens: 5, steps: 1 }));
    await expect(applyStateChange(succeeded(jobId))).resolves.toBe("applied");
    const job = (await json(keyA, `/fine_tuning/jobs/${jobId}`)).body;
    expect(job).toMatchObject({ status: "succeeded", result_files: [], training_summary: null });
    expect((await api(keyA, `/files/${resultsFileId(jobId)}`)).status).toBe(404);
  });

  it("answers tenant B 404 for tenant A's results file, and lets tenant A delete it", async () => {
    const jobId = await runningJob("it-private");
    await putArtifact(jobId, "results.csv", CSV);
    await putArtifact(jobId, "result.json", JSON.stringify({ trained_tokens: 5 }));
    await applyStateChange(succeeded(jobId));
    const fileId = resultsFileId(jobId);
    for (const [method, path] of [
      ["GET", `/files/${fileId}`],
      ["GET", `/files/${fileId}/content`],
      ["DELETE", `/files/${fileId}`],
    ] as const) {
      const response = await api(keyB, path, { method });
      expect(response.status, `${method} ${path}`).toBe(404);
    }
    const deleted = await json(keyA, `/files/${fileId}`, { method: "DELETE" });
    expect(deleted.body).toEqual({ id: fileId, object: "file", deleted: true });
    expect((await api(keyA, `/files/${fileId}`)).status).toBe(404);
    await expect(
      s3.send(
        new GetObjectCommand({
          Bucket: platform.resources.buckets.datasets,
          Key: `tenants/${tenantA}/files/${fileId}.csv`,
        }),
      ),
    ).rejects.toMatchObject({ name: "NoSuchKey" });
  });
});
