import { describe, expect, it } from "vitest";
import { isJsonContentType } from "../../../lambdas/core/http/content-type.ts";
import { Router } from "../../../lambdas/core/http/router.ts";
import { parseUsageQuery } from "../../../lambdas/core/usage/query.ts";
import { apiFunction, chatFunction, expectEnvelope, platformRoutes } from "./harness.ts";

/**
 * HTTP hygiene (issue #19): a wrong method is a 405 with `Allow`, a malformed escape or an unknown
 * query parameter a 400, a JSON endpoint's body not declared JSON a 415; all in the error envelope.
 */

const routes = platformRoutes();
const files = apiFunction(routes.files);
const jobs = apiFunction(routes.jobs);
const usage = apiFunction(routes.usage);
const JSON_TYPE = { "Content-Type": "application/json" };

describe("a method the path does not have", () => {
  it.each([
    [files, "PUT", "/v4/files", "GET, POST"],
    [files, "PATCH", "/v4/files/file-abc", "DELETE, GET"],
    [files, "DELETE", "/v4/files/file-abc/content", "GET"],
    [jobs, "DELETE", "/v4/fine_tuning/jobs", "GET, POST"],
    [jobs, "GET", "/v4/fine_tuning/jobs/ftjob-abc/cancel", "POST"],
    [jobs, "PUT", "/v4/models/acme-bot", "DELETE, GET, POST"],
    [jobs, "GET", "/v4/models/acme-bot/deploy", "DELETE, POST"],
    [jobs, "GET", "/v4/fine_tuning/fine_tuned_models/acme-bot", "DELETE"],
    [usage, "POST", "/v4/usage", "GET"],
    [usage, "HEAD", "/v4/usage", "GET"],
    [usage, "OPTIONS", "/v4/usage", "GET"],
  ])(
    "returns 405 method_not_allowed with the path's methods in Allow (%#: %s %s)",
    async (api, method, path, allow) => {
      const response = await api({ method, path });
      const error = expectEnvelope(response, 405);
      expect(response.headers.allow).toBe(allow);
      expect(error).toMatchObject({ type: "invalid_request_error", code: "method_not_allowed", param: null });
      expect(error.message).toContain(allow);
    },
  );

  it("prefers a literal segment to a parameter, as API Gateway does: GET /v4/files/uploads is a 405, not a file lookup", async () => {
    const response = await files({ method: "GET", path: "/v4/files/uploads" });
    expectEnvelope(response, 405);
    expect(response.headers.allow).toBe("POST");
  });

  it("answers 405 before it reads the query or the body", async () => {
    const response = await jobs({
      method: "PUT",
      path: "/v4/fine_tuning/jobs",
      query: { nonsense: "1" },
      headers: { "content-type": "text/plain" },
      body: "not json",
    });
    expectEnvelope(response, 405);
  });

  it("still returns 404 unknown_url for a path no route has", async () => {
    for (const path of ["/v4/files/a/b/c", "/v4/filesx", "/v4/fine_tuning/jobs/x/y"]) {
      const error = expectEnvelope(await files({ method: "GET", path }), 404);
      expect(error.code).toBe("unknown_url");
    }
  });

  it("lists each method once whatever the route table's order", () => {
    const handler = async () => ({ status: 200, body: {} });
    const router = new Router([
      { method: "POST", pattern: "/v4/x/{a}", handler },
      { method: "GET", pattern: "/v4/x/{b}", handler },
      { method: "POST", pattern: "/v4/x/{c}", handler },
    ]);
    expect(() => router.match("DELETE", "/v4/x/1")).toThrow(
      expect.objectContaining({ allow: ["GET", "POST"] }),
    );
  });
});

describe("a malformed percent-escape in the path", () => {
  it.each(["%", "%E0%A4%A", "%zz", "abc%2", "%C3%28"])(
    "returns 400 invalid_path naming the parameter, never a 500 (%s)",
    async (segment) => {
      const error = expectEnvelope(await files({ method: "GET", path: `/v4/files/${segment}` }), 400);
      expect(error).toMatchObject({ code: "invalid_path", param: "file_id" });
    },
  );

  it("decodes a well-formed escape as before", async () => {
    const error = expectEnvelope(await files({ method: "GET", path: "/v4/files/file%2Dx" }), 404);
    expect(error.message).toContain("file-x");
  });
});

