import { describe, expect, it } from "vitest";
import { readChatStream, StreamError } from "../../../web/console/src/lib/chat-stream.ts";
import {
  hasValidation,
  type JobEvent,
  lossSeries,
  mergeEvents,
} from "../../../web/console/src/lib/events.ts";
import { formatDuration } from "../../../web/console/src/lib/format.ts";
import {
  boundOf,
  fieldsFor,
  hyperparametersFromForm,
  modelCodeSyntaxOk,
} from "../../../web/console/src/lib/hyperparameters.ts";
import { countsPerReason, sortedIssues, totalErrors } from "../../../web/console/src/lib/report.ts";
import { parseRoute, routeHref } from "../../../web/console/src/lib/route.ts";
import { shellQuote, snippet } from "../../../web/console/src/lib/snippets.ts";
import {
  declaredMimeType,
  MULTIPART_LIMIT_BYTES,
  percent,
  uploadPath,
} from "../../../web/console/src/lib/upload.ts";

/** A body that arrives in the given byte pieces, as a network would split it. */
function body(pieces: readonly string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(encoder.encode(piece));
      controller.close();
    },
  });
}

const chunk = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;

describe("readChatStream", () => {
  it("hands each piece of text over as it arrives, across any split of the bytes and line ends", async () => {
    const whole = `${chunk("Hel")}${chunk("lo")}: keep-alive\n\n${chunk(", 世界", "stop")}data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}\r\n\r\ndata: [DONE]\n\n`;
    const pieces: string[] = [];
    for (let i = 0; i < whole.length; i += 7) pieces.push(whole.slice(i, i + 7));
    const seen: string[] = [];
    const outcome = await readChatStream(body(pieces), (text) => seen.push(text));
    expect(seen).toEqual(["Hel", "lo", ", 世界"]);
    expect(outcome).toEqual({
      text: "Hello, 世界",
      finishReason: "stop",
      usage: { prompt_tokens: 5, completion_tokens: 3 },
    });
  });

  it("splits a multi-byte character across reads without garbling it", async () => {
    const bytes = new TextEncoder().encode(chunk("微调"));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i++) controller.enqueue(bytes.slice(i, i + 1));
        controller.close();
      },
    });
    expect((await readChatStream(stream, () => {})).text).toBe("微调");
  });

  it("throws the error event's message when the stream fails after it started", async () => {
    const failing = body([
      chunk("Par"),
      `data: ${JSON.stringify({ error: { message: "The inference server failed.", code: "upstream_error" } })}\n\n`,
    ]);
    const seen: string[] = [];
    const error = await readChatStream(failing, (t) => seen.push(t)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamError);
    expect((error as StreamError).message).toBe("The inference server failed.");
    expect((error as StreamError).code).toBe("upstream_error");
    expect(seen).toEqual(["Par"]);
  });

  it("ends with what arrived when the stream closes without [DONE]", async () => {
    expect(
      (await readChatStream(body([chunk("a"), "data: {not json}\n\n", chunk("b")]), () => {})).text,
    ).toBe("ab");
  });
});

describe("the validation report", () => {
  const validation = {
    errors: [
      { line: 14, path: "$.messages[1].content", code: "empty_content", message: "empty" },
      { line: 4, path: "$", code: "invalid_json", message: "bad JSON" },
      { line: 7, path: "$.messages[0].role", code: "unknown_role", message: "narrator" },
      { line: 11, path: "$.messages", code: "not_ending_with_assistant", message: "ends with user" },
      { line: 0, path: "", code: "too_few_examples", message: "too few" },
      { line: 7, path: "$.messages", code: "system_not_first", message: "second error on line 7" },
    ],
    // Counted past the listed ones: 3 invalid_json in all, 2 of them not listed.
    error_counts: {
      invalid_json: 3,
      empty_content: 1,
      unknown_role: 1,
      not_ending_with_assistant: 1,
      too_few_examples: 1,
    },
    errors_truncated: true,
  };

  it("counts errors per reason from error_counts, most frequent first, with the listed lines", () => {
    expect(countsPerReason(validation)).toEqual([
      { code: "invalid_json", count: 3, listed: 1, lines: [4] },
      { code: "empty_content", count: 1, listed: 1, lines: [14] },
      { code: "not_ending_with_assistant", count: 1, listed: 1, lines: [11] },
      // Listed but absent from error_counts: counted from the list.
      { code: "system_not_first", count: 1, listed: 1, lines: [7] },
      { code: "too_few_examples", count: 1, listed: 1, lines: [0] },
      { code: "unknown_role", count: 1, listed: 1, lines: [7] },
    ]);
    expect(totalErrors(validation)).toBe(8);
  });

  it("lists errors by line, file-level first, keeping the API's order within a line", () => {
    expect(sortedIssues(validation).map((e) => `${e.line}:${e.code}`)).toEqual([
      "0:too_few_examples",
      "4:invalid_json",
      "7:unknown_role",
      "7:system_not_first",
      "11:not_ending_with_assistant",
      "14:empty_content",
    ]);
  });

  it("is empty for a valid file", () => {
    expect(countsPerReason({ errors: [], error_counts: {}, errors_truncated: false })).toEqual([]);
  });
});

