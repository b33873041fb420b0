import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_MULTIPART_FILE_BYTES } from "../../../lambdas/core/files/file-record.ts";
import { parseMultipartFields } from "../../../lambdas/core/files/requests.ts";
import { parseMultipart } from "../../../lambdas/files-api/multipart.ts";
import { apiError, fakeApi, json, run } from "./fake-api.ts";

const dir = mkdtempSync(join(tmpdir(), "ftctl-files-"));
const content = '{"input":"a","target":"b"}\n'.repeat(40);
const path = join(dir, "train.jsonl");
writeFileSync(path, content);

const fileObject = (over: Record<string, unknown> = {}) => ({
  id: "file-1",
  object: "file",
  bytes: content.length,
  created_at: 1,
  filename: "train.jsonl",
  purpose: "fine-tune",
  status: "uploaded",
  status_details: null,
  format: null,
  statistics: null,
  validation: null,
  ...over,
});

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe("ftctl files upload", () => {
  it("sends a small file as multipart with purpose and file fields", async () => {
    const api = await fakeApi((_req, res) => json(res, 200, fileObject()));
    close = api.close;
    const result = await run(api.base, ["files", "upload", path]);
    expect(result.code).toBe(0);
    const [post] = api.seen;
    expect(post?.method).toBe("POST");
    expect(post?.path).toBe("/v4/files");
    expect(post?.headers.authorization).toBe("Bearer ftk_test");
    expect(post?.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
    const body = post!.body.toString("utf8");
    expect(body).toMatch(/name="purpose"\r\n\r\nfine-tune\r\n/);
    expect(body).toMatch(/name="file"; filename="train.jsonl"\r\nContent-Type: application\/jsonl\r\n\r\n/);
    expect(body).toContain(content);
    // And the platform's own multipart parser reads it.
    const parsed = await parseMultipart(post!.body, post!.headers["content-type"], MAX_MULTIPART_FILE_BYTES);
    expect(parseMultipartFields(parsed.fields, parsed.filename)).toEqual({
      purpose: "fine-tune",
      filename: "train.jsonl",
    });
    expect(parsed.data.toString()).toBe(content);
    expect(result.out).toContain("file-1");
  });

  it("sends a large file through /files/uploads and a PUT with the pinned headers, If-None-Match included", async () => {
    const api = await fakeApi((req, res, base) => {
      if (req.path === "/v4/files/uploads") {
        return json(res, 200, {
          ...fileObject({ status: "pending_upload" }),
          upload_url: `${base}/bucket/tenants/t/files/file-1.jsonl?X-Amz-Signature=abc`,
          upload_method: "PUT",
          upload_headers: {
            "content-type": "application/jsonl",
            "content-length": String(content.length),
            "if-none-match": "*",
          },
        });
      }
      if (req.method === "PUT") return void res.writeHead(200).end();
      apiError(res, 404, "not here", "not_found");
    });
    close = api.close;
    const result = await run(api.base, ["files", "upload", path], { multipartLimitBytes: 100 });
    expect(result.code).toBe(0);
    const [create, put] = api.seen;
    expect(JSON.parse(create!.body.toString())).toEqual({
      filename: "train.jsonl",
      purpose: "fine-tune",
      bytes: content.length,
      mime_type: "application/jsonl",
    });
    expect(create?.headers["idempotency-key"]).toBeUndefined();
    expect(put?.path).toBe("/bucket/tenants/t/files/file-1.jsonl");
    expect(put?.query.get("X-Amz-Signature")).toBe("abc");
    expect(put?.headers["content-type"]).toBe("application/jsonl");
    expect(put?.headers["content-length"]).toBe(String(content.length));
    expect(put?.headers["if-none-match"]).toBe("*");
    expect(put?.headers["transfer-encoding"]).toBeUndefined();
    expect(put?.headers.authorization).toBeUndefined();
    expect(put?.body.toString()).toBe(content);
    expect(result.progress).toContain("100%");
    expect(result.progress).toMatch(/MB\/s/);
  });

  it("reports a refused PUT with the storage's error code", async () => {
    const api = await fakeApi((req, res, base) => {
      if (req.path === "/v4/files/uploads") {
        return json(res, 200, { ...fileObject(), upload_url: `${base}/bucket/x`, upload_headers: {} });
      }
      res
        .writeHead(403, { "content-type": "application/xml" })
        .end(
          "<Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not match.</Message></Error>",
        );
    });
    close = api.close;
    const result = await run(api.base, ["files", "upload", path], { multipartLimitBytes: 1 });
    expect(result.code).toBe(1);
    expect(result.err).toContain(
      "error: the upload to storage was refused: The signature does not match. (SignatureDoesNotMatch, HTTP 403)",
    );
  });

  it("says an upload URL was used already when storage answers 412", async () => {
    const api = await fakeApi((req, res, base) => {
      if (req.path === "/v4/files/uploads") {
        return json(res, 200, { ...fileObject(), upload_url: `${base}/bucket/x`, upload_headers: {} });
      }
      res
        .writeHead(412, { "content-type": "application/xml" })
        .end(
          "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>",
        );
    });
    close = api.close;
    const result = await run(api.base, ["files", "upload", path], { multipartLimitBytes: 1 });
    expect(result.code).toBe(1);
    expect(result.err).toContain("the upload URL was used already");
    expect(result.err).toContain("(PreconditionFailed, HTTP 412)");
  });

  it("--wait polls until error, prints the line-level report and exits 1", async () => {
    let polls = 0;
    const api = await fakeApi((req, res) => {
      if (req.method === "POST") return json(res, 200, fileObject());
      polls++;
      if (polls < 3) return json(res, 200, fileObject());
      json(
        res,
        200,
        fileObject({
          status: "error",
          status_details: "The file has 2 errors.",
          validation: {
            errors: [
              { line: 4, path: "", code: "invalid_json", message: "The line is not valid JSON." },
              { line: 7, path: "messages[0].role", code: "unknown_role", message: "role is narrator." },
            ],
            error_counts: { invalid_json: 1, unknown_role: 1 },
            errors_truncated: false,
          },
        }),
      );
    });
    close = api.close;
    const result = await run(api.base, ["files", "upload", path, "--wait"]);
    expect(result.code).toBe(1);
    expect(polls).toBe(3);
    expect(result.out).toContain("line 4: invalid_json: The line is not valid JSON.");
    expect(result.out).toContain("line 7 messages[0].role: unknown_role: role is narrator.");
    expect(result.err).toContain("file-1: error");
  });

  it("--wait prints the statistics of a processed file and exits 0", async () => {
    const api = await fakeApi((req, res) =>
      json(
        res,
        200,
        fileObject({
          status: req.method === "POST" ? "uploaded" : "processed",
          format: "legacy",
          statistics: {
            examples: 40,
            legacyExamples: 40,
            turns: { min: 2, max: 2 },
            tokens: { total: 123, method: "estimate:utf8-bytes/4-cjk-aware" },
            duplicates: { count: 39 },
            overLength: {},
          },
          validation: { errors: [], error_counts: {}, errors_truncated: false },
        }),
      ),
    );
    close = api.close;
    const result = await run(api.base, ["files", "upload", path, "--wait"]);
    expect(result.code).toBe(0);
    expect(result.out).toContain("40 examples (legacy, 40 legacy), 123 tokens");
    expect(result.out).toContain("39 duplicates");
  });

  it("prints the API's error envelope precisely and exits 1", async () => {
    const api = await fakeApi((_req, res) => apiError(res, 404, "No such file: file-x", "file_not_found"));
    close = api.close;
    const result = await run(api.base, ["files", "get", "file-x"]);
    expect(result.code).toBe(1);
    expect(result.err).toBe("error: No such file: file-x (file_not_found, HTTP 404)\nrequest id: req-1");
    expect(api.seen[0]?.path).toBe("/v4/files/file-x");
  });

  it("list, delete and a usage error", async () => {
    const api = await fakeApi((req, res) =>
      req.method === "DELETE"
        ? json(res, 200, { id: "file-1", object: "file", deleted: true })
        : json(res, 200, { object: "list", data: [fileObject()], has_more: true }),
    );
    close = api.close;
    const list = await run(api.base, ["files", "list", "--limit", "1"]);
    expect(list.code).toBe(0);
    expect(api.seen[0]?.query.get("limit")).toBe("1");
    expect(list.out).toContain("ftctl files list --after file-1");
    expect((await run(api.base, ["files", "delete", "file-1"])).out).toBe("Deleted file-1.");
    const usage = await run(api.base, ["files", "get"]);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain("usage: ftctl files get <file id>");
  });
});
