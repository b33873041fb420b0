import { describe, expect, it } from "vitest";
import {
  type FilePurpose,
  type FileRecord,
  type FileStatus,
  resultsFileRecord,
  type UploadHeaders,
} from "../../../lambdas/core/files/file-record.ts";
import { type RequestContext, Router } from "../../../lambdas/core/http/router.ts";
import { filesRoutes } from "../../../lambdas/files-api/routes.ts";
import { InMemoryQuotaSettings } from "../tenants/quota-fakes.ts";

/** In-memory stand-ins for the adapters, keyed like the real table. */
function fakes() {
  const records = new Map<string, FileRecord>();
  const objects = new Map<string, Buffer>();
  const busy = new Set<string>();
  const quotaSettings = new InMemoryQuotaSettings();
  const key = (t: string, f: string) => `${t}/${f}`;
  return {
    records,
    objects,
    busy,
    deps: {
      files: {
        async create(r: FileRecord) {
          records.set(key(r.tenantId, r.fileId), r);
        },
        async get(t: string, f: string) {
          return records.get(key(t, f));
        },
        async list(t: string, limit: number, after?: string, purpose?: FilePurpose) {
          const all = [...records.values()]
            .filter((r) => r.tenantId === t && (!after || r.fileId < after))
            .filter((r) => !purpose || r.purpose === purpose)
            .sort((a, b) => b.fileId.localeCompare(a.fileId));
          return { items: all.slice(0, limit), hasMore: all.length > limit };
        },
        async transition(
          t: string,
          f: string,
          from: readonly FileStatus[],
          status: FileStatus,
          fields: Partial<FileRecord> = {},
        ) {
          const r = records.get(key(t, f));
          if (!r || !from.includes(r.status)) return false;
          records.set(key(t, f), { ...r, ...fields, status });
          return true;
        },
        async delete(t: string, f: string) {
          records.delete(key(t, f));
        },
      },
      datasets: {
        async put(k: string, body: Buffer | string) {
          objects.set(k, Buffer.from(body));
        },
        async presignPut(k: string, headers: UploadHeaders) {
          const signed = Object.keys(headers).join(";");
          return `https://signed.example/${k}?len=${headers["content-length"]}&type=${headers["content-type"]}&signed=${signed}`;
        },
        async presignGet(k: string) {
          return `https://signed.example/${k}`;
        },
        async getBytes(k: string) {
          return objects.get(k)!;
        },
        async delete(k: string) {
          objects.delete(k);
        },
      },
      claimForDeletion: async (_t: string, f: string) =>
        busy.has(f) ? { claimed: false as const, jobIds: ["ftjob-1"] } : { claimed: true as const },
      quotas: {
        quotasOf: quotaSettings.quotasOf,
        fileHoldings: async (t: string) => {
          const own = [...records.values()].filter((r) => r.tenantId === t);
          return { files: own.length, storedBytes: own.reduce((sum, r) => sum + r.bytes, 0) };
        },
      },
    },
    quotaSettings,
  };
}

function multipart(
  fields: Record<string, string>,
  file?: { name: string; filename: string; content: string },
) {
  const boundary = "----test-boundary";
  let body = "";
  for (const [name, value] of Object.entries(fields)) {
    body += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  }
  if (file) {
    body += `--${boundary}\r\nContent-Disposition: form-data; name="${file.name}"; filename="${file.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n${file.content}\r\n`;
  }
  body += `--${boundary}--\r\n`;
  return { body: Buffer.from(body), contentType: `multipart/form-data; boundary=${boundary}` };
}

function setup() {
  const f = fakes();
  const router = new Router(filesRoutes(f.deps));
  const call = async (
    tenantId: string,
    method: string,
    path: string,
    options: { body?: Buffer | object; contentType?: string; query?: Record<string, string> } = {},
  ) => {
    const { route, params } = router.match(method, path);
    const body = Buffer.isBuffer(options.body)
      ? options.body
      : Buffer.from(options.body ? JSON.stringify(options.body) : "");
    const request: RequestContext = {
      tenantId,
      requestId: "rid",
      method,
      path,
      params,
      query: options.query ?? {},
      headers: { "content-type": options.contentType ?? "application/json" },
      body,
    };
    return route.handler(request);
  };
  return { ...f, call };
}

