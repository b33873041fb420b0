import { describe, expect, it } from "vitest";
import { RateLimitError } from "../../../lambdas/core/errors.ts";
import {
  checkFileQuota,
  checkJobQuota,
  DEFAULT_TENANT_QUOTAS,
  defaultQuotas,
  effectiveQuotas,
  enforceFileQuota,
  enforceJobQuota,
} from "../../../lambdas/core/tenants/quotas.ts";

const QUOTAS = { concurrentJobs: 2, storedBytes: 1000, files: 3 };

describe("defaultQuotas", () => {
  it("takes the built-in defaults when nothing is set: 5 jobs, 10 GiB, 1000 files", () => {
    expect(defaultQuotas({})).toEqual({ concurrentJobs: 5, storedBytes: 10 * 1024 ** 3, files: 1000 });
    expect(defaultQuotas({ files: " " })).toEqual(DEFAULT_TENANT_QUOTAS);
  });

  it("reads the operator's values, 0 included", () => {
    expect(defaultQuotas({ concurrentJobs: "0", storedBytes: "2048", files: "7" })).toEqual({
      concurrentJobs: 0,
      storedBytes: 2048,
      files: 7,
    });
  });

  it("stops the cold start on a malformed value, naming the variable", () => {
    expect(() => defaultQuotas({ storedBytes: "10GiB" })).toThrow(/TENANT_MAX_STORED_BYTES/);
    expect(() => defaultQuotas({ concurrentJobs: "-1" })).toThrow(/TENANT_MAX_CONCURRENT_JOBS/);
    expect(() => defaultQuotas({ files: "1.5" })).toThrow(/TENANT_MAX_FILES/);
  });
});

describe("effectiveQuotas", () => {
  it("lets a tenant's override replace each default it sets, and only those", () => {
    expect(effectiveQuotas(QUOTAS, { files: 10 })).toEqual({ ...QUOTAS, files: 10 });
    expect(effectiveQuotas(QUOTAS, undefined)).toEqual(QUOTAS);
  });

  it("ignores an override that is not a quota value", () => {
    expect(effectiveQuotas(QUOTAS, { files: -1, storedBytes: 1.5 })).toEqual(QUOTAS);
  });
});

describe("checkFileQuota", () => {
  it("admits a file up to the limits exactly", () => {
    expect(() => checkFileQuota(QUOTAS, { files: 2, storedBytes: 600 }, 400)).not.toThrow();
  });

  it("answers 429 quota_exceeded naming the files limit and its value", () => {
    const error = catchError(() => checkFileQuota(QUOTAS, { files: 3, storedBytes: 0 }, 1));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ status: 429, code: "quota_exceeded" });
    expect(error.message).toMatch(/limit is 3 \(files per tenant/);
  });

  it("answers 429 quota_exceeded naming the stored bytes limit and its value", () => {
    const error = catchError(() => checkFileQuota(QUOTAS, { files: 1, storedBytes: 600 }, 401));
    expect(error).toMatchObject({ status: 429, code: "quota_exceeded" });
    expect(error.message).toMatch(/limit is 1000 bytes \(stored bytes per tenant/);
  });
});

describe("checkJobQuota", () => {
  it("admits jobs below the limit and refuses the one that would exceed it", () => {
    expect(() => checkJobQuota(QUOTAS, 1)).not.toThrow();
    const error = catchError(() => checkJobQuota(QUOTAS, 2));
    expect(error).toMatchObject({ status: 429, code: "quota_exceeded" });
    expect(error.message).toMatch(/limit is 2 \(concurrent jobs per tenant/);
  });

  it("refuses every job when the quota is 0", () => {
    expect(() => checkJobQuota({ ...QUOTAS, concurrentJobs: 0 }, 0)).toThrow(RateLimitError);
  });
});

describe("enforce*Quota", () => {
  it("reads the tenant's own quotas and holdings", async () => {
    const seen: string[] = [];
    const ports = {
      quotasOf: async (t: string) => {
        seen.push(`quotas ${t}`);
        return QUOTAS;
      },
      fileHoldings: async (t: string) => {
        seen.push(`files ${t}`);
        return { files: 3, storedBytes: 0 };
      },
      unfinishedJobs: async (t: string) => {
        seen.push(`jobs ${t}`);
        return 0;
      },
    };
    await expect(enforceFileQuota(ports, "tn_a", 1)).rejects.toMatchObject({ code: "quota_exceeded" });
    await expect(enforceJobQuota(ports, "tn_b")).resolves.toBeUndefined();
    expect(seen.sort()).toEqual(["files tn_a", "jobs tn_b", "quotas tn_a", "quotas tn_b"]);
  });
});

function catchError(fn: () => void): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected an error");
}
