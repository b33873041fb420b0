import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONFIG_ENV } from "../../infra/resources/definitions.ts";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantSettingsRepository } from "../../lambdas/aws/tenant-settings-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { localClients, uniquePrefix } from "./aws.ts";

const DATASET = readFileSync(new URL("../fixtures/datasets/valid-messages.jsonl", import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: wire objects, read field by field in assertions
type Json = Record<string, any>;

/**
 * Tenant quotas through the local platform (the same handlers as in AWS) against LocalStack: the
 * operator's defaults (env, as CDK sets them on the functions) answer 429 `quota_exceeded`, and
 * `ftctl admin tenants set-quota` (TenantAdmin over the tenants table) lifts them for one tenant.
 */
describe("tenant quotas", () => {
  let platform: LocalPlatform;
  let admin: TenantAdmin;
  let key: string;
  let tenantId: string;
  const saved: Record<string, string | undefined> = {};
  const defaults = {
    [CONFIG_ENV.tenantMaxFiles]: "1",
    [CONFIG_ENV.tenantMaxStoredBytes]: String(DATASET.length + 100),
    [CONFIG_ENV.tenantMaxConcurrentJobs]: "0",
  };

  beforeAll(async () => {
    // Read by the handlers when the platform loads them: set before it starts, restored after.
    for (const [name, value] of Object.entries(defaults)) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
    const { documents } = localClients();
    platform = await startPlatform({
      prefix: uniquePrefix("quotas"),
      port: 0,
      // A trainer that never ends on its own: the job stays unfinished while the quota is checked.
      trainerCommand: [process.execPath, "-e", "setTimeout(() => {}, 600_000)"],
    });
    const tables = platform.resources.tables;
    admin = new TenantAdmin(
      new ApiKeysRepository(documents, tables["api-keys"]),
      undefined,
      new TenantSettingsRepository(documents, tables.tenants),
    );
    ({ apiKey: key, tenantId } = await admin.createTenant("quota tenant"));
  });

  afterAll(async () => {
    await platform?.stop();
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  const api = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const response = await fetch(`${platform.baseUrl}${path}`, {
      ...rest,
      ...(json !== undefined ? { method: "POST", body: JSON.stringify(json) } : {}),
      headers: {
        authorization: `Bearer ${key}`,
        ...(json !== undefined ? { "content-type": "application/json" } : {}),
      },
    });
    return { status: response.status, body: (await response.json()) as Json };
  };

  const upload = () => {
    const form = new FormData();
    form.set("purpose", "fine-tune");
    form.set("file", new Blob([DATASET], { type: "application/jsonl" }), "train.jsonl");
    return api("/files", { method: "POST", body: form });
  };

  const presign = (bytes: number) =>
    api("/files/uploads", { json: { filename: "big.jsonl", purpose: "fine-tune", bytes } });

  async function processed(fileId: string): Promise<void> {
    for (let i = 0; i < 120; i++) {
      const file = await api(`/files/${fileId}`);
      if (file.body.status === "processed") return;
      if (file.body.status === "error") throw new Error(JSON.stringify(file.body));
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error("file not processed in time");
  }

  const job = (code: string) =>
    api("/fine_tuning/jobs", {
      json: {
        model: "tiny-chat",
        training_file: fileId,
        method: { type: "lora", hyperparameters: { n_epochs: 1 } },
        model_code: code,
      },
    });

  let fileId: string;

  it("answers 429 quota_exceeded for a file over the files quota, then admits it once set-quota lifts it", async () => {
    const first = await upload();
    expect(first.status).toBe(200);
    fileId = first.body.id;
    const refused = await upload();
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ type: "rate_limit_error", code: "quota_exceeded" });
    expect(refused.body.error.message).toMatch(/the limit is 1 \(files per tenant/);
    expect((await presign(1)).status).toBe(429);

    await admin.setQuota(tenantId, { files: "10" });
    expect((await presign(1)).status).toBe(200);
  });

  it("answers 429 quota_exceeded for an upload past the stored bytes quota, then admits it once lifted", async () => {
    // Stored: the dataset and the 1-byte upload above; 100 bytes remain below the default.
    const refused = await presign(100);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: "quota_exceeded" });
    expect(refused.body.error.message).toContain(`the limit is ${DATASET.length + 100} bytes`);
    expect((await presign(99)).status).toBe(200);

    await admin.setQuota(tenantId, { storedBytes: String(10 * 1024 ** 2) });
    expect((await presign(100)).status).toBe(200);
  });

  it("answers 429 quota_exceeded for a job over the concurrent jobs quota, except a dry run; set-quota lifts it", async () => {
    await processed(fileId);
    const refused = await job("quota-first");
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: "quota_exceeded" });
    expect(refused.body.error.message).toMatch(/the limit is 0 \(concurrent jobs per tenant/);
    const dry = await api("/fine_tuning/jobs", {
      json: { model: "tiny-chat", training_file: fileId, model_code: "quota-dry", dry_run: true },
    });
    expect(dry.status).toBe(200);

    await admin.setQuota(tenantId, { concurrentJobs: "1" });
    const created = await job("quota-first");
    expect(created.status).toBe(200);
    // The first job is unfinished (its trainer never ends): the quota of 1 is full.
    const second = await job("quota-second");
    expect(second.status).toBe(429);
    expect(second.body.error.message).toMatch(/the limit is 1 \(concurrent jobs per tenant/);
    expect((await api(`/fine_tuning/jobs/${created.body.id}/cancel`, { method: "POST" })).status).toBe(200);
  });
});
