import { describe, expect, it } from "vitest";
import type { TenantSettings } from "../../../lambdas/aws/tenant-settings-repository.ts";
import type { ApiKeyRecord } from "../../../lambdas/core/tenants/api-keys.ts";
import type { QuotaOverrides } from "../../../lambdas/core/tenants/quotas.ts";
import { describeQuotas, TenantAdmin, UsageError } from "../../../local/cli/admin.ts";

/** Prepare: one tenant with one key, and the tenants table in memory. */
function setup() {
  const keys: ApiKeyRecord[] = [
    { keyHash: "h1", keyId: "key_1", tenantId: "tn_a", tenantName: "Acme", createdAt: 1, hint: "ft-…" },
  ];
  const settings = new Map<string, TenantSettings>();
  const keysRepo = {
    listByTenant: async (t: string) => keys.filter((k) => k.tenantId === t),
    listAll: async () => keys,
  };
  const settingsRepo = {
    get: async (t: string) => settings.get(t),
    listAll: async () => [...settings.values()],
    setQuotas: async (tenantId: string, quotas: QuotaOverrides, now: number) => {
      const item = { tenantId, quotas: { ...settings.get(tenantId)?.quotas, ...quotas }, updatedAt: now };
      settings.set(tenantId, item);
      return item;
    },
  };
  const admin = new TenantAdmin(keysRepo as never, () => 100, settingsRepo);
  return { admin, settings };
}

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