const line = '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n';

describe("files API", () => {
  it("stores a multipart upload under the tenant's prefix and returns an uploaded file object", async () => {
    const { call, objects } = setup();
    const form = multipart(
      { purpose: "fine-tune" },
      { name: "file", filename: "train.jsonl", content: line },
    );
    const result = await call("tn_a", "POST", "/v4/files", {
      body: form.body,
      contentType: form.contentType,
    });
    expect(result).toMatchObject({
      status: 200,
      body: {
        object: "file",
        purpose: "fine-tune",
        status: "uploaded",
        filename: "train.jsonl",
        bytes: line.length,
      },
    });
    const id = (result as { body: { id: string } }).body.id;
    expect(id).toMatch(/^file-[0-9a-v]{21}$/);
    expect(objects.get(`tenants/tn_a/files/${id}.jsonl`)?.toString()).toBe(line);
  });

  it.each([
    ["no purpose", {}, { name: "file", filename: "a.jsonl", content: line }, "purpose"],
    [
      "a wrong purpose",
      { purpose: "assistants" },
      { name: "file", filename: "a.jsonl", content: line },
      "purpose",
    ],
    [
      "an unknown field",
      { purpose: "fine-tune", extra: "1" },
      { name: "file", filename: "a.jsonl", content: line },
      "extra",
    ],
    ["no file part", { purpose: "fine-tune" }, undefined, "file"],
    [
      "a file part with another name",
      { purpose: "fine-tune" },
      { name: "upload", filename: "a.jsonl", content: line },
      "upload",
    ],
  ])("rejects a multipart upload with %s naming the param", async (_, fields, file, param) => {
    const { call } = setup();
    const form = multipart(fields, file);
    await expect(
      call("tn_a", "POST", "/v4/files", { body: form.body, contentType: form.contentType }),
    ).rejects.toMatchObject({ status: 400, param });
  });

  it("rejects a JSON body on POST /v4/files with a clear 400", async () => {
    const { call } = setup();
    await expect(call("tn_a", "POST", "/v4/files", { body: { purpose: "fine-tune" } })).rejects.toMatchObject(
      { status: 400, code: "invalid_content_type" },
    );
  });

  it("rejects a multipart file over the inline limit with 413 pointing to uploads", async () => {
    const { call } = setup();
    const form = multipart(
      { purpose: "fine-tune" },
      { name: "file", filename: "big.jsonl", content: "x".repeat(4 * 1024 * 1024 + 1) },
    );
    await expect(
      call("tn_a", "POST", "/v4/files", { body: form.body, contentType: form.contentType }),
    ).rejects.toMatchObject({
      status: 413,
      message: expect.stringContaining("/v4/files/uploads"),
    });
  });

  it("presigns a one-time upload pinned to the tenant's key, the declared size and type", async () => {
    const { call, records } = setup();
    const result = (await call("tn_a", "POST", "/v4/files/uploads", {
      body: { filename: "big.jsonl", purpose: "fine-tune", bytes: 500_000_000 },
    })) as {
      status: number;
      body: { id: string; upload_url: string; status: string; upload_headers: Record<string, string> };
    };
    expect(result.body.status).toBe("pending_upload");
    expect(result.body.upload_url).toContain(`tenants/tn_a/files/${result.body.id}.jsonl`);
    expect(result.body.upload_url).toContain("len=500000000&type=application/jsonl");
    // The URL signs exactly the headers the client is told to send, If-None-Match included.
    expect(result.body.upload_url).toContain("signed=content-type;content-length;if-none-match");
    expect(result.body.upload_headers).toEqual({
      "content-type": "application/jsonl",
      "content-length": "500000000",
      "if-none-match": "*",
    });
    expect(records.size).toBe(1);
  });

  it.each([
    ["over 1 GiB", { filename: "a.jsonl", purpose: "fine-tune", bytes: 1024 ** 3 + 1 }, 413, "bytes"],
    ["a zero size", { filename: "a.jsonl", purpose: "fine-tune", bytes: 0 }, 400, "bytes"],
    ["a slash in the name", { filename: "../a.jsonl", purpose: "fine-tune", bytes: 10 }, 400, "filename"],
    ["an unknown field", { filename: "a.jsonl", purpose: "fine-tune", bytes: 10, key: "x" }, 400, "key"],
    [
      "an unsupported type",
      { filename: "a.jsonl", purpose: "fine-tune", bytes: 10, mime_type: "text/html" },
      400,
      "mime_type",
    ],
  ])("rejects an upload request with %s", async (_, body, status, param) => {
    const { call, records } = setup();
    await expect(call("tn_a", "POST", "/v4/files/uploads", { body })).rejects.toMatchObject({
      status,
      param,
    });
    expect(records.size).toBe(0);
  });

  it("returns 404 when tenant B reads, downloads, deletes or lists tenant A's file", async () => {
    const { call, objects } = setup();
    const form = multipart({ purpose: "fine-tune" }, { name: "file", filename: "a.jsonl", content: line });
    const created = (await call("tn_a", "POST", "/v4/files", {
      body: form.body,
      contentType: form.contentType,
    })) as { body: { id: string } };
    const id = created.body.id;
    for (const [method, path] of [
      ["GET", `/v4/files/${id}`],
      ["GET", `/v4/files/${id}/content`],
      ["DELETE", `/v4/files/${id}`],
    ] as const) {
      await expect(call("tn_b", method, path)).rejects.toMatchObject({ status: 404, code: "file_not_found" });
    }
    const list = (await call("tn_b", "GET", "/v4/files")) as { body: { data: unknown[] } };
    expect(list.body.data).toEqual([]);
    expect(objects.size).toBe(1);
  });

  it("pages the list newest first with after, limit and has_more", async () => {
    const { call } = setup();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const form = multipart(
        { purpose: "fine-tune" },
        { name: "file", filename: `${i}.jsonl`, content: line },
      );
      const r = (await call("tn_a", "POST", "/v4/files", {
        body: form.body,
        contentType: form.contentType,
      })) as { body: { id: string } };
      ids.push(r.body.id);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const first = (await call("tn_a", "GET", "/v4/files", { query: { limit: "2" } })) as {
      body: { data: { id: string }[]; has_more: boolean; last_id: string };
    };
    expect(first.body.data.map((d) => d.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.has_more).toBe(true);
    const second = (await call("tn_a", "GET", "/v4/files", {
      query: { limit: "2", after: first.body.last_id },
    })) as { body: { data: { id: string }[]; has_more: boolean } };
    expect(second.body.data.map((d) => d.id)).toEqual([ids[0]]);
    expect(second.body.has_more).toBe(false);
    await expect(call("tn_a", "GET", "/v4/files", { query: { limit: "0" } })).rejects.toMatchObject({
      status: 400,
      param: "limit",
    });
    await expect(call("tn_a", "GET", "/v4/files", { query: { after: "../x" } })).rejects.toMatchObject({
      status: 400,
      param: "after",
    });
  });

  it("lists by purpose as the zhipuai SDK asks: fine-tune files for fine-tune, none for another purpose", async () => {
    const { call } = setup();
    const form = multipart({ purpose: "fine-tune" }, { name: "file", filename: "a.jsonl", content: line });
    await call("tn_a", "POST", "/v4/files", { body: form.body, contentType: form.contentType });
    const list = async (query: Record<string, string>) =>
      ((await call("tn_a", "GET", "/v4/files", { query })) as { body: { data: unknown[] } }).body.data;
    expect(await list({ purpose: "fine-tune" })).toHaveLength(1);
    expect(await list({ purpose: "fine-tune", order: "desc" })).toHaveLength(1);
    expect(await list({ purpose: "batch" })).toEqual([]);
    expect(await list({ purpose: "retrieval" })).toEqual([]);
    await expect(call("tn_a", "GET", "/v4/files", { query: { purpose: "cats" } })).rejects.toMatchObject({
      status: 400,
      param: "purpose",
    });
    await expect(call("tn_a", "GET", "/v4/files", { query: { order: "asc" } })).rejects.toMatchObject({
      status: 400,
      param: "order",
    });
  });

  it("refuses with 409 to delete a file an unfinished job uses, and keeps it", async () => {
    const { call, busy, objects, records } = setup();
    const form = multipart({ purpose: "fine-tune" }, { name: "file", filename: "a.jsonl", content: line });
    const { body } = (await call("tn_a", "POST", "/v4/files", {
      body: form.body,
      contentType: form.contentType,
    })) as { body: { id: string } };
    busy.add(body.id);
    await expect(call("tn_a", "DELETE", `/v4/files/${body.id}`)).rejects.toMatchObject({
      status: 409,
      code: "file_in_use",
    });
    expect(objects.size).toBe(1);
    busy.delete(body.id);
    await expect(call("tn_a", "DELETE", `/v4/files/${body.id}`)).resolves.toEqual({
      status: 200,
      body: { id: body.id, object: "file", deleted: true },
    });
    expect(objects.size).toBe(0);
    expect(records.size).toBe(0);
  });

  it("returns small content inline and refuses content of a file not uploaded yet", async () => {
    const { call } = setup();
    const form = multipart({ purpose: "fine-tune" }, { name: "file", filename: "a.jsonl", content: line });
    const { body } = (await call("tn_a", "POST", "/v4/files", {
      body: form.body,
      contentType: form.contentType,
    })) as { body: { id: string } };
    const content = (await call("tn_a", "GET", `/v4/files/${body.id}/content`)) as { raw: { body: Buffer } };
    expect(content.raw.body.toString()).toBe(line);
    const pending = (await call("tn_a", "POST", "/v4/files/uploads", {
      body: { filename: "b.jsonl", purpose: "fine-tune", bytes: 10 },
    })) as { body: { id: string } };
    await expect(call("tn_a", "GET", `/v4/files/${pending.body.id}/content`)).rejects.toMatchObject({
      status: 409,
    });
  });
});

describe("files API: a job's results file", () => {
  const JOB = "ftjob-001k892a2fse5r8e5481r";
  const csv = "step,epoch,train_loss\n1,0.5,2.25\n2,1,1.5\n";

  /** A results file as job-status leaves it: the CSV object and its `processed` record. */
  function withResultsFile(tenantId = "tn_a") {
    const s = setup();
    const record = resultsFileRecord({ tenantId, jobId: JOB, bytes: csv.length, createdAt: 1_700_000_100 });
    s.records.set(`${tenantId}/${record.fileId}`, record);
    s.objects.set(record.objectKey, Buffer.from(csv));
    return { ...s, record };
  }

  it("shows it as a processed fine-tune-results file without a validation report", async () => {
    const { call, record } = withResultsFile();
    await expect(call("tn_a", "GET", `/v4/files/${record.fileId}`)).resolves.toEqual({
      status: 200,
      body: {
        id: "file-001k892a2fse5r8e5481r",
        object: "file",
        bytes: csv.length,
        created_at: 1_700_000_100,
        filename: `${JOB}-results.csv`,
        purpose: "fine-tune-results",
        status: "processed",
        status_details: null,
        format: null,
        statistics: null,
        validation: null,
      },
    });
  });

  it("returns its content inline as text/csv", async () => {
    const { call, record } = withResultsFile();
    const content = (await call("tn_a", "GET", `/v4/files/${record.fileId}/content`)) as {
      raw: { status: number; contentType: string; body: Buffer };
    };
    expect(content.raw).toEqual({ status: 200, contentType: "text/csv", body: Buffer.from(csv) });
  });

  it("lists it with the tenant's files, alone under fine-tune-results, and not under fine-tune", async () => {
    const { call, record } = withResultsFile();
    const form = multipart({ purpose: "fine-tune" }, { name: "file", filename: "a.jsonl", content: line });
    const upload = (await call("tn_a", "POST", "/v4/files", {
      body: form.body,
      contentType: form.contentType,
    })) as { body: { id: string } };
    const ids = async (query: Record<string, string>) =>
      (
        (await call("tn_a", "GET", "/v4/files", { query })) as { body: { data: { id: string }[] } }
      ).body.data.map((f) => f.id);
    expect((await ids({})).sort()).toEqual([record.fileId, upload.body.id].sort());
    expect(await ids({ purpose: "fine-tune-results" })).toEqual([record.fileId]);
    expect(await ids({ purpose: "fine-tune" })).toEqual([upload.body.id]);
  });

  it("deletes it, object and record", async () => {
    const { call, record, objects, records } = withResultsFile();
    await expect(call("tn_a", "DELETE", `/v4/files/${record.fileId}`)).resolves.toEqual({
      status: 200,
      body: { id: record.fileId, object: "file", deleted: true },
    });
    expect(objects.size).toBe(0);
    expect(records.size).toBe(0);
  });

  it("returns 404 when tenant B reads, downloads or deletes tenant A's results file", async () => {
    const { call, record, objects } = withResultsFile("tn_a");
    for (const [method, path] of [
      ["GET", `/v4/files/${record.fileId}`],
      ["GET", `/v4/files/${record.fileId}/content`],
      ["DELETE", `/v4/files/${record.fileId}`],
    ] as const) {
      await expect(call("tn_b", method, path)).rejects.toMatchObject({ status: 404, code: "file_not_found" });
    }
    expect(objects.size).toBe(1);
  });

  it("cannot be uploaded by a tenant, through either upload route", async () => {
    const { call, records } = setup();
    const form = multipart(
      { purpose: "fine-tune-results" },
      { name: "file", filename: "r.csv", content: csv },
    );
    await expect(
      call("tn_a", "POST", "/v4/files", { body: form.body, contentType: form.contentType }),
    ).rejects.toMatchObject({ status: 400, param: "purpose" });
    await expect(
      call("tn_a", "POST", "/v4/files/uploads", {
        body: { filename: "r.csv", purpose: "fine-tune-results", bytes: 10 },
      }),
    ).rejects.toMatchObject({ status: 400, param: "purpose" });
    expect(records.size).toBe(0);
  });
});

describe("tenant quotas on file create", () => {
  const upload = (bytes: number) => ({ body: { filename: "d.jsonl", purpose: "fine-tune", bytes } });

  it("answers 429 quota_exceeded for a file over the files quota, and stores nothing", async () => {
    const { call, records, objects, quotaSettings } = setup();
    quotaSettings.defaults = { ...quotaSettings.defaults, files: 1 };
    await call("tn_a", "POST", "/v4/files/uploads", upload(10));
    const form = multipart({ purpose: "fine-tune" }, { name: "file", filename: "t.jsonl", content: line });
    const refused = call("tn_a", "POST", "/v4/files", { body: form.body, contentType: form.contentType });
    await expect(refused).rejects.toMatchObject({ status: 429, code: "quota_exceeded" });
    await expect(refused).rejects.toThrow(/limit is 1 \(files per tenant/);
    expect(records.size).toBe(1);
    expect(objects.size).toBe(0);
  });

  it("answers 429 quota_exceeded for an upload whose declared bytes pass the stored bytes quota", async () => {
    const { call, records, quotaSettings } = setup();
    quotaSettings.defaults = { ...quotaSettings.defaults, storedBytes: 100 };
    await call("tn_a", "POST", "/v4/files/uploads", upload(60));
    await expect(call("tn_a", "POST", "/v4/files/uploads", upload(41))).rejects.toMatchObject({
      status: 429,
      code: "quota_exceeded",
      message: expect.stringMatching(/limit is 100 bytes/),
    });
    expect(records.size).toBe(1);
    // Exactly up to the limit is allowed.
    await expect(call("tn_a", "POST", "/v4/files/uploads", upload(40))).resolves.toMatchObject({
      status: 200,
    });
  });

  it("counts only the tenant's own files, and lets a per-tenant override lift the default", async () => {
    const { call, quotaSettings } = setup();
    quotaSettings.defaults = { ...quotaSettings.defaults, files: 1 };
    await call("tn_a", "POST", "/v4/files/uploads", upload(10));
    await expect(call("tn_b", "POST", "/v4/files/uploads", upload(10))).resolves.toMatchObject({
      status: 200,
    });
    quotaSettings.overrides.set("tn_a", { files: 2 });
    await expect(call("tn_a", "POST", "/v4/files/uploads", upload(10))).resolves.toMatchObject({
      status: 200,
    });
  });
});
