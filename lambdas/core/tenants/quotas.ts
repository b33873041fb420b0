import { RateLimitError } from "../errors.ts";

/**
 * A tenant's quotas: what it may hold at once. The operator sets defaults (CONFIG_ENV:
 * TENANT_MAX_CONCURRENT_JOBS, TENANT_MAX_STORED_BYTES, TENANT_MAX_FILES) and may override any of them
 * per tenant (`ftctl admin tenants set-quota`, stored in the tenants table). 0 allows nothing.
 */
export interface TenantQuotas {
  /** Unfinished (not succeeded, failed or cancelled) fine-tuning jobs. */
  readonly concurrentJobs: number;
  /** The sum of the sizes of the tenant's files, in bytes. */
  readonly storedBytes: number;
  /** The number of the tenant's files (uploads and jobs' results files alike). */
  readonly files: number;
}

export type QuotaName = keyof TenantQuotas;

export const DEFAULT_TENANT_QUOTAS: TenantQuotas = {
  concurrentJobs: 5,
  storedBytes: 10 * 1024 ** 3,
  files: 1000,
};

/** The environment variable each default is read from (kept equal to CONFIG_ENV's entries). */
export const QUOTA_ENV: Record<QuotaName, string> = {
  concurrentJobs: "TENANT_MAX_CONCURRENT_JOBS",
  storedBytes: "TENANT_MAX_STORED_BYTES",
  files: "TENANT_MAX_FILES",
};

/** Per-tenant overrides: only the quotas the operator set for that tenant. */
export type QuotaOverrides = Partial<TenantQuotas>;

/** The largest value a quota may take: within a DynamoDB number and a JS safe integer. */
const MAX_QUOTA = Number.MAX_SAFE_INTEGER;

/** Whether `value` is a quota: an integer from 0. */
export const isQuotaValue = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_QUOTA;

/**
 * The operator's defaults from their environment values, parsed once at cold start: a malformed value
 * stops the function loudly rather than letting every tenant through.
 */
export function defaultQuotas(values: Partial<Record<QuotaName, string | undefined>>): TenantQuotas {
  const parse = (name: QuotaName): number => {
    const raw = values[name];
    if (raw === undefined || raw.trim() === "") return DEFAULT_TENANT_QUOTAS[name];
    const parsed = Number(raw);
    if (!isQuotaValue(parsed))
      throw new Error(`${QUOTA_ENV[name]} must be an integer from 0; it is '${raw}'.`);
    return parsed;
  };
  return {
    concurrentJobs: parse("concurrentJobs"),
    storedBytes: parse("storedBytes"),
    files: parse("files"),
  };
}

/** The defaults with a tenant's overrides applied; an override that is not a quota value is ignored. */
export function effectiveQuotas(defaults: TenantQuotas, overrides: QuotaOverrides | undefined): TenantQuotas {
  const pick = (name: QuotaName): number => {
    const value = overrides?.[name];
    return isQuotaValue(value) ? value : defaults[name];
  };
  return { concurrentJobs: pick("concurrentJobs"), storedBytes: pick("storedBytes"), files: pick("files") };
}

/** What a tenant holds now, counted at request time. */
export interface FileHoldings {
  readonly files: number;
  readonly storedBytes: number;
}

/** The ports the quota checks read: the tenant's quotas and its current holdings. */
export interface QuotaPorts {
  /** The tenant's effective quotas (defaults with its overrides). */
  readonly quotasOf: (tenantId: string) => Promise<TenantQuotas>;
}

export interface FileQuotaPorts extends QuotaPorts {
  readonly fileHoldings: (tenantId: string) => Promise<FileHoldings>;
}

export interface JobQuotaPorts extends QuotaPorts {
  readonly unfinishedJobs: (tenantId: string) => Promise<number>;
}

const quotaExceeded = (message: string): RateLimitError => new RateLimitError(message, "quota_exceeded");

/**
 * Refuses a new file of `bytes` when the tenant would hold more files or bytes than its quotas allow.
 * Pure: `holdings` are what the tenant has now.
 *
 * @throws RateLimitError (429, `quota_exceeded`) naming the limit and its value
 */
export function checkFileQuota(quotas: TenantQuotas, holdings: FileHoldings, bytes: number): void {
  if (holdings.files + 1 > quotas.files) {
    throw quotaExceeded(
      `Your organization has ${holdings.files} files; the limit is ${quotas.files} (files per tenant, set by the operator). Delete files with DELETE /v4/files/{file_id}, then retry.`,
    );
  }
  if (holdings.storedBytes + bytes > quotas.storedBytes) {
    throw quotaExceeded(
      `Your organization stores ${holdings.storedBytes} bytes in files and this file has ${bytes}; the limit is ${quotas.storedBytes} bytes (stored bytes per tenant, set by the operator). Delete files with DELETE /v4/files/{file_id}, then retry.`,
    );
  }
}

/**
 * Refuses a new job when the tenant already has as many unfinished jobs as its quota allows.
 *
 * @throws RateLimitError (429, `quota_exceeded`) naming the limit and its value
 */
export function checkJobQuota(quotas: TenantQuotas, unfinishedJobs: number): void {
  if (unfinishedJobs + 1 > quotas.concurrentJobs) {
    throw quotaExceeded(
      `Your organization has ${unfinishedJobs} unfinished fine-tuning jobs; the limit is ${quotas.concurrentJobs} (concurrent jobs per tenant, set by the operator). Wait for one to finish or cancel one, then retry.`,
    );
  }
}

/**
 * Counts at request time, then checks. Two concurrent requests may both pass and exceed a quota by one
 * each: a simple count keeps the write paths untouched, and a quota is a guard against runaway use, not
 * a billing boundary.
 */
export async function enforceFileQuota(
  ports: FileQuotaPorts,
  tenantId: string,
  bytes: number,
): Promise<void> {
  const [quotas, holdings] = await Promise.all([ports.quotasOf(tenantId), ports.fileHoldings(tenantId)]);
  checkFileQuota(quotas, holdings, bytes);
}

/** As {@link enforceFileQuota}, for a new job (the same race by one applies). */
export async function enforceJobQuota(ports: JobQuotaPorts, tenantId: string): Promise<void> {
  const [quotas, unfinished] = await Promise.all([ports.quotasOf(tenantId), ports.unfinishedJobs(tenantId)]);
  checkJobQuota(quotas, unfinished);
}