describe("job events and the loss curve", () => {
  const event = (
    id: string,
    at: number,
    data: Record<string, unknown> | null,
    type = "metrics",
  ): JobEvent => ({
    id,
    created_at: at,
    level: "info",
    message: "",
    type,
    data,
  });

  it("merges a newer page into the known events, newest first, and says when it met a known one", () => {
    const known = [event("e2", 20, null, "message"), event("e1", 10, null, "message")];
    const merged = mergeEvents(known, [event("e4", 40, null), event("e3", 30, null), event("e2", 20, null)]);
    expect(merged.events.map((e) => e.id)).toEqual(["e4", "e3", "e2", "e1"]);
    expect(merged.reachedKnown).toBe(true);
    expect(mergeEvents(known, [event("e9", 90, null)]).reachedKnown).toBe(false);
  });

  it("plots one point per step from metrics events, training and validation loss, in step order", () => {
    const events = [
      event("e5", 50, { step: 20, train_loss: 1.5, valid_loss: 1.7 }),
      event("e4", 40, { step: 15, train_loss: 1.8 }),
      event("e3", 30, { step: 10, valid_loss: 2.0 }),
      event("e2", 20, { step: 10, train_loss: 2.1 }),
      event("e1", 10, { step: 5, train_loss: 2.5 }),
      event("m", 5, { step: 1 }, "message"),
      event("x", 4, { step: 2, tokens_per_second: 100 }),
    ];
    const series = lossSeries(events);
    expect(series).toEqual({
      steps: [5, 10, 15, 20],
      train: [2.5, 2.1, 1.8, 1.5],
      valid: [null, 2.0, null, 1.7],
    });
    expect(hasValidation(series)).toBe(true);
    expect(hasValidation(lossSeries([events[1]!]))).toBe(false);
  });
});

describe("uploads", () => {
  it("sends files up to 4 MiB as multipart and larger ones through a presigned URL", () => {
    expect(uploadPath(1)).toBe("multipart");
    expect(uploadPath(MULTIPART_LIMIT_BYTES)).toBe("multipart");
    expect(uploadPath(MULTIPART_LIMIT_BYTES + 1)).toBe("presigned");
    expect(declaredMimeType("")).toBe("application/jsonl");
    expect(declaredMimeType("application/x-ndjson")).toBe("application/x-ndjson");
    expect(declaredMimeType("application/octet-stream")).toBe("application/jsonl");
    expect(percent(50, 200)).toBe(25);
    expect(percent(1, 0)).toBe(0);
  });
});

describe("hash routes", () => {
  it("parses every page and round-trips through routeHref", () => {
    for (const route of [
      { page: "files" },
      { page: "file", id: "file-abc" },
      { page: "fine-tuning" },
      { page: "job", id: "ftjob-xyz" },
      { page: "models" },
      { page: "playground" },
      { page: "playground", model: "my-bot.v2" },
    ] as const) {
      expect(parseRoute(routeHref(route))).toEqual(route);
    }
    expect(parseRoute("")).toEqual({ page: "files" });
    expect(parseRoute("#/nowhere")).toEqual({ page: "files" });
  });
});

describe("the create form's hyperparameters", () => {
  it("leaves empty fields to auto and checks the others against the catalog's bounds", () => {
    expect(fieldsFor("full")).not.toContain("lora_r");
    expect(fieldsFor("lora")).toContain("lora_r");
    expect(
      hyperparametersFromForm({ n_epochs: "3", learning_rate_multiplier: " ", lora_r: "16" }, "lora"),
    ).toEqual({
      hyperparameters: { n_epochs: 3, lora_r: 16 },
      invalid: [],
    });
    expect(
      hyperparametersFromForm({ n_epochs: "0", batch_size: "2.5", learning_rate_multiplier: "0" }, "full")
        .invalid,
    ).toEqual(["n_epochs", "batch_size", "learning_rate_multiplier"]);
    // A LoRA field is not sent for full training.
    expect(hyperparametersFromForm({ lora_r: "8" }, "full").hyperparameters).toEqual({});
    expect(boundOf("max_seq_length", 512).max).toBe(512);
    expect(hyperparametersFromForm({ max_seq_length: "1024" }, "lora", 512).invalid).toEqual([
      "max_seq_length",
    ]);
  });

  it("checks a model code's syntax as the API does", () => {
    expect(modelCodeSyntaxOk("support-bot.v2")).toBe(true);
    for (const bad of ["ab", "Upper", "-lead", "trail-", "ft:gpt", "ftjob-x", "file-x", "a/b"]) {
      expect(modelCodeSyntaxOk(bad), bad).toBe(false);
    }
  });
});

describe("code snippets", () => {
  it("name the model and the base URL, and quote curl's body for the shell", () => {
    const url = "http://localhost:8787/v4";
    for (const kind of ["zhipuai", "openai", "curl"] as const) {
      const text = snippet(kind, "bot-it's", url);
      expect(text).toContain(url);
      expect(text).toContain("FT_API_KEY");
    }
    expect(snippet("zhipuai", "m1", url)).toContain('base_url="http://localhost:8787/v4"');
    expect(snippet("curl", "m1", url)).toContain("'http://localhost:8787/v4/chat/completions'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(formatDuration(3725)).toBe("1 h 2 min");
    expect(formatDuration(200)).toBe("3 min 20 s");
  });
});
