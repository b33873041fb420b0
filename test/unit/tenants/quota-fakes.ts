import {
  effectiveQuotas,
  type QuotaOverrides,
  type TenantQuotas,
} from "../../../lambdas/core/tenants/quotas.ts";

/**
 * The operator's quota settings in memory: defaults (generous unless a test sets them, so that tests
 * about other things never meet a quota) and per-tenant overrides, as the tenants table holds them.
 */
export class InMemoryQuotaSettings {
  defaults: TenantQuotas = { concurrentJobs: 1000, storedBytes: 1024 ** 4, files: 100_000 };
  readonly overrides = new Map<string, QuotaOverrides>();

  readonly quotasOf = async (tenantId: string): Promise<TenantQuotas> =>
    effectiveQuotas(this.defaults, this.overrides.get(tenantId));
}
