import type { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import type { TenantSettingsRepository } from "../../lambdas/aws/tenant-settings-repository.ts";
import type { UsagePlanKeys } from "../../lambdas/aws/usage-plan-keys.ts";
import { type ApiKeyRecord, generateApiKey, newTenantId } from "../../lambdas/core/tenants/api-keys.ts";
import { isQuotaValue, type QuotaName, type QuotaOverrides } from "../../lambdas/core/tenants/quotas.ts";

/** A tenant as `ftctl admin tenants list` shows it: its quota overrides too, when it has any. */
export interface TenantSummary {
  tenantId: string;
  tenantName: string;
  activeKeys: number;
  quotas?: QuotaOverrides;
}

/** How the operator names each quota (the set-quota flags, the list's labels). */
export const QUOTA_FLAGS: Record<QuotaName, string> = {
  concurrentJobs: "concurrent-jobs",
  storedBytes: "stored-bytes",
  files: "files",
};

/** Operator commands on tenants and their keys; each returns the lines to print. */
export class TenantAdmin {
  constructor(
    private readonly keys: ApiKeysRepository,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
    /** The tenants table (quota overrides, usage plan keys); the quota and usage key commands need it. */
    private readonly settings?: Pick<
      TenantSettingsRepository,
      "get" | "setQuotas" | "listAll" | "setUsageKey"
    >,
    /**
     * The tenants' usage plan in AWS (its id from the stack's outputs): each tenant gets an API Gateway
     * key in it. Absent (the local platform, no usage plans), no key is made.
     */
    private readonly usagePlan?: Pick<UsagePlanKeys, "issue">,
  ) {}

  /**
   * A new tenant and its first key. The key is returned once and never stored. In AWS the tenant also
   * gets its usage plan key (its request rate and daily quota).
   */
  async createTenant(name: string): Promise<{
    tenantId: string;
    keyId: string;
    apiKey: string;
    usageKeyId?: string;
    usageKeyError?: string;
  }> {
    if (!/^[\w .@-]{1,64}$/.test(name)) {
      throw new UsageError("tenant name: 1-64 letters, digits, spaces, '.', '@', '_' or '-'");
    }
    const tenantId = newTenantId();
    const created = await this.createKey(tenantId, name);
    if (!this.usagePlan) return { tenantId, ...created };
    // After the bearer key, which is shown only once: a failure here is reported, not thrown, and
    // `sync-usage-keys` completes the tenant later.
    try {
      return { tenantId, ...created, usageKeyId: await this.giveUsageKey(tenantId) };
    } catch (error) {
      return { tenantId, ...created, usageKeyError: (error as Error).message };
    }
  }

  /**
   * Gives every tenant without a usage plan key one (tenants made before usage plans, or whose key
   * failed at creation); returns those tenants' ids. Until then API Gateway refuses their requests.
   */
  async syncUsageKeys(): Promise<string[]> {
    if (!this.usagePlan) {
      throw new UsageError(
        "no usage plan configured: pass --stack <name> (its TenantUsagePlanId output) or set USAGE_PLAN_ID",
      );
    }
    const tenantIds = [...new Set((await this.keys.listAll()).map((k) => k.tenantId))].sort();
    const given: string[] = [];
    for (const tenantId of tenantIds) {
      if ((await this.settings?.get(tenantId))?.usageKeyValue) continue;
      await this.giveUsageKey(tenantId);
      given.push(tenantId);
    }
    return given;
  }

  /** A new API Gateway key in the plan, recorded on the tenant's item (the authorizer reads it there). */
  private async giveUsageKey(tenantId: string): Promise<string> {
    if (!this.settings || !this.usagePlan)
      throw new Error("TenantAdmin needs the tenants table and usage plan");
    const key = await this.usagePlan.issue(tenantId);
    await this.settings.setUsageKey(tenantId, key, this.now());
    return key.id;
  }

  async createKey(tenantId: string, tenantName?: string): Promise<{ keyId: string; apiKey: string }> {
    let name = tenantName;
    if (!name) {
      const existing = await this.keys.listByTenant(tenantId);
      if (existing.length === 0)
        throw new UsageError(`no tenant ${tenantId}; create it with 'ftctl admin tenants create <name>'`);
      name = existing[0]!.tenantName;
    }
    const key = generateApiKey();
    await this.keys.create({
      keyHash: key.keyHash,
      keyId: key.keyId,
      tenantId,
      tenantName: name,
      createdAt: this.now(),
      hint: `${key.key.slice(0, 8)}…`,
    });
    return { keyId: key.keyId, apiKey: key.key };
  }

  async listKeys(tenantId?: string): Promise<ApiKeyRecord[]> {
    const records = tenantId ? await this.keys.listByTenant(tenantId) : await this.keys.listAll();
    return records.sort((a, b) => a.tenantId.localeCompare(b.tenantId) || a.createdAt - b.createdAt);
  }

  async listTenants(): Promise<TenantSummary[]> {
    const tenants = new Map<string, TenantSummary>();
    for (const record of await this.keys.listAll()) {
      const tenant = tenants.get(record.tenantId) ?? {
        tenantId: record.tenantId,
        tenantName: record.tenantName,
        activeKeys: 0,
      };
      if (!record.revokedAt) tenant.activeKeys++;
      tenants.set(record.tenantId, tenant);
    }
    for (const settings of (await this.settings?.listAll()) ?? []) {
      const tenant = tenants.get(settings.tenantId);
      if (tenant && settings.quotas && Object.keys(settings.quotas).length > 0)
        tenant.quotas = settings.quotas;
    }
    return [...tenants.values()].sort((a, b) => a.tenantName.localeCompare(b.tenantName));
  }

  /**
   * Overrides some of a tenant's quotas (the others keep theirs, or the operator's defaults). Takes
   * effect on the tenant's next request: the APIs read the override per request.
   */
  async setQuota(
    tenantId: string,
    quotas: Partial<Record<QuotaName, string | undefined>>,
  ): Promise<QuotaOverrides> {
    if (!this.settings) throw new Error("TenantAdmin needs the tenants table for quotas");
    const given = Object.entries(quotas).filter(([, v]) => v !== undefined) as [QuotaName, string][];
    if (given.length === 0) {
      throw new UsageError(
        "usage: ftctl admin tenants set-quota <tenant id> [--concurrent-jobs N] [--stored-bytes N] [--files N]",
      );
    }
    const overrides: Record<string, number> = {};
    for (const [name, raw] of given) {
      const value = Number(raw);
      if (raw.trim() === "" || !isQuotaValue(value)) {
        throw new UsageError(`--${QUOTA_FLAGS[name]}: an integer from 0, not '${raw}'`);
      }
      overrides[name] = value;
    }
    if ((await this.keys.listByTenant(tenantId)).length === 0) {
      throw new UsageError(`no tenant ${tenantId}; create it with 'ftctl admin tenants create <name>'`);
    }
    return (await this.settings.setQuotas(tenantId, overrides, this.now())).quotas ?? {};
  }

  async revokeKey(keyId: string): Promise<ApiKeyRecord> {
    const record = await this.keys.revoke(keyId, this.now());
    if (!record) throw new UsageError(`no API key ${keyId}`);
    return record;
  }
}

/** A mistake in what the operator typed: printed as is, exit code 2. */
export class UsageError extends Error {}

/** `concurrent-jobs 10, files 2`: a tenant's quota overrides as the operator named them. */
export function describeQuotas(quotas: QuotaOverrides | undefined): string {
  const set = (Object.keys(QUOTA_FLAGS) as QuotaName[]).filter((name) => quotas?.[name] !== undefined);
  return set.length === 0
    ? "defaults"
    : set.map((name) => `${QUOTA_FLAGS[name]} ${quotas?.[name]}`).join(", ");
}
