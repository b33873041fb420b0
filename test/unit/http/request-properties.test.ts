import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseChatRequest } from "../../../lambdas/core/chat/request.ts";
import { InvalidRequestError, PlatformError } from "../../../lambdas/core/errors.ts";
import { parseMultipartFields, parseUploadRequest } from "../../../lambdas/core/files/requests.ts";
import { parseListParams } from "../../../lambdas/core/http/pagination.ts";
import { Router } from "../../../lambdas/core/http/router.ts";
import { parseCreateJobRequest } from "../../../lambdas/core/jobs/create-request.ts";
import { MAX_USAGE_RANGE_DAYS, parseUsageQuery } from "../../../lambdas/core/usage/query.ts";
import { parseMultipart } from "../../../lambdas/files-api/multipart.ts";
import { parseModelName } from "../../../lambdas/jobs-api/models.ts";
import { jobsRoutes } from "../../../lambdas/jobs-api/routes.ts";
import { fakeDependencies, TENANT } from "../jobs-api/fakes.ts";
import * as arb from "./arbitraries.ts";
import {
  type ApiRequest,
  type ApiResponse,
  apiFunction,
  chatFunction,
  expectEnvelope,
  platformRoutes,
} from "./harness.ts";

/**
 * Properties of every request parser, over random and mutated inputs: a client can send nothing that
 * makes a handler throw or answer 500; every refusal is a platform error (the envelope on the wire),
 * every acceptance a valid result. Runs are kept short (a few hundred cases each) so the unit project
 * stays quick; a failure prints the seed and the shrunk counterexample to replay.
 */

const RUNS = { numRuns: 300 };
const FEWER = { numRuns: 150 };

/** What any response to a client's request must be: never a 500, an envelope whenever it is an error. */
function expectWellFormed(response: ApiResponse, request: unknown): void {
  expect(response.status, JSON.stringify(request)).not.toBe(500);
  expect([200, 302, 400, 404, 405, 409, 413, 415, 422, 429, 503], JSON.stringify(request)).toContain(
    response.status,
  );
  if (response.status >= 400) {
    const error = expectEnvelope(response);
    if (response.status === 405) expect(response.headers.allow).toMatch(/^[A-Z]+(, [A-Z]+)*$/);
    if (response.status === 415) expect(error.code).toBe("unsupported_media_type");
  }
}

/** The content-type header, or none. */
const typeHeader = (type: string | undefined): Record<string, string> =>
  type === undefined ? {} : { "content-type": type };

/** A parser's outcome: a value, or a platform error (never any other throw). */
function outcome<T>(parse: () => T): { value: T } | { error: PlatformError } {
  try {
    return { value: parse() };
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    return { error: error as PlatformError };
  }
}

const routes = platformRoutes();
const ALL_ROUTES = [...routes.files, ...routes.jobs, ...routes.usage, ...routes.webhooks];
const PATTERNS = [...new Set(ALL_ROUTES.map((route) => route.pattern))];
const QUERY_NAMES = ["limit", "after", "purpose", "order", "start", "end"];

describe("router: path matching and decoding", () => {
  const routers = [routes.files, routes.jobs, routes.usage, routes.webhooks].map(
    (table) => new Router(table),
  );

  it("matches a route of that method with decoded parameters, or throws 400, 404 or 405, never anything else", () => {
    fc.assert(
      fc.property(fc.constantFrom(...routers), arb.method(), arb.path(PATTERNS), (router, method, path) => {
        const result = outcome(() => router.match(method, path));
        if ("value" in result) {
          expect(result.value.route.method).toBe(method);
          for (const value of Object.values(result.value.params)) expect(value.length).toBeGreaterThan(0);
          return;
        }
        expect([400, 404, 405]).toContain(result.error.status);
        if (result.error.status === 400) expect(result.error.code).toBe("invalid_path");
        if (result.error.status === 405) {
          const allow = (result.error as PlatformError & { allow: string[] }).allow;
          expect(allow.length).toBeGreaterThan(0);
          expect(allow).not.toContain(method);
        }
      }),
      RUNS,
    );
  });

  it("answers 405 for a path exactly when another method of that path would match", () => {
    const router = new Router(ALL_ROUTES);
    fc.assert(
      fc.property(arb.method(), arb.path(PATTERNS), (method, path) => {
        const result = outcome(() => router.match(method, path));
        if (!("error" in result) || result.error.status !== 405) return;
        const allow = (result.error as PlatformError & { allow: string[] }).allow;
        for (const other of allow) {
          const again = outcome(() => router.match(other, path));
          // The other method matches, or only its parameters' escapes are malformed.
          if ("error" in again) expect(again.error.status).toBe(400);
        }
      }),
      RUNS,
    );
  });
});