describe("query parameters", () => {
  it("returns 400 unknown_parameter naming a parameter the route does not declare", async () => {
    const error = expectEnvelope(
      await files({ method: "GET", path: "/v4/files", query: { limt: "5", limit: "5" } }),
      400,
    );
    expect(error).toMatchObject({ code: "unknown_parameter", param: "limt" });
    expect(error.message).toBe(
      "Unknown query parameter 'limt'; GET /v4/files takes limit, after, purpose, order.",
    );
  });

  it("returns 400 for any query on a route that takes none", async () => {
    const error = expectEnvelope(
      await jobs({ method: "GET", path: "/v4/models", query: { a: "1", b: "" } }),
      400,
    );
    expect(error).toMatchObject({ code: "unknown_parameter", param: "a" });
    expect(error.message).toBe(
      "Unknown query parameters 'a', 'b'; GET /v4/models takes no query parameters.",
    );
  });

  it("takes each list route's declared parameters", async () => {
    expect(
      (
        await files({
          method: "GET",
          path: "/v4/files",
          query: { limit: "2", purpose: "fine-tune", order: "desc" },
        })
      ).status,
    ).toBe(200);
    expect((await jobs({ method: "GET", path: "/v4/fine_tuning/jobs", query: { limit: "2" } })).status).toBe(
      200,
    );
    for (const list of ["events", "checkpoints"]) {
      const response = await jobs({
        method: "GET",
        path: `/v4/fine_tuning/jobs/ftjob-x/${list}`,
        query: { limit: "2", after: "x" },
      });
      // The job does not exist: the query was accepted and the handler ran.
      expect(expectEnvelope(response, 404).code).toBe("job_not_found");
    }
  });

  it("declares limit and after on every route that reads list parameters", () => {
    const declared = [...routes.files, ...routes.jobs, ...routes.usage, ...routes.webhooks]
      .filter((route) => route.query)
      .map((route) => `${route.method} ${route.pattern}: ${route.query!.join(",")}`);
    expect(declared).toEqual([
      "GET /v4/files: limit,after,purpose,order",
      "GET /v4/fine_tuning/jobs: limit,after",
      "GET /v4/fine_tuning/jobs/{job_id}/events: limit,after",
      "GET /v4/fine_tuning/jobs/{job_id}/checkpoints: limit,after",
      "GET /v4/usage: start,end",
    ]);
  });

  it("says the same for the usage API through its router and its own parser", async () => {
    const query = { start: "2026-01-01", end: "2026-01-02", from: "x" };
    const error = expectEnvelope(await usage({ method: "GET", path: "/v4/usage", query }), 400);
    expect(() => parseUsageQuery(query)).toThrow(error.message as string);
    expect(error).toMatchObject({ code: "unknown_parameter", param: "from" });
  });
});

describe("a JSON endpoint's content type", () => {
  const endpoints = [
    [jobs, "POST", "/v4/fine_tuning/jobs"],
    [jobs, "POST", "/v4/models/acme-bot"],
    [files, "POST", "/v4/files/uploads"],
  ] as const;

  it.each(endpoints)(
    "returns 415 unsupported_media_type for a body not declared JSON (%#: %s %s)",
    async (api, method, path) => {
      const refused: Record<string, string>[] = [
        {},
        { "Content-Type": "text/plain" },
        { "content-type": "application/x-www-form-urlencoded" },
        { "content-type": "application/json; charset=latin1" },
        { "content-type": "application/jsonl" },
      ];
      for (const headers of refused) {
        const error = expectEnvelope(await api({ method, path, headers, body: '{"name":"x"}' }), 415);
        expect(error).toMatchObject({
          type: "invalid_request_error",
          code: "unsupported_media_type",
          param: null,
        });
      }
    },
  );

  it.each(endpoints)(
    "reads a body declared JSON, charset utf-8 allowed (%#: %s %s)",
    async (api, method, path) => {
      for (const type of [
        "application/json",
        "Application/JSON; charset=UTF-8",
        'application/json;charset="utf-8"',
      ]) {
        const response = await api({ method, path, headers: { "content-type": type }, body: "{" });
        expect(expectEnvelope(response, 400).code).toBe("invalid_json");
      }
    },
  );

  it("returns 400 for an empty body, whatever its content type: nothing was sent to declare", async () => {
    const error = expectEnvelope(await jobs({ method: "POST", path: "/v4/fine_tuning/jobs" }), 400);
    expect(error.message).toBe("The request body must be a JSON object.");
  });

  it("leaves the multipart upload to its own rule", async () => {
    const response = await files({ method: "POST", path: "/v4/files", headers: JSON_TYPE, body: "{}" });
    expect(expectEnvelope(response, 400).code).toBe("invalid_content_type");
  });

  it.each([
    ["application/json", true],
    ["APPLICATION/JSON", true],
    [" application/json ; charset=utf-8", true],
    ["application/json; charset=utf8; foo=bar", true],
    ["application/json; charset=utf-16", false],
    ["application/json-patch+json", false],
    ["text/json", false],
    ["", false],
    [undefined, false],
  ])("reads %j as JSON: %s", (header, json) => {
    expect(isJsonContentType(header)).toBe(json);
  });
});

describe("the chat function", () => {
  const chat = chatFunction();
  const body = JSON.stringify({ model: "tiny-chat", messages: [{ role: "user", content: "hi" }] });

  it("returns 405 with Allow: POST for another method on its path", async () => {
    for (const method of ["GET", "PUT", "DELETE", "HEAD"]) {
      const response = await chat({ method, path: "/v4/chat/completions", headers: JSON_TYPE, body });
      expect(expectEnvelope(response, 405).code).toBe("method_not_allowed");
      expect(response.headers.allow).toBe("POST");
    }
  });

  it("returns 404 unknown_url for another path", async () => {
    const response = await chat({ method: "POST", path: "/v4/chat/completions/x", headers: JSON_TYPE, body });
    expect(expectEnvelope(response, 404).code).toBe("unknown_url");
  });

  it("returns 415 for a body not declared JSON, and answers one that is", async () => {
    const refused = await chat({
      method: "POST",
      path: "/v4/chat/completions",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body,
    });
    expect(expectEnvelope(refused, 415).code).toBe("unsupported_media_type");
    const answered = await chat({
      method: "POST",
      path: "/v4/chat/completions",
      headers: { "Content-Type": "application/json; charset=utf-8" },
      body,
    });
    expect(answered.status).toBe(200);
    expect(JSON.parse(answered.text).choices[0].message.content).toBe("hi");
  });
});
