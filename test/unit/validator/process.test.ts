import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ObjectNotFoundError } from "../../../lambdas/aws/object-store.ts";
import type { ValidationSample } from "../../../lambdas/aws/observability.ts";
import { validateDataset } from "../../../lambdas/core/datasets/validate.ts";
import type { FileRecord, FileStatus } from "../../../lambdas/core/files/file-record.ts";
import { processS3Notification } from "../../../lambdas/validator/process.ts";

const tenant = "tn_00112233445566aa";
const fileId = "file-001k88qqh7rubquojmgrk";
const key = `tenants/${tenant}/files/${fileId}.jsonl`;

function setup(initial: Partial<FileRecord> = {}, objects: Record<string, Buffer> = {}) {
  let record: FileRecord | undefined = {
    tenantId: tenant,
    fileId,
    filename: "a.jsonl",
    purpose: "fine-tune",
    bytes: objects[key]?.length ?? 0,
    contentType: "application/jsonl",
    objectKey: key,
    createdAt: 1,
    status: "uploaded",
    ...initial,
  };
  let reads = 0;
  let writes = 0;
  const deps = {
    files: {
      async get(t: string, f: string) {
        return record && record.tenantId === t && record.fileId === f ? record : undefined;
      },
      async transition(
        _t: string,
        _f: string,
        from: readonly FileStatus[],
        status: FileStatus,
        fields: Partial<FileRecord> = {},
      ) {
        if (!record || !from.includes(record.status)) return false;
        writes++;
        record = { ...record, ...fields, status };
        return true;
      },
    },
    datasets: {
      async stream(k: string) {
        reads++;
        const bytes = objects[k];
        if (!bytes) throw new ObjectNotFoundError(k);
        return {
          body: new Blob([bytes]).stream() as ReadableStream<Uint8Array>,
          bytes: bytes.length,
          eTag: '"etag-1"',
        };
      },
    },
    validate: (source: ReadableStream<Uint8Array>) => validateDataset(source),
    log: () => {},
  };
  return {
    deps,
    record: () => record,
    counts: () => ({ reads, writes }),
    remove: () => {
      record = undefined;
    },
  };
}

const event = (k: string) =>
  JSON.stringify({
    Records: [
      {
        eventName: "ObjectCreated:Put",
        s3: { object: { key: encodeURIComponent(k).replace(/%2F/g, "/"), eTag: "etag-1" } },
      },
    ],
  });
const valid = readFileSync("test/fixtures/datasets/valid-messages.jsonl");
const invalid = readFileSync("test/fixtures/datasets/wrong-order.jsonl");

describe("validator", () => {
  it("marks a valid upload processed with statistics", async () => {
    const s = setup({}, { [key]: valid });
    await expect(processS3Notification(event(key), s.deps)).resolves.toEqual(["processed"]);
    expect(s.record()).toMatchObject({ status: "processed", format: "messages", validatedETag: '"etag-1"' });
    expect((s.record()!.statistics as { examples: number }).examples).toBeGreaterThanOrEqual(10);
  });

  it("marks a bad upload error with line numbers", async () => {
    const s = setup({}, { [key]: invalid });
    await expect(processS3Notification(event(key), s.deps)).resolves.toEqual(["error"]);
    expect(s.record()?.status).toBe("error");
    expect(s.record()?.errors?.[0]).toMatchObject({ line: expect.any(Number), code: expect.any(String) });
  });

  it("changes nothing when the same event arrives twice", async () => {
    const s = setup({}, { [key]: valid });
    await processS3Notification(event(key), s.deps);
    const first = s.record();
    await expect(processS3Notification(event(key), s.deps)).resolves.toEqual(["skipped"]);
    expect(s.record()).toBe(first);
    expect(s.counts()).toEqual({ reads: 1, writes: 1 });
  });

  it("ignores an object outside the tenant file layout and never reads it", async () => {
    const s = setup({}, { "tenants/other/x.jsonl": valid });
    await expect(processS3Notification(event("tenants/other/x.jsonl"), s.deps)).resolves.toEqual(["skipped"]);
    await expect(
      processS3Notification(event(`tenants/tn_ffffffffffffffff/files/${fileId}.jsonl`), s.deps),
    ).resolves.toEqual(["skipped"]);
    expect(s.counts().reads).toBe(0);
  });

  it("ignores an object whose file record does not exist", async () => {
    const s = setup({}, { [key]: valid });
    s.remove();
    await expect(processS3Notification(event(key), s.deps)).resolves.toEqual(["skipped"]);
    expect(s.counts().reads).toBe(0);
  });

  it("marks a file error when its object was deleted before validation", async () => {
    const s = setup({}, {});
    await expect(processS3Notification(event(key), s.deps)).resolves.toEqual(["error"]);
    expect(s.record()).toMatchObject({ status: "error", errors: [{ code: "object_missing" }] });
  });

  it("marks a presigned upload error when its size differs from the declared one", async () => {
    const s = setup({ status: "pending_upload", bytes: valid.length + 5 }, { [key]: valid });
    await expect(processS3Notification(event(key), s.deps)).resolves.toEqual(["error"]);
    expect(s.record()).toMatchObject({ status: "error", errors: [{ code: "size_mismatch" }] });
  });

  it("marks a zero-byte upload error", async () => {
    const s = setup({}, { [key]: Buffer.alloc(0) });
    await expect(processS3Notification(event(key), s.deps)).resolves.toEqual(["error"]);
    expect(s.record()?.errorCounts).toMatchObject({ empty_file: 1 });
  });

  it("does nothing for S3's test event", async () => {
    const s = setup({}, { [key]: valid });
    await expect(processS3Notification(JSON.stringify({ Event: "s3:TestEvent" }), s.deps)).resolves.toEqual(
      [],
    );
  });
});

describe("validation metrics", () => {
  function recording(s: ReturnType<typeof setup>) {
    const samples: ValidationSample[] = [];
    return {
      deps: { ...s.deps, recordValidation: (sample: ValidationSample) => samples.push(sample) },
      samples,
    };
  }

  it("reports a processed file with its lines and bytes", async () => {
    const { deps, samples } = recording(setup({}, { [key]: valid }));
    await processS3Notification(event(key), deps);
    const lines = valid.toString("utf8").trimEnd().split("\n").length;
    expect(samples).toEqual([{ outcome: "processed", lines, bytes: valid.length }]);
  });

  it("reports an invalid file, and one whose object is gone without lines or bytes", async () => {
    const bad = recording(setup({}, { [key]: invalid }));
    await processS3Notification(event(key), bad.deps);
    expect(bad.samples).toEqual([{ outcome: "error", lines: expect.any(Number), bytes: invalid.length }]);

    const gone = recording(setup({}, {}));
    await processS3Notification(event(key), gone.deps);
    expect(gone.samples).toEqual([{ outcome: "error", bytes: undefined }]);
  });

  it("reports nothing for a redelivered event or an object that is no file", async () => {
    const { deps, samples } = recording(setup({ status: "processed" }, { [key]: valid }));
    await processS3Notification(event(key), deps);
    await processS3Notification(event("tenants/other/x.jsonl"), deps);
    expect(samples).toEqual([]);
  });
});
