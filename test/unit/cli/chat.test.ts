import { afterEach, describe, expect, it } from "vitest";
import { apiError, fakeApi, run } from "./fake-api.ts";

const chunk = (content: string) =>
  `data: ${JSON.stringify({ object: "chat.completion.chunk", model: "zorbia-facts", choices: [{ index: 0, delta: { content } }] })}\n\n`;

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe("ftctl chat", () => {
  it("streams the text as it arrives, across split chunks, until [DONE]", async () => {
    const api = await fakeApi(async (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const stream = `: keep-alive\n\n${chunk("Quilltown,")}${chunk(" on the ")}${chunk("Marra river.")}data: [DONE]\n\n`;
      // Cut the stream mid-line to check the client's line buffering.
      for (const piece of [stream.slice(0, 30), stream.slice(30, 101), stream.slice(101)]) {
        res.write(piece);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      res.end();
    });
    close = api.close;
    const result = await run(api.base, [
      "chat",
      "zorbia-facts",
      "What is the capital",
      "of Zorbia?",
      "--system",
      "Be brief.",
      "--max-tokens",
      "40",
      "--temperature",
      "0",
    ]);
    expect(result.code).toBe(0);
    expect(result.written).toBe("Quilltown, on the Marra river.\n");
    const [post] = api.seen;
    expect(post?.path).toBe("/v4/chat/completions");
    expect(JSON.parse(post!.body.toString())).toEqual({
      model: "zorbia-facts",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "What is the capital of Zorbia?" },
      ],
      max_tokens: 40,
      temperature: 0,
      stream: true,
    });
  });

  it("an error object in the stream goes to stderr, exit 1", async () => {
    const api = await fakeApi((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(
        `${chunk("Quill")}data: ${JSON.stringify({ error: { message: "The inference server stopped.", type: "server_error", code: "upstream_error" } })}\n\n`,
      );
    });
    close = api.close;
    const result = await run(api.base, ["chat", "zorbia-facts", "hi"]);
    expect(result.code).toBe(1);
    expect(result.written).toBe("Quill\n");
    expect(result.err).toBe("error: The inference server stopped. (upstream_error)");
  });

  it("a stream cut before [DONE] is an error; an HTTP error prints the envelope", async () => {
    const api = await fakeApi((req, res) => {
      if (JSON.parse(req.body.toString()).model === "nope") {
        return apiError(res, 404, "The model 'nope' does not exist.", "model_not_found");
      }
      res.writeHead(200, { "content-type": "text/event-stream" }).end(chunk("half"));
    });
    close = api.close;
    const cut = await run(api.base, ["chat", "zorbia-facts", "hi"]);
    expect(cut.code).toBe(1);
    expect(cut.err).toContain("ended without [DONE]");
    const missing = await run(api.base, ["chat", "nope", "hi"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("error: The model 'nope' does not exist. (model_not_found, HTTP 404)");
    const usage = await run(api.base, ["chat", "zorbia-facts"]);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain("usage: ftctl chat");
  });
});
