import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeysRepository } from "../../lambdas/aws/api-keys-repository.ts";
import { TenantAdmin } from "../../local/cli/admin.ts";
import { type LocalPlatform, startPlatform } from "../../local/platform/platform.ts";
import { localClients, uniquePrefix } from "./aws.ts";

/**
 * Upload → S3 event → validation queue → validator → GET, through the local gateway and the same
 * handlers as in AWS, against LocalStack.
 */
describe("training files with validation on upload", () => {
  let platform: LocalPlatform;
  let keyA: string;
  let keyB: string;

  beforeAll(async () => {
    const { documents } = localClients();
    platform = await startPlatform({ prefix: uniquePrefix("files"), port: 0 });
    const admin = new TenantAdmin(new ApiKeysRepository(documents, platform.resources.tables["api-keys"]));
    keyA = (await admin.createTenant("tenant a")).apiKey;
    keyB = (await admin.createTenant("tenant b")).apiKey;
  });

  afterAll(async () => {
    await platform?.stop();
  });

  const api = (key: string, path: string, init: RequestInit = {}) =>
    fetch(`${platform.baseUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${key}`, ...init.headers },
    });

  async function waitForStatus(
    key: string,
    id: string,
    timeoutMs = 30_000,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const file = (await (await api(key, `/files/${id}`)).json()) as Record<string, unknown>;
      if (file.status === "processed" || file.status === "error") return file;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`file ${id} was not validated within ${timeoutMs} ms`);
  }

  async function presignedUpload(key: string, content: Buffer, filename: string): Promise<string> {
    const created = await api(key, "/files/uploads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ filename, purpose: "fine-tune", bytes: content.length }),
    });
    expect(created.status).toBe(200);
    const body = (await created.json()) as {
      id: string;
      upload_url: string;
      upload_headers: Record<string, string>;
      status: string;
    };
    expect(body.status).toBe("pending_upload");
    // Every signed header as given (If-None-Match included); fetch sets content-length from the body.
    const { "content-length": _length, ...headers } = body.upload_headers;
    const put = await fetch(body.upload_url, { method: "PUT", body: content, headers });
    expect(put.status).toBe(200);
    return body.id;
  }

  it("answers 401 in the error envelope without a key or with an unknown key", async () => {
    const none = await fetch(`${platform.baseUrl}/files`);
    expect(none.status).toBe(401);
    const body = (await none.json()) as { error: { type: string; code: string; request_id: string } };
    expect(body.error).toMatchObject({ type: "authentication_error", code: "invalid_api_key" });
    expect(body.error.request_id).toBeTruthy();
    expect((await api("ftk_unknown", "/files")).status).toBe(401);
  });

  it("validates a presigned upload into processed with statistics", async () => {
    const id = await presignedUpload(
      keyA,
      readFileSync("test/fixtures/datasets/valid-messages.jsonl"),
      "train.jsonl",
    );
    const file = await waitForStatus(keyA, id);
    expect(file).toMatchObject({
      id,
      object: "file",
      status: "processed",
      format: "messages",
      filename: "train.jsonl",
    });
    const statistics = file.statistics as { examples: number; tokens: { method: string } };
    expect(statistics.examples).toBeGreaterThanOrEqual(10);
    expect(statistics.tokens.method).toMatch(/estimate/);
    expect(file.validation).toMatchObject({ errors: [] });
  });

  it("marks a bad multipart upload error with line numbers", async () => {
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", new Blob([readFileSync("test/fixtures/datasets/unknown-role.jsonl")]), "bad.jsonl");
    const created = await api(keyA, "/files", { method: "POST", body: form });
    expect(created.status).toBe(200);
    const { id } = (await created.json()) as { id: string };
    const file = await waitForStatus(keyA, id);
    expect(file.status).toBe("error");
    const validation = file.validation as {
      errors: { line: number; path: string; code: string }[];
      error_counts: Record<string, number>;
    };
    expect(validation.errors.length).toBeGreaterThan(0);
    expect(validation.errors.find((e) => e.code === "unknown_role")).toMatchObject({
      line: expect.any(Number),
      path: expect.stringMatching(/messages\[\d+\]\.role/),
    });
    expect(validation.error_counts.unknown_role).toBeGreaterThan(0);
  });

  it("returns the content back byte for byte", async () => {
    const content = readFileSync("test/fixtures/datasets/valid-legacy.jsonl");
    const id = await presignedUpload(keyA, content, "legacy.jsonl");
    expect((await waitForStatus(keyA, id)).format).toBe("legacy");
    const got = await api(keyA, `/files/${id}/content`);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(content)).toBe(true);
  });

  it("gives tenant B a 404 for tenant A's file on every files endpoint and hides it from the list", async () => {
    const id = await presignedUpload(
      keyA,
      readFileSync("test/fixtures/datasets/valid-messages.jsonl"),
      "private.jsonl",
    );
    for (const [method, path] of [
      ["GET", `/files/${id}`],
      ["GET", `/files/${id}/content`],
      ["DELETE", `/files/${id}`],
    ]) {
      const response = await api(keyB, path!, { method: method! });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("file_not_found");
    }
    const listB = (await (await api(keyB, "/files")).json()) as { data: { id: string }[] };
    expect(listB.data.map((f) => f.id)).not.toContain(id);
    const listA = (await (await api(keyA, "/files")).json()) as { data: { id: string }[]; object: string };
    expect(listA.object).toBe("list");
    expect(listA.data.map((f) => f.id)).toContain(id);
    expect((await api(keyA, `/files/${id}`)).status).toBe(200);
  });

  it("answers a wrong method 405 with Allow, a malformed escape and an unknown query parameter 400", async () => {
    const wrong = await api(keyA, "/files/uploads", { method: "GET" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
    const malformed = await api(keyA, "/files/file-%E0%A4%A");
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe("invalid_path");
    const unknown = await api(keyA, "/files?limit=2&purpose=fine-tune&sort=asc");
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { param: string } }).error).toMatchObject({
      code: "unknown_parameter",
      param: "sort",
    });
  });

  it("deletes a file and its object", async () => {
    const id = await presignedUpload(
      keyA,
      readFileSync("test/fixtures/datasets/valid-messages.jsonl"),
      "gone.jsonl",
    );
    await waitForStatus(keyA, id);
    const deleted = await api(keyA, `/files/${id}`, { method: "DELETE" });
    expect(await deleted.json()).toEqual({ id, object: "file", deleted: true });
    expect((await api(keyA, `/files/${id}`)).status).toBe(404);
  });
});