describe("the API functions, end to end", () => {
  const functions = [routes.files, routes.jobs, routes.usage, routes.webhooks].map(apiFunction);
  const request: fc.Arbitrary<ApiRequest> = fc.record({
    method: arb.method(),
    path: arb.path(PATTERNS),
    query: arb.query(QUERY_NAMES),
    headers: fc
      .tuple(arb.contentType(), fc.option(arb.anyText(20), { nil: undefined }))
      .map(([type, key]) => ({
        ...(type !== undefined ? { "Content-Type": type } : {}),
        ...(key !== undefined ? { "Idempotency-Key": key } : {}),
      })),
    body: fc.oneof(
      arb.bodyFor({ model: "tiny-chat", training_file: "file-001k892a2fse5r8e5481r" }),
      arb.bodyFor({ filename: "train.jsonl", purpose: "fine-tune", bytes: 1000 }),
      arb.bodyFor({ name: "Bot" }),
      arb.bodyFor({ url: "https://hooks.example.com/ft", events: ["fine_tuning.job.succeeded"] }),
    ),
  });

  it("never answer 500 nor throw, whatever the method, path, query, headers and body", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...functions), request, async (call, req) => {
        expectWellFormed(await call(req), req);
      }),
      RUNS,
    );
  });
});

describe("list parameters", () => {
  it("give a limit in range and the after id, or a 400 naming the parameter", () => {
    const value = fc.oneof(
      fc.integer({ min: -10, max: 300 }).map(String),
      fc.constantFrom("", " 5", "5.0", "1e2", "0x10", "Infinity", "NaN", "file-001k892a2fse5r8e5481r"),
      arb.anyText(12),
    );
    const query = fc.record({ limit: value, after: value }, { requiredKeys: [] });
    fc.assert(
      fc.property(query, fc.boolean(), (q, withPattern) => {
        const result = outcome(() =>
          parseListParams(q, {
            defaultLimit: 20,
            maxLimit: 100,
            ...(withPattern ? { idPattern: /^file-[0-9a-v]{21}$/ } : {}),
          }),
        );
        if ("value" in result) {
          expect(Number.isInteger(result.value.limit)).toBe(true);
          expect(result.value.limit).toBeGreaterThanOrEqual(1);
          expect(result.value.limit).toBeLessThanOrEqual(100);
          expect(result.value.after).toBe(q.after);
        } else {
          expect(result.error).toBeInstanceOf(InvalidRequestError);
          expect(["limit", "after"]).toContain(result.error.param);
        }
      }),
      RUNS,
    );
  });
});

