import { describe, expect, it } from "vitest";
import {
  datasetObjectKey,
  FILE_ID_PREFIX,
  type FileRecord,
  isTrainingFile,
  parseDatasetObjectKey,
  resultsFileId,
  resultsFileRecord,
} from "../../../lambdas/core/files/file-record.ts";
import { servedContentType, toFileObject } from "../../../lambdas/core/files/wire.ts";
import { isId } from "../../../lambdas/core/ids.ts";
import { newJobId } from "../../../lambdas/core/jobs/ids.ts";

const TENANT = "tn_0123456789abcdef";
const JOB = "ftjob-001k892a2fse5r8e5481r";

describe("a job's results file", () => {
  it("has an id derived from the job's: the same every time, and a valid file id", () => {
    expect(resultsFileId(JOB)).toBe("file-001k892a2fse5r8e5481r");
    for (let i = 0; i < 20; i++) {
      const jobId = newJobId();
      expect(resultsFileId(jobId)).toBe(resultsFileId(jobId));
      expect(isId(FILE_ID_PREFIX, resultsFileId(jobId))).toBe(true);
    }
  });

  it.each(["ftjob-1", "file-001k892a2fse5r8e5481r", "ftjob-001k892a2fse5r8e5481r/../x", ""])(
    "refuses to derive one from %j, which is no job id",
    (jobId) => {
      expect(() => resultsFileId(jobId)).toThrow(/not a job id/);
    },
  );

  it("is a processed fine-tune-results CSV at tenants/{tenant}/files/{fileId}.csv", () => {
    expect(resultsFileRecord({ tenantId: TENANT, jobId: JOB, bytes: 321, createdAt: 1_700_000_000 })).toEqual(
      {
        tenantId: TENANT,
        fileId: "file-001k892a2fse5r8e5481r",
        filename: `${JOB}-results.csv`,
        purpose: "fine-tune-results",
        bytes: 321,
        contentType: "text/csv",
        objectKey: `tenants/${TENANT}/files/file-001k892a2fse5r8e5481r.csv`,
        createdAt: 1_700_000_000,
        status: "processed",
      },
    );
  });

  it("lies outside the dataset layout, so the validator never takes it for a dataset", () => {
    const record = resultsFileRecord({ tenantId: TENANT, jobId: JOB, bytes: 1, createdAt: 0 });
    expect(parseDatasetObjectKey(record.objectKey)).toBeUndefined();
    expect(parseDatasetObjectKey(datasetObjectKey(TENANT, record.fileId))).toEqual({
      tenantId: TENANT,
      fileId: record.fileId,
    });
  });

  it("is no training file; an upload is", () => {
    const results = resultsFileRecord({ tenantId: TENANT, jobId: JOB, bytes: 1, createdAt: 0 });
    expect(isTrainingFile(results)).toBe(false);
    expect(isTrainingFile({ purpose: "fine-tune" })).toBe(true);
  });

  it("is served as text/csv, a dataset as application/jsonl", () => {
    expect(servedContentType({ purpose: "fine-tune-results" })).toBe("text/csv");
    expect(servedContentType({ purpose: "fine-tune" })).toBe("application/jsonl");
  });

  it("shows no validation report, while a validated upload shows its own", () => {
    const results = resultsFileRecord({ tenantId: TENANT, jobId: JOB, bytes: 1, createdAt: 0 });
    expect(toFileObject(results)).toMatchObject({ purpose: "fine-tune-results", validation: null });
    const upload: FileRecord = { ...results, purpose: "fine-tune", contentType: "application/jsonl" };
    expect(toFileObject(upload).validation).toEqual({
      errors: [],
      error_counts: {},
      errors_truncated: false,
    });
  });
});
