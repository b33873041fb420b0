import {
  APIGatewayClient,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
} from "@aws-sdk/client-api-gateway";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import type { TenantSettings } from "../../../lambdas/aws/tenant-settings-repository.ts";
import { UsagePlanKeys } from "../../../lambdas/aws/usage-plan-keys.ts";
import type { ApiKeyRecord } from "../../../lambdas/core/tenants/api-keys.ts";
import type { QuotaOverrides } from "../../../lambdas/core/tenants/quotas.ts";
import { describeQuotas, TenantAdmin, UsageError } from "../../../local/cli/admin.ts";

/** Prepare: one tenant with one key, and the tenants table in memory (and a usage plan when given). */
function setup(usagePlan?: UsagePlanKeys) {
  const keys: ApiKeyRecord[] = [
    { keyHash: "h1", keyId: "key_1", tenantId: "tn_a", tenantName: "Acme", createdAt: 1, hint: "ft-…" },
  ];
  const settings = new Map<string, TenantSettings>();
  const keysRepo = {
    listByTenant: async (t: string) => keys.filter((k) => k.tenantId === t),
    listAll: async () => keys,
    create: async (record: ApiKeyRecord) => {
      keys.push(record);
    },
  };
  const settingsRepo = {
    get: async (t: string) => settings.get(t),
    listAll: async () => [...settings.values()],
    setQuotas: async (tenantId: string, quotas: QuotaOverrides, now: number) => {
      const item = { tenantId, quotas: { ...settings.get(tenantId)?.quotas, ...quotas }, updatedAt: now };
      settings.set(tenantId, item);
      return item;
    },
    setUsageKey: async (tenantId: string, key: { id: string; value: string }, now: number) => {
      settings.set(tenantId, {
        ...settings.get(tenantId),
        tenantId,
        usageKeyId: key.id,
        usageKeyValue: key.value,
        updatedAt: now,
      });
    },
  };
  const admin = new TenantAdmin(keysRepo as never, () => 100, settingsRepo, usagePlan);
  return { admin, settings };
}

describe("usage plan keys (ftctl admin in AWS)", () => {
  const apiGateway = mockClient(APIGatewayClient);
  beforeEach(() => {
    apiGateway.reset();
    apiGateway.on(CreateApiKeyCommand).resolves({ id: "ak_1" });
    apiGateway.on(CreateUsagePlanKeyCommand).resolves({ id: "ak_1" });
  });
  const plan = () => new UsagePlanKeys(new APIGatewayClient({}), "up_1");

  it("gives a new tenant an enabled random API key in the usage plan and stores its value", async () => {
    const { admin, settings } = setup(plan());
    const created = await admin.createTenant("Globex");

    const [createKey] = apiGateway.commandCalls(CreateApiKeyCommand);
    const input = createKey!.args[0].input;
    expect(input).toMatchObject({
      name: created.tenantId,
      enabled: true,
      tags: { tenantId: created.tenantId },
    });
    expect(input.value).toMatch(/^[0-9a-f]{64}$/);
    expect(input.value).not.toBe(created.apiKey);
    expect(apiGateway.commandCalls(CreateUsagePlanKeyCommand)[0]!.args[0].input).toEqual({
      usagePlanId: "up_1",
      keyId: "ak_1",
      keyType: "API_KEY",
    });
    expect(created.usageKeyId).toBe("ak_1");
    expect(settings.get(created.tenantId)).toMatchObject({ usageKeyId: "ak_1", usageKeyValue: input.value });
  });

  it("creates no API Gateway key without a usage plan (the local platform)", async () => {
    const { admin, settings } = setup();
    const created = await admin.createTenant("Globex");
    expect(apiGateway.calls()).toHaveLength(0);
    expect(created).not.toHaveProperty("usageKeyId");
    expect(settings.get(created.tenantId)).toBeUndefined();
  });

  it("still returns the new tenant's bearer key when the usage key fails, and removes the orphan key", async () => {
    apiGateway.on(CreateUsagePlanKeyCommand).rejects(new Error("plan not found"));
    const { admin } = setup(plan());
    const created = await admin.createTenant("Globex");
    expect(created.apiKey).toMatch(/^ftk_/);
    expect(created.usageKeyError).toMatch(/plan not found/);
    expect(apiGateway.commandCalls(DeleteApiKeyCommand)[0]!.args[0].input).toEqual({ apiKey: "ak_1" });
  });

  it("sync-usage-keys gives only the tenants without one a key", async () => {
    const { admin, settings } = setup(plan());
    expect(await admin.syncUsageKeys()).toEqual(["tn_a"]);
    expect(settings.get("tn_a")?.usageKeyId).toBe("ak_1");
    expect(await admin.syncUsageKeys()).toEqual([]);
    expect(apiGateway.commandCalls(CreateApiKeyCommand)).toHaveLength(1);
  });

  it("sync-usage-keys refuses to run without a usage plan", async () => {
    const { admin } = setup();
    await expect(admin.syncUsageKeys()).rejects.toBeInstanceOf(UsageError);
  });
});

describe("ftctl admin tenants set-quota", () => {
  it("stores the given overrides and keeps earlier ones", async () => {
    const { admin, settings } = setup();
    expect(await admin.setQuota("tn_a", { files: "2" })).toEqual({ files: 2 });
    expect(await admin.setQuota("tn_a", { concurrentJobs: "10", storedBytes: "0" })).toEqual({
      files: 2,
      concurrentJobs: 10,
      storedBytes: 0,
    });
    expect(settings.get("tn_a")?.updatedAt).toBe(100);
  });

  it("refuses a value that is not an integer from 0, naming the flag", async () => {
    const { admin } = setup();
    await expect(admin.setQuota("tn_a", { storedBytes: "10GiB" })).rejects.toThrow(/--stored-bytes/);
    await expect(admin.setQuota("tn_a", { files: "-1" })).rejects.toBeInstanceOf(UsageError);
  });

  it("refuses an unknown tenant and a call without any quota", async () => {
    const { admin } = setup();
    await expect(admin.setQuota("tn_nobody", { files: "1" })).rejects.toThrow(/no tenant tn_nobody/);
    await expect(admin.setQuota("tn_a", {})).rejects.toThrow(/usage: ftctl admin tenants set-quota/);
  });

  it("shows the overrides in the tenants list", async () => {
    const { admin } = setup();
    expect((await admin.listTenants())[0]).not.toHaveProperty("quotas");
    await admin.setQuota("tn_a", { concurrentJobs: "10", files: "2" });
    const [tenant] = await admin.listTenants();
    expect(describeQuotas(tenant?.quotas)).toBe("concurrent-jobs 10, files 2");
    expect(describeQuotas(undefined)).toBe("defaults");
  });
});