describe("file bodies", () => {
  const upload = {
    filename: "train.jsonl",
    purpose: "fine-tune",
    bytes: 1000,
    mime_type: "application/jsonl",
  };

  it("POST /v4/files/uploads: a valid upload request, or a 400/413", () => {
    fc.assert(
      fc.property(arb.mutatedObject(upload), (body) => {
        const result = outcome(() => parseUploadRequest(body as Record<string, unknown>));
        if ("value" in result) {
          expect(result.value.purpose).toBe("fine-tune");
          expect(result.value.bytes).toBeGreaterThan(0);
          expect(result.value.filename).not.toMatch(/[/\\]/);
        } else expect([400, 413]).toContain(result.error.status);
      }),
      RUNS,
    );
  });

  it("POST /v4/files/uploads through its handler: 200 with an upload URL, or the envelope", async () => {
    const call = apiFunction(routes.files);
    await fc.assert(
      fc.asyncProperty(arb.bodyFor(upload), arb.contentType(), async (body, type) => {
        const req = {
          method: "POST",
          path: "/v4/files/uploads",
          headers: typeHeader(type),
          body,
        };
        const response = await call(req);
        expectWellFormed(response, req);
        if (response.status === 200) expect(JSON.parse(response.text).upload_url).toMatch(/^https:/);
      }),
      RUNS,
    );
  });

  /** A multipart form from parts, then maybe cut or edited as bytes. */
  const form = fc
    .record({
      boundary: fc.oneof(
        { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/) },
        { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9'()+_,./:=? -]{0,20}$/) },
      ),
      parts: fc.array(
        fc.record({
          name: fc.oneof(fc.constantFrom("file", "purpose", "model"), arb.anyText(6)),
          filename: fc.option(fc.oneof(fc.constant("train.jsonl"), arb.anyText(12)), { nil: undefined }),
          content: fc.oneof(fc.constantFrom("fine-tune", '{"messages":[]}\n'), arb.anyText(30)),
        }),
        { maxLength: 4 },
      ),
      // Where a cut form ends, in thousandths of its length: mid-part is where parsers break.
      cut: fc.option(fc.integer({ min: 0, max: 999 }), { nil: undefined }),
    })
    .map(({ boundary, parts, cut }) => {
      let text = "";
      for (const part of parts) {
        const filename = part.filename === undefined ? "" : `; filename="${part.filename}"`;
        text += `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"${filename}\r\n\r\n${part.content}\r\n`;
      }
      text += `--${boundary}--\r\n`;
      const bytes = Buffer.from(text);
      return {
        contentType: `multipart/form-data; boundary=${boundary}`,
        body: cut === undefined ? bytes : bytes.subarray(0, Math.floor((cut / 1000) * bytes.length)),
      };
    });

  it("POST /v4/files: the multipart parser resolves fields and one file, or rejects with a 400/413", async () => {
    await fc.assert(
      fc.asyncProperty(form, async ({ contentType, body }) => {
        try {
          const upload = await parseMultipart(body, contentType, 1024);
          const fields = outcome(() => parseMultipartFields(upload.fields, upload.filename));
          if ("value" in fields) expect(fields.value.purpose).toBe("fine-tune");
          else expect(fields.error.status).toBe(400);
        } catch (error) {
          expect(error).toBeInstanceOf(PlatformError);
          expect([400, 413]).toContain((error as PlatformError).status);
        }
      }),
      RUNS,
    );
  });

  it("POST /v4/files through its handler: 200 with the file object, or the envelope", async () => {
    const call = apiFunction(routes.files);
    const type = fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: arb.contentType() },
    );
    await fc.assert(
      fc.asyncProperty(form, type, async ({ contentType, body }, other) => {
        const req = {
          method: "POST",
          path: "/v4/files",
          headers: { "Content-Type": other ?? contentType },
          body,
        };
        const response = await call(req);
        expectWellFormed(response, { ...req, body: body.toString("latin1") });
        if (response.status === 200) expect(JSON.parse(response.text)).toMatchObject({ object: "file" });
      }),
      FEWER,
    );
  });
});

describe("job create body", () => {
  const fakes = fakeDependencies();
  const trainingFile = fakes.files.add(TENANT);
  // Its own fakes, holding a processed training file of the tenant.
  const call = apiFunction(jobsRoutes(fakes.deps));
  const valid = {
    model: "tiny-chat",
    training_file: trainingFile,
    model_code: "acme-bot",
    method: { type: "lora", hyperparameters: { n_epochs: 2, learning_rate_multiplier: 1 } },
    suffix: "v1",
    seed: 7,
    metadata: { team: "a" },
  };
  const nested = fc.oneof(
    fc.record({
      type: fc.oneof(fc.constantFrom("lora", "full", "supervised", "dpo", "reinforcement"), arb.anyText(6)),
    }),
    fc.record(
      { n_epochs: arb.jsonValue(), batch_size: arb.jsonValue(), learning_rate_multiplier: arb.jsonValue() },
      { requiredKeys: [] },
    ),
  );

  it("parses to a request, or a 400", () => {
    fc.assert(
      fc.property(arb.mutatedObject(valid, nested), (body) => {
        const result = outcome(() => parseCreateJobRequest(body));
        if ("error" in result) expect(result.error.status).toBe(400);
      }),
      RUNS,
    );
  });

  it("POST /v4/fine_tuning/jobs through its handler: 200 with a job or estimate, or the envelope", async () => {
    await fc.assert(
      fc.asyncProperty(
        arb.bodyFor(valid, nested),
        arb.contentType(),
        fc.boolean(),
        async (body, type, keyed) => {
          const headers: Record<string, string> = type ? { "Content-Type": type } : {};
          if (keyed) headers["Idempotency-Key"] = "same-key";
          const req = { method: "POST", path: "/v4/fine_tuning/jobs", headers, body };
          const response = await call(req);
          expectWellFormed(response, req);
          if (response.status === 200) expect(JSON.parse(response.text).object).toMatch(/^fine_tuning\.job/);
        },
      ),
      RUNS,
    );
  });
});

describe("model rename body", () => {
  it("parses to a name or null, or a 400", () => {
    fc.assert(
      fc.property(arb.mutatedObject({ name: "Bot" }), (body) => {
        const result = outcome(() => parseModelName(body));
        if ("value" in result) expect(result.value === null || typeof result.value === "string").toBe(true);
        else expect(result.error.status).toBe(400);
      }),
      RUNS,
    );
  });

  it("POST /v4/models/{model} through its handler: never a 500", async () => {
    const call = apiFunction(routes.jobs);
    const model = fc.constantFrom("tiny-chat", "acme-bot", "no-such-model", "%zz", "a%2Fb");
    await fc.assert(
      fc.asyncProperty(model, arb.bodyFor({ name: "Bot" }), arb.contentType(), async (code, body, type) => {
        const req = {
          method: "POST",
          path: `/v4/models/${code}`,
          headers: typeHeader(type),
          body,
        };
        expectWellFormed(await call(req), req);
      }),
      RUNS,
    );
  });
});

describe("chat request body", () => {
  const valid = {
    model: "tiny-chat",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "hi" },
    ],
    stream: false,
    temperature: 0.5,
    max_tokens: 16,
    stop: ["\n"],
  };
  const messages = fc.array(
    fc.record(
      {
        role: fc.oneof(fc.constantFrom("system", "developer", "user", "assistant", "tool"), arb.anyText(6)),
        content: fc.oneof(
          arb.anyText(20),
          fc.constant(null),
          fc.array(fc.record({ type: fc.constantFrom("text", "image_url"), text: arb.anyText(10) }), {
            maxLength: 2,
          }),
          arb.jsonValue(),
        ),
        name: arb.anyText(6),
      },
      { requiredKeys: ["role"] },
    ),
    { maxLength: 4 },
  );

  it("parses to a normalised request, or a 400/413", () => {
    const body = fc.oneof(
      arb.mutatedObject(valid, messages).map((value) => Buffer.from(JSON.stringify(value) ?? "")),
      arb.mutatedText(JSON.stringify(valid)).map((text) => Buffer.from(text)),
      fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    );
    fc.assert(
      fc.property(body, (bytes) => {
        const result = outcome(() => parseChatRequest(bytes));
        if ("value" in result) {
          expect(result.value.messages.some((m) => m.role === "user")).toBe(true);
          expect(result.value.messages.every((m) => typeof m.content === "string")).toBe(true);
        } else expect([400, 413]).toContain(result.error.status);
      }),
      RUNS,
    );
  });

  it("the chat function never answers 500, and refuses only with the envelope", async () => {
    const chat = chatFunction();
    const request = fc.record({
      method: fc.oneof({ weight: 4, arbitrary: fc.constant("POST") }, { weight: 1, arbitrary: arb.method() }),
      path: fc.oneof(
        { weight: 4, arbitrary: fc.constant("/v4/chat/completions") },
        { weight: 1, arbitrary: arb.path(["/v4/chat/completions", "/v4/chat/{x}"]) },
      ),
      headers: arb.contentType().map(typeHeader),
      body: arb.bodyFor({ ...valid, stream: true }, messages),
    });
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        const response = await chat(req);
        expectWellFormed(response, req);
        if (response.status === 405) expect(response.headers.allow).toBe("POST");
      }),
      FEWER,
    );
  });
});

describe("usage query", () => {
  const date = fc.oneof(
    fc
      .date({ min: new Date("2020-01-01"), max: new Date("2030-12-31"), noInvalidDate: true })
      .map((d) => d.toISOString().slice(0, 10)),
    fc.constantFrom("2026-02-29", "2024-02-29", "2026-13-01", "2026-1-1", "20260101", ""),
    arb.anyText(10),
  );
  const query = fc.oneof(
    fc.record({ start: date, end: date }, { requiredKeys: [] }),
    fc.dictionary(fc.oneof(fc.constantFrom("start", "end", "from", "to"), arb.anyText(6)), date, {
      maxKeys: 3,
    }),
  );

  it("gives a range of 1 to 366 calendar days, or a 400 naming the parameter", () => {
    fc.assert(
      fc.property(query, (q) => {
        const result = outcome(() => parseUsageQuery(q));
        if ("value" in result) {
          const days = (Date.parse(result.value.end) - Date.parse(result.value.start)) / 86_400_000 + 1;
          expect(days).toBeGreaterThanOrEqual(1);
          expect(days).toBeLessThanOrEqual(MAX_USAGE_RANGE_DAYS);
          expect(result.value).toEqual({ start: q.start, end: q.end });
        } else {
          expect(result.error.status).toBe(400);
          expect(result.error.param).not.toBeNull();
        }
      }),
      RUNS,
    );
  });
});
